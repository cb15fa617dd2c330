"""CLI smoke tests of the supervised pretraining config on the synthetic nuScenes-format dataroot (with probe
labels): ``bevjepa fit`` with ``fast_dev_run`` then ``validate``; a checkpoint written by ``fit`` loads with
``load_from_checkpoint`` and gives the probes an encoder."""

from pathlib import Path

import pytest
import torch

from bevjepa.cli import BevJepaCLI
from bevjepa.encoders import SparseBEVEncoder
from bevjepa.supervised import SupervisedOccupancyPretrainModule

CONFIG = Path(__file__).resolve().parents[2] / "configs" / "pretrain" / "synthetic_cpu_supervised.yaml"


def _bevjepa(*args: str) -> BevJepaCLI:
    """What ``bevjepa <args>`` runs, in this process."""
    return BevJepaCLI(
        subclass_mode_model=True,
        subclass_mode_data=True,
        seed_everything_default=0,
        save_config_kwargs={"overwrite": True},
        args=list(args),
    )


@pytest.fixture
def common(synthetic_dataroot, tmp_path) -> list[str]:
    dataroot, version = synthetic_dataroot
    return [
        "--config",
        str(CONFIG),
        f"--data.init_args.dataroot={dataroot}",
        f"--data.init_args.version={version}",
        "--data.init_args.batch_size=2",
        "--data.init_args.num_workers=0",
        f"--trainer.default_root_dir={tmp_path}",
        "--trainer.enable_progress_bar=false",
        "--trainer.enable_model_summary=false",
    ]


def test_fit_fast_dev_run_then_validate(common):
    fit = _bevjepa("fit", *common, "--trainer.fast_dev_run=1")
    assert fit.trainer.global_step == 1
    assert "train/loss" in fit.trainer.callback_metrics
    validate = _bevjepa("validate", *common, "--trainer.limit_val_batches=1")
    metrics = validate.trainer.callback_metrics
    for name in ("val/total_loss", "val/occupancy_miou", "val/map_miou", "val/map_iou_drivable_area"):
        assert name in metrics and torch.isfinite(metrics[name]), name


def test_a_fit_checkpoint_loads_for_the_probes(common, tmp_path):
    fit = _bevjepa("fit", *common, "--trainer.max_steps=1", "--trainer.limit_val_batches=1")
    checkpoints = sorted(tmp_path.rglob("*.ckpt"))
    assert len(checkpoints) == 1
    hyperparameters = torch.load(checkpoints[0], weights_only=False)["hyper_parameters"]
    assert hyperparameters["_class_path"] == "bevjepa.supervised.SupervisedOccupancyPretrainModule", (
        "probes find the class in the checkpoint"
    )
    loaded = SupervisedOccupancyPretrainModule.load_from_checkpoint(checkpoints[0])
    encoder = loaded.probe_encoder()
    assert isinstance(encoder, SparseBEVEncoder) and loaded.grid == fit.datamodule.grid
    for name, value in fit.model.state_dict().items():
        assert torch.equal(loaded.state_dict()[name], value), name
