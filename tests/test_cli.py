"""CLI smoke tests: the installed ``bevjepa`` command runs fit, then validate from the checkpoint."""

import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
CONFIG = REPO_ROOT / "configs" / "supervised" / "real_frame_box_occupancy.yaml"


def _bevjepa(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "bevjepa", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def test_fit_then_validate(tmp_path, real_frame_dir):
    common = [
        "--config",
        str(CONFIG),
        "--data.init_args.frame_dir",
        str(real_frame_dir),
        "--data.init_args.train_views",
        "2",
        "--trainer.default_root_dir",
        str(tmp_path),
        "--trainer.enable_progress_bar",
        "false",
    ]
    fit = _bevjepa("fit", *common, "--trainer.max_epochs", "1", cwd=tmp_path)
    assert fit.returncode == 0, fit.stderr[-3000:]
    checkpoints = list(tmp_path.rglob("*.ckpt"))
    assert len(checkpoints) == 1
    validate = _bevjepa("validate", *common, "--ckpt_path", str(checkpoints[0]), cwd=tmp_path)
    assert validate.returncode == 0, validate.stderr[-3000:]
    assert "val/occupancy_iou" in validate.stdout


def test_help_lists_subcommands():
    result = _bevjepa("--help", cwd=REPO_ROOT)
    assert result.returncode == 0
    for subcommand in ("fit", "validate", "test", "predict"):
        assert subcommand in result.stdout
