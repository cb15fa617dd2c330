"""CLI smoke tests of the pretraining configs on the synthetic nuScenes-format dataroot: ``bevjepa fit`` with
``fast_dev_run``, then ``validate``; and a checkpoint written by ``fit`` that ``validate`` loads."""

import pytest
from pretrain_cli import run_bevjepa, small_run_arguments


@pytest.fixture
def common(synthetic_dataroot, tmp_path) -> list[str]:
    dataroot, version = synthetic_dataroot
    return small_run_arguments("synthetic_cpu.yaml", dataroot, version, tmp_path)


def test_fit_fast_dev_run_then_validate(common):
    fit = run_bevjepa("fit", *common, "--trainer.fast_dev_run=1")
    assert fit.trainer.global_step == 1
    assert "train/loss" in fit.trainer.callback_metrics
    validate = run_bevjepa("validate", *common, "--trainer.limit_val_batches=1")
    metrics = validate.trainer.callback_metrics
    for name in ("val/loss", "val/masked_block_loss", "val/future_loss", "val/target_effective_rank"):
        assert name in metrics, name


@pytest.mark.slow
def test_validate_from_a_fit_checkpoint(common, tmp_path):
    run_bevjepa("fit", *common, "--trainer.max_steps=1", "--trainer.limit_val_batches=1")
    checkpoints = sorted(tmp_path.rglob("*.ckpt"))
    assert len(checkpoints) == 1
    validate = run_bevjepa(
        "validate", *common, "--trainer.limit_val_batches=1", f"--ckpt_path={checkpoints[0]}"
    )
    assert "val/loss" in validate.trainer.callback_metrics
    assert sorted(tmp_path.rglob("bev_pictures/*.png")), "validation draws a BEV picture"
