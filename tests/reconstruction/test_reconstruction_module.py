"""MaskedOccupancyPretrainModule: shapes and gradients, targets from the input voxels only, no leakage from
masked voxels into the encoder, a loss that falls when overfitting, the training-mean baseline, checkpoints."""

import dataclasses
import functools

import pytest
import torch
from jepa_scenes import IN_CHANNELS, SCENE_GRID, SceneDataModule, make_batch
from small_models import cpu_trainer, small_encoder

from bevjepa.batch import BevBatch, ProbeLabels, VoxelBatch
from bevjepa.encoders.tokens import voxel_token_indices
from bevjepa.jepa import MultiBlockMaskSampler
from bevjepa.jepa.module import TRAIN_STREAM, VALIDATION_STREAM
from bevjepa.optimization import OptimizerSettings
from bevjepa.reconstruction import MaskedOccupancyPretrainModule, OccupancyDecoder
from bevjepa.reconstruction.losses import masked_occupancy_rate

PATCH = 2  # 4 x 4 tokens on the 8 x 8 test grid
small_decoder = functools.partial(OccupancyDecoder, width=32, depth=1, num_heads=2, mlp_ratio=2.0)


def small_module(**overrides) -> MaskedOccupancyPretrainModule:
    arguments = {
        "grid": SCENE_GRID,
        "in_channels": IN_CHANNELS,
        "encoder": small_encoder,
        "decoder": small_decoder,
        "token_patch": PATCH,
        "block_masks": MultiBlockMaskSampler(num_blocks=2, block_scale=(0.15, 0.25)),
        "cell_subdivision": 2,
        "height_bins": 4,
        "optimizer": OptimizerSettings(learning_rate=3e-3, warmup_steps=1, total_steps=100),
    }
    arguments.update(overrides)
    return MaskedOccupancyPretrainModule(**arguments)


@pytest.fixture(scope="module")
def batch() -> BevBatch:
    return make_batch(seed=0, batch_size=2, steps=1)


def _labels(batch: BevBatch, fill: int) -> ProbeLabels:
    size, (height, width) = batch.voxels.batch_size, SCENE_GRID.bev_shape
    return ProbeLabels(
        occupancy=torch.full((size, 2, height, width), fill, dtype=torch.int64),
        map_rasters=torch.full((size, 6, height, width), bool(fill % 2)),
        ego_trajectory=torch.full((size, 1, 2), float(fill)),
        future_boxes=[[torch.full((1, 7), float(fill))] for _ in range(size)],
        ego_status=torch.full((size, 4), float(fill)),
    )


def test_shapes_and_gradients(batch):
    torch.manual_seed(0)
    module = small_module()
    outputs = module.reconstruct(batch, TRAIN_STREAM, step=0)
    tokens, target_size = 16, (PATCH * 2) ** 2 * 4
    assert outputs.logits.shape == outputs.targets.shape == (2, tokens, target_size)
    assert outputs.context_tokens.shape == (2, tokens, module.encoder.embed_dim)
    assert 0 < outputs.known.float().mean() < 1
    hidden = torch.zeros_like(outputs.known).scatter_(1, outputs.masked.indices, True)
    assert torch.equal(hidden, ~outputs.known), "exactly the masked tokens are hidden"
    assert outputs.loss.ndim == 0 and torch.isfinite(outputs.loss)
    outputs.loss.backward()
    for name, parameter in module.named_parameters():
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name
    assert module.probe_encoder() is module.encoder


def test_targets_come_from_the_input_voxels_only(batch):
    torch.manual_seed(0)
    module = small_module().eval()
    with torch.no_grad():
        reference = module.reconstruct(dataclasses.replace(batch, labels=_labels(batch, 1)), TRAIN_STREAM, 4)
        relabelled = dataclasses.replace(batch, labels=_labels(batch, 2), futures=None)
        changed = module.reconstruct(relabelled, TRAIN_STREAM, 4)
    assert torch.equal(changed.targets, reference.targets)
    assert torch.equal(changed.logits, reference.logits)
    assert torch.equal(changed.loss, reference.loss)
    assert reference.targets.sum() > 0


