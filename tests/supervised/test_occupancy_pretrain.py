"""SupervisedOccupancyPretrainModule: shapes and gradients, ignored cells, a loss that falls when
overfitting, validation IoU, checkpoints."""

import dataclasses

import pytest
import torch
from jepa_scenes import IN_CHANNELS, SCENE_GRID, make_batch
from small_models import cpu_trainer, small_encoder
from torch.utils.data import DataLoader

from bevjepa.batch import BevBatch, ProbeLabels
from bevjepa.optimization import OptimizerSettings
from bevjepa.probes.heads import IGNORE_INDEX
from bevjepa.supervised import SupervisedOccupancyPretrainModule

PATCH = 2  # 4 x 4 tokens on the 8 x 8 test grid


def small_module(**overrides) -> SupervisedOccupancyPretrainModule:
    arguments = {
        "grid": SCENE_GRID,
        "in_channels": IN_CHANNELS,
        "encoder": small_encoder,
        "token_patch": PATCH,
        "optimizer": OptimizerSettings(learning_rate=3e-3, warmup_steps=1, total_steps=100),
    }
    arguments.update(overrides)
    return SupervisedOccupancyPretrainModule(**arguments)


def with_labels(batch: BevBatch) -> BevBatch:
    """Labels that the voxels determine: occupied cells are vehicles, unobserved ones ignored; the drivable
    raster marks observed cells."""
    visibility = batch.visibility.long()  # (B, H, W): 0 free, 1 occupied, 2 unobserved
    occupancy = torch.where(visibility == 2, IGNORE_INDEX, visibility)
    rasters = torch.zeros(visibility.shape[0], 6, *visibility.shape[1:], dtype=torch.bool)
    rasters[:, 0] = visibility != 2
    size = visibility.shape[0]
    labels = ProbeLabels(
        occupancy=occupancy.unsqueeze(1),  # (B, 1, H, W): now only
        map_rasters=rasters,
        ego_trajectory=torch.zeros(size, 0, 2),
        future_boxes=[[] for _ in range(size)],
        ego_status=torch.zeros(size, 4),
    )
    return dataclasses.replace(batch, labels=labels)


@pytest.fixture(scope="module")
def batch() -> BevBatch:
    return with_labels(make_batch(seed=0, batch_size=2, steps=1))


def test_shapes_and_gradients(batch):
    torch.manual_seed(0)
    module = small_module()
    occupancy_logits, map_logits = module.predict_logits(batch)
    assert occupancy_logits.shape == (2, 4, *SCENE_GRID.bev_shape)
    assert map_logits.shape == (2, 6, *SCENE_GRID.bev_shape)
    losses, _, _ = module._losses(batch)
    assert all(value.ndim == 0 and torch.isfinite(value) for value in losses.values())
    losses["total"].backward()
    for name, parameter in module.named_parameters():
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name
    assert module.probe_encoder() is module.encoder


def test_ignored_cells_do_not_count(batch):
    torch.manual_seed(0)
    module = small_module().eval()
    labels = batch.labels
    ignored = labels.occupancy == IGNORE_INDEX
    assert ignored.any()
    other = dataclasses.replace(labels, occupancy=labels.occupancy.clone())
    with torch.no_grad():
        reference, _, _ = module._losses(batch)
        other.occupancy[~ignored] = IGNORE_INDEX
        nothing_observed, _, _ = module._losses(dataclasses.replace(batch, labels=other))
    assert torch.isfinite(reference["occupancy"]) and reference["occupancy"] > 0
    assert nothing_observed["occupancy"] == 0 and torch.isfinite(nothing_observed["total"])


def test_loss_falls_when_overfitting_a_batch(batch):
    torch.manual_seed(0)
    module = small_module()
    optimizer = torch.optim.AdamW(module.parameters(), lr=1e-2)
    losses = []
    for _ in range(15):
        optimizer.zero_grad()
        loss = module._losses(batch)[0]["total"]
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0], losses


def test_validation_iou_and_checkpoint(tmp_path, batch):
    torch.manual_seed(0)
    module = small_module()
    loader = DataLoader([batch], batch_size=None)
    trainer = cpu_trainer(tmp_path, max_steps=2, limit_val_batches=1)
    trainer.fit(module, train_dataloaders=loader, val_dataloaders=loader)
    metrics = trainer.callback_metrics
    for name in ("val/total_loss", "val/occupancy_miou", "val/map_miou", "val/occupancy_iou_vehicle"):
        assert name in metrics and torch.isfinite(metrics[name]), name
    checkpoint = tmp_path / "supervised.ckpt"
    trainer.save_checkpoint(checkpoint)
    # Built in Python, the hyperparameters are objects (grid): not a weights-only checkpoint.
    loaded = SupervisedOccupancyPretrainModule.load_from_checkpoint(checkpoint, weights_only=False)
    assert loaded.grid == SCENE_GRID
    for name, value in module.state_dict().items():
        assert torch.equal(loaded.state_dict()[name], value), name


def test_labels_are_required():
    with pytest.raises(ValueError, match="labels: true"):
        small_module()._losses(make_batch(seed=0, batch_size=1, steps=1))
