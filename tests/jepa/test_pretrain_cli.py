"""CLI smoke tests of the pretraining configs on the synthetic nuScenes-format dataroot: ``bevjepa fit`` with
``fast_dev_run``, then ``validate``; and a checkpoint written by ``fit`` that ``validate`` loads."""

from pathlib import Path

import pytest

from bevjepa.cli import BevJepaCLI

CONFIG = Path(__file__).resolve().parents[2] / "configs" / "pretrain" / "synthetic_cpu.yaml"


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
    for name in ("val/loss", "val/masked_block_loss", "val/future_loss", "val/target_effective_rank"):
        assert name in metrics, name


@pytest.mark.slow
def test_validate_from_a_fit_checkpoint(common, tmp_path):
    _bevjepa("fit", *common, "--trainer.max_steps=1", "--trainer.limit_val_batches=1")
    checkpoints = sorted(tmp_path.rglob("*.ckpt"))
    assert len(checkpoints) == 1
    validate = _bevjepa("validate", *common, "--trainer.limit_val_batches=1", f"--ckpt_path={checkpoints[0]}")
    assert "val/loss" in validate.trainer.callback_metrics
    assert sorted(tmp_path.rglob("bev_pictures/*.png")), "validation draws a BEV picture"
