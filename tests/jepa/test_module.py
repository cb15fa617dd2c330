"""JEPAPretrainModule: shapes and gradients, no leakage from targets into the context, the EMA teacher."""

import copy

import lightning as L
import pytest
import torch
from jepa_scenes import SCENE_GRID, SceneDataModule, make_batch
from small_models import EMBED_DIM, cpu_trainer, small_module

from bevjepa.batch import BevBatch, FutureFrames, VoxelBatch
from bevjepa.encoders.tokens import voxel_token_indices
from bevjepa.jepa.future_geometry import actions_in_step_frames
from bevjepa.jepa.module import TRAIN_STREAM, VALIDATION_STREAM, LossWeights
from bevjepa.schedules import ema_momentum_at


@pytest.fixture(scope="module")
def batch() -> BevBatch:
    return make_batch(seed=0, batch_size=2, steps=2)


def test_step_shapes_and_gradients(batch):
    torch.manual_seed(0)
    module = small_module(loss_weights=LossWeights(unconditioned=0.5))
    outputs = module.run_jepa(batch, TRAIN_STREAM, step=0, evaluate=True)
    tokens = 64
    assert outputs.context_tokens.shape == (2, tokens, EMBED_DIM)
    assert outputs.target_tokens.shape == (2, tokens, EMBED_DIM)
    assert outputs.known.shape == (2, tokens) and 0 < outputs.known.float().mean() < 1
    assert set(outputs.losses) == {
        "masked_block",
        "occluded",
        "future",
        "rollout",
        "unconditioned",
        "variance",
        "covariance",
    }
    assert outputs.losses["unconditioned"] > 0
    for name, value in {**outputs.losses, **outputs.evaluation}.items():
        assert value.ndim == 0 and torch.isfinite(value), name
    assert outputs.losses["occluded"] > 0, (
        "the test scenes have occluded tokens seen from the future keyframes"
    )
    module._weighted_total(outputs).backward()
    for name, parameter in module.named_parameters():
        if name.startswith("target_encoder."):
            assert parameter.grad is None and not parameter.requires_grad, name
        else:
            assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name


def test_target_encoder_starts_as_a_copy():
    module = small_module()
    online, target = module.encoder.state_dict(), module.target_encoder.state_dict()
    assert online.keys() == target.keys()
    assert all(torch.equal(online[k], target[k]) for k in online)
    assert any(k.startswith("target_encoder.") for k in module.state_dict()), "saved in checkpoints"


def _perturb_hidden_voxels(batch: BevBatch, hidden: torch.Tensor) -> BevBatch:
    """Change every voxel inside hidden tokens and add new ones there; leave everything else as it is."""
    voxels = batch.voxels
    inside = hidden[voxels.coords[:, 0].long(), voxel_token_indices(voxels.coords, SCENE_GRID, 1)]
    assert inside.any()
    features = voxels.features.clone()
    features[inside] = features[inside] * 3 + 1
    extra = voxels.coords[inside][:50].clone()
    extra[:, 1] = (extra[:, 1] + 3).clamp(max=23)  # stacked above existing voxels of hidden tokens
    extra = extra[~(extra[:, None] == voxels.coords[None]).all(-1).any(-1)]
    changed = VoxelBatch(
        features=torch.cat([features, torch.randn(len(extra), features.shape[1])]),
        coords=torch.cat([voxels.coords, extra]),
        batch_size=voxels.batch_size,
    )
    return BevBatch(batch.sample_tokens, changed, batch.visibility, batch.target_visibility, batch.futures)


def test_no_leakage_from_target_voxels_into_the_context(batch):
    torch.manual_seed(0)
    module = small_module().train()
    reference = module.run_jepa(batch, TRAIN_STREAM, step=3)
    changed = _perturb_hidden_voxels(batch, ~reference.known)
    perturbed = module.run_jepa(changed, TRAIN_STREAM, step=3)
    assert torch.equal(perturbed.known, reference.known), "masks do not depend on the current voxels"
    assert torch.equal(perturbed.context_tokens, reference.context_tokens)
    assert not torch.allclose(perturbed.target_tokens, reference.target_tokens), (
        "the targets did see the change"
    )


class _RecordEma(L.Callback):
    """Checks after every step that target = m * target_before + (1 - m) * online_after."""

    def __init__(self) -> None:
        self.checked_steps = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self.before = copy.deepcopy(pl_module.target_encoder.state_dict())

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        step = trainer.global_step - 1
        start, end = pl_module.ema_momentum
        momentum = ema_momentum_at(step, start, end, pl_module.optimizer_settings.total_steps)
        online = dict(pl_module.encoder.named_parameters())
        for name, parameter in pl_module.target_encoder.named_parameters():
            expected = momentum * self.before[name] + (1 - momentum) * online[name].detach()
            torch.testing.assert_close(parameter, expected, atol=1e-6, rtol=0)
        self.checked_steps.append(step)


