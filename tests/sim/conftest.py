"""The ``tiny`` synthetic dataset, generated once per test session through the real pipeline."""

from dataclasses import dataclass
from pathlib import Path

import pytest

from bevjepa.sim.generate import GeneratedDataset, generate_dataset
from bevjepa.sim.presets import get_preset

TINY_SEED = 0


@dataclass
class TinyDataset:
    """A generated ``tiny`` dataroot and what was recorded into it."""

    dataroot: Path
    version: str
    seed: int
    generated: GeneratedDataset


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory: pytest.TempPathFactory) -> TinyDataset:
    preset = get_preset("tiny")
    dataroot = tmp_path_factory.mktemp("tiny") / "nuscenes"
    generated = generate_dataset(preset, dataroot, seed=TINY_SEED, workers=2)
    return TinyDataset(dataroot=dataroot, version=preset.version, seed=TINY_SEED, generated=generated)


@pytest.fixture(scope="session")
def tiny_nusc(tiny_dataset: TinyDataset):
    from nuscenes.nuscenes import NuScenes

    return NuScenes(tiny_dataset.version, str(tiny_dataset.dataroot), verbose=False)