def _perturb_hidden_voxels(batch: BevBatch, hidden: torch.Tensor) -> BevBatch:
    """Change every voxel inside hidden tokens and add new ones there; leave everything else as it is."""
    voxels = batch.voxels
    inside = hidden[voxels.coords[:, 0].long(), voxel_token_indices(voxels.coords, SCENE_GRID, PATCH)]
    assert inside.any()
    features = voxels.features.clone()
    features[inside] = features[inside] * 3 + 1
    extra = voxels.coords[inside][:50].clone()
    extra[:, 1] = (extra[:, 1] + 3).clamp(max=23)  # stacked above existing voxels of hidden tokens
    extra = extra[~(extra[:, None] == voxels.coords[None]).all(-1).any(-1)]
    assert len(extra)
    changed = VoxelBatch(
        features=torch.cat([features, torch.randn(len(extra), features.shape[1])]),
        coords=torch.cat([voxels.coords, extra]),
        batch_size=voxels.batch_size,
    )
    return dataclasses.replace(batch, voxels=changed)


def test_no_leakage_from_masked_voxels_into_the_encoder(batch):
    torch.manual_seed(0)
    module = small_module().train()
    reference = module.reconstruct(batch, TRAIN_STREAM, step=3)
    perturbed = module.reconstruct(_perturb_hidden_voxels(batch, ~reference.known), TRAIN_STREAM, step=3)
    assert torch.equal(perturbed.known, reference.known), "masks do not depend on the voxels"
    assert torch.equal(perturbed.context_tokens, reference.context_tokens)
    assert torch.equal(perturbed.logits, reference.logits)
    assert not torch.equal(perturbed.targets, reference.targets), "the targets did see the change"


def test_loss_falls_when_overfitting_a_batch(batch):
    torch.manual_seed(0)
    module = small_module()
    optimizer = torch.optim.AdamW(module.parameters(), lr=3e-3)
    losses = []
    for _ in range(15):
        optimizer.zero_grad()
        loss = module.reconstruct(batch, TRAIN_STREAM, step=0).loss
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0], losses


def test_validation_logs_the_training_mean_baseline_and_checkpoints_load(tmp_path):
    torch.manual_seed(0)
    module = small_module()
    data = SceneDataModule(train_scenes=6, val_scenes=2, batch_size=2, steps=1)
    trainer = cpu_trainer(tmp_path, max_steps=3, limit_val_batches=1)
    trainer.fit(module, data)  # the three batches of the first epoch

    # The baseline's rate is the weighted mean of the masked targets of the training batches seen.
    rates = [
        masked_occupancy_rate(outputs.targets, outputs.masked)
        for outputs in (
            module.reconstruct(training_batch, TRAIN_STREAM, step)
            for step, training_batch in enumerate(data.train_dataloader())
        )
    ]
    assert len(rates) == 3
    expected = sum(occupancy for occupancy, _ in rates) / sum(weight for _, weight in rates)
    torch.testing.assert_close(module.train_occupancy_rate(), expected)
    assert 0 < module.train_occupancy_rate().mean() < 1

    metrics = trainer.callback_metrics
    for name in (
        "val/loss",
        "val/occupancy_iou",
        "val/mean_baseline_loss",
        "val/mean_baseline_occupancy_iou",
    ):
        assert name in metrics and torch.isfinite(metrics[name]), name

    checkpoint = tmp_path / "mae.ckpt"
    trainer.save_checkpoint(checkpoint)
    # Built in Python, the hyperparameters are objects (grid, sampler): not a weights-only checkpoint.
    loaded = MaskedOccupancyPretrainModule.load_from_checkpoint(checkpoint, weights_only=False)
    assert torch.equal(loaded.train_occupancy_sum, module.train_occupancy_sum)
    assert loaded.grid == SCENE_GRID
    for name, value in module.probe_encoder().state_dict().items():
        assert torch.equal(loaded.probe_encoder().state_dict()[name], value), name


def test_the_validation_masks_differ_from_the_training_masks(batch):
    module = small_module()
    train = module.reconstruct(batch, TRAIN_STREAM, 0)
    validation = module.reconstruct(batch, VALIDATION_STREAM, 0)
    assert not torch.equal(train.known, validation.known)
