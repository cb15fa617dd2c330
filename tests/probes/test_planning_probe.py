"""The planning-cost heads train alone exactly as they train inside ProbeModule, and score the same."""

import pytest
import torch
from probe_batches import EMBED_DIM, GRID, TOKEN_PATCH, cpu_trainer, make_probe_batch, straight_candidates
from torch.utils.data import DataLoader

from bevjepa.probes.features import TokenBatch
from bevjepa.probes.module import ProbeModule
from bevjepa.probes.planning_probe import PlanningCostProbes, PlanningProbeModule


def _stored_batches(count: int) -> list[TokenBatch]:
    """Batches of random tokens next to the labels of raw probe batches."""
    generator = torch.Generator().manual_seed(0)
    batches = []
    for seed in range(count):
        raw = make_probe_batch(seed)
        labels, futures = raw.labels, raw.futures
        tokens = torch.randn(raw.voxels.batch_size, 16, EMBED_DIM, generator=generator)
        batches.append(
            TokenBatch(
                tokens=tokens,
                occupancy=labels.occupancy.long(),
                map_rasters=labels.map_rasters,
                ego_trajectory=labels.ego_trajectory,
                ego_status=labels.ego_status,
                valid=futures.valid,
                poses=futures.poses,
                future_boxes=labels.future_boxes,
            )
        )
    return batches


def _train(module, batches, steps):
    cpu_trainer(max_steps=steps).fit(module, DataLoader(batches, batch_size=None, shuffle=False))
    cpu_trainer().validate(module, DataLoader(batches, batch_size=None, shuffle=False), verbose=False)
    return module


@pytest.mark.parametrize("prior", ["scene", "constant"])
def test_the_scene_only_head_trains_alone_as_it_trains_among_the_probes(prior):
    batches = _stored_batches(3)
    settings = dict(learning_rate=1e-2, total_steps=6, planning_prior=prior)
    torch.manual_seed(5)
    together = _train(
        ProbeModule(GRID, EMBED_DIM, TOKEN_PATCH, straight_candidates(), **settings), batches, 6
    )
    torch.manual_seed(5)
    alone = _train(
        PlanningProbeModule(GRID, EMBED_DIM, TOKEN_PATCH, straight_candidates(), **settings), batches, 6
    )
    trained = together.planning.heads["cost"].state_dict()
    assert set(alone.planning.heads) == {"cost"}
    for name, tensor in alone.planning.heads["cost"].state_dict().items():
        assert torch.allclose(tensor, trained[name], atol=1e-6), name
    start = PlanningProbeModule(GRID, EMBED_DIM, TOKEN_PATCH, straight_candidates(), **settings)
    moved = (
        alone.planning.heads["cost"].cost_map.net.weight - start.planning.heads["cost"].cost_map.net.weight
    )
    assert moved.abs().max() > 1e-4, "the head did train"
    shared = {key: value for key, value in together.evaluation.items() if key.startswith("plan_cost_")}
    shared = {key: value for key, value in shared.items() if "ego_status" not in key}
    assert shared and set(alone.evaluation) == set(shared)
    for key, value in alone.evaluation.items():
        assert value == pytest.approx(shared[key], abs=1e-6, nan_ok=True), key


def test_only_the_ego_status_head_reads_the_ego_status():
    probes = PlanningCostProbes(EMBED_DIM, TOKEN_PATCH, GRID, straight_candidates())
    assert not probes.heads["cost"].uses_ego_status
    assert probes.heads["cost_with_ego_status"].uses_ego_status


def test_unknown_heads_are_refused():
    with pytest.raises(ValueError, match="unknown planning-cost heads"):
        PlanningCostProbes(
            EMBED_DIM, TOKEN_PATCH, GRID, straight_candidates(), names=("cost", "cost_with_map")
        )