def test_ema_update_once_per_optimizer_step(tmp_path):
    torch.manual_seed(0)
    module = small_module(ema_momentum=(0.5, 0.9))
    recorder = _RecordEma()
    cpu_trainer(tmp_path, max_steps=3, callbacks=[recorder], limit_val_batches=0).fit(
        module, SceneDataModule(train_scenes=6, batch_size=2)
    )
    assert recorder.checked_steps == [0, 1, 2]
    online, target = module.encoder.state_dict(), module.target_encoder.state_dict()
    assert not torch.equal(online["bev_blocks.0.weight"], target["bev_blocks.0.weight"])


def test_futures_past_the_scene_end_are_ignored(batch):
    futures = batch.futures
    valid = futures.valid.clone()
    valid[1, 1] = False
    poses = futures.poses.clone()
    poses[1, 1] = 0.0  # the DataModule's pose of a step that does not exist
    last = futures.voxels[1]
    keep = last.coords[:, 0] == 0
    emptied = VoxelBatch(last.features[keep], last.coords[keep], last.batch_size)
    ended = BevBatch(
        batch.sample_tokens,
        batch.voxels,
        batch.visibility,
        batch.target_visibility,
        FutureFrames([futures.voxels[0], emptied], poses, futures.actions, valid),
    )
    torch.manual_seed(0)
    outputs = small_module().run_jepa(ended, TRAIN_STREAM, step=0, evaluate=True)
    for name, value in {**outputs.losses, **outputs.evaluation}.items():
        assert torch.isfinite(value), name


def test_counterfactual_actions_come_from_earlier_validation_samples(batch):
    module = small_module()
    module.on_validation_epoch_start()
    assert module._actions_of_earlier_samples(batch, batch_idx=0) is None  # the batch's own, rolled
    later = make_batch(seed=5, batch_size=3)
    chosen = module._actions_of_earlier_samples(later, batch_idx=1)
    first_batch = actions_in_step_frames(batch.futures.actions, batch.futures.poses)
    assert chosen.shape == (3, 2, 4)
    assert all(any(torch.equal(row, earlier) for earlier in first_batch) for row in chosen)
    outputs = module.run_jepa(later, VALIDATION_STREAM, 1, evaluate=True, other_actions=chosen)
    assert torch.isfinite(outputs.evaluation["future_loss_shuffled_actions"])


def test_predict_future_tokens_is_the_rollout_from_the_whole_context(batch):
    torch.manual_seed(0)
    module = small_module().eval()
    steps = batch.futures.actions.shape[1]
    forecast = module.predict_future_tokens(batch.voxels, batch.futures, steps)
    assert forecast.shape == (2, steps, 64, EMBED_DIM) and not forecast.requires_grad

    with torch.no_grad():
        context = module.encoder(batch.voxels).flatten(2).transpose(1, 2)  # (B, N, D), token patch 1
        actions = actions_in_step_frames(batch.futures.actions, batch.futures.poses)
        known = torch.ones(context.shape[:2], dtype=torch.bool)
        first = module.jepa.step_into_future(module.predictor, context, known, 1, actions[:, 0])
        second = module.jepa.step_into_future(module.predictor, first, known, 2, actions[:, 1])
    torch.testing.assert_close(forecast[:, 0], first)
    torch.testing.assert_close(forecast[:, 1], second)

    other = FutureFrames(
        voxels=batch.futures.voxels,
        poses=batch.futures.poses,
        actions=batch.futures.actions.flip(0),
        valid=batch.futures.valid,
    )
    assert not torch.allclose(module.predict_future_tokens(batch.voxels, other, steps), forecast)
    with pytest.raises(ValueError, match="future steps"):
        module.predict_future_tokens(batch.voxels, batch.futures, module.predictor.max_time_offset + 1)


def test_the_unconditioned_rollout_is_computed_only_when_weighted(batch):
    torch.manual_seed(0)
    module = small_module()
    assert module.run_jepa(batch, TRAIN_STREAM, step=0).losses["unconditioned"] == 0
    # Its code is then left out of training (DDP would find a trained parameter without a gradient).
    assert not module.predictor.unknown_action.requires_grad
    assert small_module(loss_weights=LossWeights(unconditioned=0.5)).predictor.unknown_action.requires_grad


def test_a_step_without_actions_leaves_the_source_where_it_stands(batch):
    """Only the predictor may move the world when the ego's motion is not given: with a predictor that copies
    its source, the unconditioned rollout repeats the context while the conditioned one carries it."""
    module = small_module()
    context = torch.randn(2, 64, EMBED_DIM)
    known = torch.ones(2, 64, dtype=torch.bool)

    def copy_source(source, source_known, kind, time_offset, actions=None):
        return source

    actions = actions_in_step_frames(batch.futures.actions, batch.futures.poses)
    unconditioned = module.jepa.rollout(copy_source, context, known, None, steps=2)
    assert len(unconditioned) == 2
    for step in unconditioned:
        torch.testing.assert_close(step, context)
    carried = module.jepa.rollout(copy_source, context, known, actions[:, :2])
    assert not torch.allclose(carried[1], context)
    with pytest.raises(ValueError, match="number of steps"):
        module.jepa.rollout(copy_source, context, known, None)
