"""Shared fixtures: the real nuScenes keyframe, and clean skipping of GPU tests without CUDA."""

from pathlib import Path

import pytest
import torch

REPO_ROOT = Path(__file__).resolve().parents[1]
REAL_FRAME_DIR = REPO_ROOT.parent / "shared" / "data" / "nuscenes_real_frame"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if torch.cuda.is_available():
        return
    skip_gpu = pytest.mark.skip(reason="needs CUDA")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip_gpu)


@pytest.fixture(scope="session")
def real_frame_dir() -> Path:
    if not (REAL_FRAME_DIR / "frame.json").is_file():
        pytest.fail(f"the real nuScenes frame is expected at {REAL_FRAME_DIR}")
    return REAL_FRAME_DIR


@pytest.fixture(scope="session")
def real_frame(real_frame_dir: Path):
    from datamodules.real_frame import load_real_frame

    return load_real_frame(real_frame_dir)


@pytest.fixture(scope="session")
def synthetic_dataroot(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """The ``tiny`` synthetic nuScenes-format dataroot, generated once per session: ``(dataroot, version)``."""
    from bevjepa.sim.generate import generate_dataset
    from bevjepa.sim.presets import get_preset

    preset = get_preset("tiny")
    dataroot = tmp_path_factory.mktemp("synthetic_tiny") / "nuscenes"
    generate_dataset(preset, dataroot, seed=0, workers=2)
    return dataroot, preset.version
