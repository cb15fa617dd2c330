"""tools/visualize.py renders the real frame and fails clearly on bad input."""

import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

TOOL = Path(__file__).resolve().parents[1] / "tools" / "visualize.py"


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(TOOL), *args], capture_output=True, text=True, timeout=300, check=False
    )


def test_renders_real_frame(tmp_path, real_frame_dir):
    out = tmp_path / "frame.png"
    result = _run("frame", "--frame-dir", str(real_frame_dir), "--out", str(out))
    assert result.returncode == 0, result.stderr[-2000:]
    image = np.asarray(Image.open(out).convert("RGB"))
    assert image.shape[0] > 400 and image.shape[1] > 2 * image.shape[0] * 0.8
    # The picture is not blank: many distinct colours (points by height, voxels, boxes).
    assert len(np.unique(image.reshape(-1, 3), axis=0)) > 200


def test_help():
    result = _run("frame", "--help")
    assert result.returncode == 0
    assert "--frame-dir" in result.stdout


def test_missing_frame_is_a_clear_error(tmp_path):
    result = _run("frame", "--frame-dir", str(tmp_path), "--out", str(tmp_path / "x.png"))
    assert result.returncode == 1
    assert "No frame.json" in result.stderr


def test_renders_a_dataset_sample(tmp_path, synthetic_dataroot):
    dataroot, version = synthetic_dataroot
    out = tmp_path / "sample.png"
    args = ["sample", "--dataroot", str(dataroot), "--version", version, "--split", "train", "--index", "1"]
    result = _run(*args, "--out", str(out), "--voxel-size", "0.4", "0.4", "0.2")
    assert result.returncode == 0, result.stderr[-2000:]
    image = np.asarray(Image.open(out).convert("RGB"))
    assert image.shape[1] > 2 * image.shape[0]
    assert len(np.unique(image.reshape(-1, 3), axis=0)) > 200


def test_sample_index_out_of_range_is_a_clear_error(tmp_path, synthetic_dataroot):
    dataroot, version = synthetic_dataroot
    args = ["sample", "--dataroot", str(dataroot), "--version", version, "--index", "999"]
    result = _run(*args, "--out", str(tmp_path / "x.png"))
    assert result.returncode == 1
    assert "outside the" in result.stderr
