"""ProbeModule: training never touches the frozen encoder; evaluation reports every probe's metrics."""

import pytest
import torch
from probe_batches import (
    EMBED_DIM,
    GRID,
    TOKEN_PATCH,
    cpu_trainer,
    make_probe_batch,
    straight_candidates,
    tiny_jepa_module,
)
from torch.utils.data import DataLoader

from bevjepa.probes.features import extract_split_features, token_batch
from bevjepa.probes.frozen_encoder import FrozenEncoder, freeze_
from bevjepa.probes.module import ProbeModule


def _loader(batches):
    return DataLoader(batches, batch_size=None, shuffle=False)


def test_probe_training_never_changes_the_encoder():
    encoder = tiny_jepa_module().target_encoder
    encoder.train().requires_grad_(True)  # as it comes out of pretraining: the probe must freeze it
    before = {name: tensor.clone() for name, tensor in encoder.state_dict().items()}
    module = ProbeModule(GRID, EMBED_DIM, TOKEN_PATCH, straight_candidates(), encoder=encoder, total_steps=4)
    heads_before = module.occupancy_head.net.weight.clone()
    batches = [make_probe_batch(seed) for seed in range(4)]
    cpu_trainer(max_steps=4).fit(module, _loader(batches))
    after = encoder.state_dict()
    assert any("running_mean" in name for name in before), "the encoder has BatchNorm statistics to watch"
    for name, tensor in before.items():
        assert torch.equal(after[name], tensor), f"{name} changed during probe training"
    assert not encoder.training
    assert not torch.equal(module.occupancy_head.net.weight, heads_before), "the heads did train"


def test_stored_tokens_and_evaluation_with_forecasts():
    jepa = freeze_(tiny_jepa_module())
    frozen = FrozenEncoder("jepa", jepa.target_encoder, GRID, 4, TOKEN_PATCH, None, "x", "JEPA", 0, jepa)
    batches = [make_probe_batch(seed) for seed in range(3)]
    features = extract_split_features(batches, [frozen], forecast_steps=2)
    assert features.tokens["jepa"].shape == (6, 16, EMBED_DIM)
    assert features.forecasts["jepa"].shape == (6, 2, 16, EMBED_DIM)
    assert torch.allclose(features.tokens["jepa"].std(-1, unbiased=False), torch.ones(6, 16), atol=1e-3)
    module = ProbeModule(GRID, EMBED_DIM, TOKEN_PATCH, straight_candidates(), total_steps=3)
    stored = [token_batch(features, "jepa", [i, i + 1]) for i in (0, 2, 4)]
    cpu_trainer(max_steps=3).fit(module, _loader(stored))
    cpu_trainer().validate(module, _loader(stored), verbose=False)
    evaluation = module.evaluation
    for key in (
        "occupancy_miou",
        "occupancy_iou_vehicle",
        "map_miou",
        "map_iou_divider",
        "plan_cost_l2_avg_3s",
        "plan_cost_with_ego_status_collision_at_1s",
        "future_forecast_1s_miou",
        "future_copy_last_prediction_3s_miou",
        "future_copy_current_labels_2s_miou",
    ):
        assert key in evaluation, key
    assert "future_forecast_2s_miou" not in evaluation  # two forecast steps reach 1 s only
    assert 0 <= evaluation["occupancy_miou"] <= 1


def test_encoded_futures_of_a_world_standing_still_decode_as_the_present():
    jepa = freeze_(tiny_jepa_module())
    frozen = FrozenEncoder("jepa", jepa.target_encoder, GRID, 4, TOKEN_PATCH, None, "x", "JEPA", 0, jepa)
    batches = [make_probe_batch(seed, future_voxels=True) for seed in range(3)]
    features = extract_split_features(batches, [frozen], forecast_steps=2, encode_futures=True)
    assert features.encoded_futures["jepa"].shape == (6, 2, 16, EMBED_DIM)
    # Every future keyframe carries the present sweeps (identity poses): its tokens are the present ones.
    torch.testing.assert_close(features.encoded_futures["jepa"][:, 1], features.tokens["jepa"])
    module = ProbeModule(GRID, EMBED_DIM, TOKEN_PATCH, straight_candidates(), total_steps=3)
    stored = [token_batch(features, "jepa", [i, i + 1]) for i in (0, 2, 4)]
    cpu_trainer(max_steps=3).fit(module, _loader(stored))
    cpu_trainer().validate(module, _loader(stored), verbose=False)
    evaluation = module.evaluation
    assert evaluation["future_encoded_future_1s_miou"] == pytest.approx(
        evaluation["future_copy_last_prediction_1s_miou"]
    )
    assert "future_forecast_1s_miou" in evaluation
    without_future_voxels = [make_probe_batch(0)]
    with pytest.raises(ValueError, match="future_voxels=True"):
        extract_split_features(without_future_voxels, [frozen], forecast_steps=2, encode_futures=True)
