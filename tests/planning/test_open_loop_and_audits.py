"""Open-loop planning on logged keyframes, the BEV heads the energy reads, and the world-model audits."""

import math

import pytest
import torch
from tiny_world_model import GRID, tiny_world_model
from torch.utils.data import DataLoader, Subset
from torch_threads import one_torch_thread

from bevjepa.encoders.tokens import token_grid_shape
from bevjepa.planning.audits import audit_instant, summarise_audits
from bevjepa.planning.closed_loop import EpisodeRunner, EpisodeSettings
from bevjepa.planning.energy import LatentPlanningEnergy
from bevjepa.planning.heads import PlanningHeads, train_ego_status_mlp
from bevjepa.planning.open_loop import open_loop_metrics
from bevjepa.planning.optimizers import CONTROL_BOUNDS, CEMSettings, CrossEntropyMethod
from bevjepa.planning.world_model import LatentWorldModel
from bevjepa.probes.features import SplitLabels
from bevjepa.probes.module import ProbeModule
from bevjepa.probes.trajectories import candidate_trajectories
from bevjepa.sim.presets import get_preset
from bevjepa.sim.town import generate_town
from datamodules.collate import collate_bev_batch
from datamodules.live_frames import LiveSensorFrames
from datamodules.nuscenes import NuScenesBEVDataModule

HORIZON = 3


single_thread = pytest.fixture(autouse=True)(one_torch_thread)


@pytest.fixture(scope="module")
def world_model() -> LatentWorldModel:
    return tiny_world_model(max_time_offset=HORIZON)


def _heads() -> PlanningHeads:
    torch.manual_seed(1)
    module = ProbeModule(GRID, 16, 2, candidate_trajectories(num_steps=HORIZON))
    return PlanningHeads.from_probe_module(module)


def test_heads_give_probabilities_and_costs_on_the_bev_cells_and_survive_saving(tmp_path) -> None:
    heads = _heads()
    tokens = torch.randn(5, math.prod(token_grid_shape(GRID, 2)), 16)
    heads.save(tmp_path / "heads.pt")
    loaded = PlanningHeads.load(tmp_path / "heads.pt")
    assert torch.equal(loaded.cost_map(tokens), heads.cost_map(tokens)) and loaded.ego_status_mlp is None
    for bev_map in (heads.collision_map(tokens), heads.off_road_map(tokens)):
        assert bev_map.shape == (5, *GRID.bev_shape)
        assert (bev_map >= 0).all() and (bev_map <= 1).all()
    assert heads.cost_map(tokens).shape == (5, *GRID.bev_shape)


def test_open_loop_plans_score_in_both_conventions(synthetic_dataroot, world_model) -> None:
    dataroot, version = synthetic_dataroot
    data = NuScenesBEVDataModule(
        str(dataroot), version, grid=GRID, lidar_sweeps=3, radar_sweeps=3, future_steps=HORIZON, batch_size=2
    )
    loader = DataLoader(Subset(data.dataset("train"), range(2)), batch_size=2, collate_fn=collate_bev_batch)
    heads = _heads()
    energy = LatentPlanningEnergy(
        world_model,
        collision_map=heads.collision_map,
        off_road_map=heads.off_road_map,
        cost_map=heads.cost_map,
    )
    cem = CrossEntropyMethod(CONTROL_BOUNDS, CEMSettings(horizon=HORIZON, samples=8, elites=2, iterations=2))
    metrics = open_loop_metrics(energy, cem, loader, seed=0)
    assert metrics["samples"] == 2
    for name in ("l2_at_1s", "l2_avg_1s", "collision_at_1s", "collision_avg_1s"):
        assert math.isfinite(metrics[name]) and metrics[name] >= 0, name


def test_audit_instant_compares_turns_with_their_true_outcomes(world_model) -> None:
    town = generate_town("boston-seaport", 1234, get_preset("tiny").simulator.town)
    runner = EpisodeRunner(get_preset("tiny").simulator_for(town.location), EpisodeSettings())

    def frames(location: str) -> LiveSensorFrames:
        return LiveSensorFrames(GRID, 3, True, 3, location=location)

    instant = audit_instant(world_model, runner, frames, town, seed=1, warmup_plans=1, candidates=8)
    assert instant.distances.shape == (2, 2) and (instant.distances > 0).all()
    assert instant.left_closer_to_left == bool(instant.distances[0, 0] < instant.distances[0, 1])
    assert -1.0 <= instant.rank_correlation <= 1.0
    summary = summarise_audits([instant])
    assert summary["instants"] == 1 and 0.0 <= summary["turn_prediction_closer_to_own_outcome"] <= 1.0


def test_ego_status_mlp_learns_to_extrapolate_the_ego_motion() -> None:
    generator = torch.Generator().manual_seed(0)
    speeds = 12 * torch.rand(256, generator=generator)
    status = torch.stack([torch.zeros_like(speeds), speeds, torch.zeros_like(speeds), speeds], -1)
    times = 0.5 * torch.arange(1, 7)
    trajectory = torch.stack([torch.zeros(256, 6), -0.943713 + speeds[:, None] * times], -1)
    labels = SplitLabels(
        sample_tokens=[str(i) for i in range(256)],
        occupancy=torch.zeros(256, 7, 1, 1, dtype=torch.uint8),
        map_rasters=torch.zeros(256, 6, 1, 1, dtype=torch.bool),
        ego_trajectory=trajectory,
        ego_status=status,
        valid=torch.ones(256, 6, dtype=torch.bool),
        poses=torch.eye(4).expand(256, 6, 4, 4),
        future_boxes=[[torch.zeros(0, 7)] * 6] * 256,
    )
    mlp = train_ego_status_mlp(labels, steps=300, hidden=64, learning_rate=3e-3, batch_size=32, seed=0)
    error = torch.linalg.vector_norm(mlp(status) - trajectory, dim=-1).mean()
    assert error < 0.5, error
