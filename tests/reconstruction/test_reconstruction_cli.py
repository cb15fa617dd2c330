"""CLI smoke tests of the reconstruction pretraining config on the synthetic nuScenes-format dataroot:
``bevjepa fit`` with ``fast_dev_run`` then ``validate``; a checkpoint written by ``fit`` loads with
``load_from_checkpoint`` and gives the probes an encoder."""

import pytest
import torch
from pretrain_cli import run_bevjepa, small_run_arguments

from bevjepa.encoders import SparseBEVEncoder
from bevjepa.reconstruction import MaskedOccupancyPretrainModule


@pytest.fixture
def common(synthetic_dataroot, tmp_path) -> list[str]:
    dataroot, version = synthetic_dataroot
    return small_run_arguments("synthetic_cpu_mae.yaml", dataroot, version, tmp_path)


def test_fit_fast_dev_run_then_validate(common):
    fit = run_bevjepa("fit", *common, "--trainer.fast_dev_run=1")
    assert fit.trainer.global_step == 1
    assert "train/loss" in fit.trainer.callback_metrics
    validate = run_bevjepa("validate", *common, "--trainer.limit_val_batches=1")
    metrics = validate.trainer.callback_metrics
    for name in (
        "val/loss",
        "val/occupancy_iou",
        "val/mean_baseline_loss",
        "val/mean_baseline_occupancy_iou",
    ):
        assert name in metrics and torch.isfinite(metrics[name]), name


def test_a_fit_checkpoint_loads_for_the_probes(common, tmp_path):
    fit = run_bevjepa("fit", *common, "--trainer.max_steps=1", "--trainer.limit_val_batches=1")
    checkpoints = sorted(tmp_path.rglob("*.ckpt"))
    assert len(checkpoints) == 1
    hyperparameters = torch.load(checkpoints[0], weights_only=False)["hyper_parameters"]
    assert hyperparameters["_class_path"] == "bevjepa.reconstruction.MaskedOccupancyPretrainModule", (
        "probes find the class in the checkpoint"
    )
    loaded = MaskedOccupancyPretrainModule.load_from_checkpoint(checkpoints[0])
    encoder = loaded.probe_encoder()
    assert isinstance(encoder, SparseBEVEncoder) and loaded.grid == fit.datamodule.grid
    for name, value in fit.model.probe_encoder().state_dict().items():
        assert torch.equal(encoder.state_dict()[name], value), name
    batch = next(iter(fit.datamodule.val_dataloader()))
    with torch.no_grad():
        assert encoder.eval()(batch.voxels).shape == (2, encoder.embed_dim, *loaded.grid.bev_shape)
