"""The baseline pretraining configs keep JEPA's budget: the same encoder, token patch, optimizer schedule,
epochs, batch size, grid and sweeps as configs/pretrain/synthetic_cpu.yaml (and, for reconstruction, its
masks), so that a results table compares methods at equal steps."""

from pathlib import Path

import pytest
import yaml

PRETRAIN = Path(__file__).resolve().parents[2] / "configs" / "pretrain"
SHARED_MODEL = ("encoder", "token_patch", "optimizer")
SHARED_DATA = ("dataroot", "version", "train_split", "val_split", "grid", "lidar_sweeps", "radar")
SHARED_DATA += ("radar_sweeps", "batch_size", "seed")


def _load(name: str) -> dict:
    return yaml.safe_load((PRETRAIN / name).read_text())


@pytest.mark.parametrize("name", ["synthetic_cpu_mae.yaml", "synthetic_cpu_supervised.yaml"])
def test_baseline_config_matches_the_jepa_config(name):
    jepa, baseline = _load("synthetic_cpu.yaml"), _load(name)
    assert baseline["trainer"]["max_epochs"] == jepa["trainer"]["max_epochs"]
    assert baseline["seed_everything"] == jepa["seed_everything"]
    for key in SHARED_MODEL:
        assert baseline["model"]["init_args"][key] == jepa["model"]["init_args"][key], key
    for key in SHARED_DATA:
        assert baseline["data"]["init_args"][key] == jepa["data"]["init_args"][key], key


def test_reconstruction_masks_are_jepas():
    jepa, mae = _load("synthetic_cpu.yaml"), _load("synthetic_cpu_mae.yaml")
    assert mae["model"]["init_args"]["block_masks"] == jepa["model"]["init_args"]["block_masks"]
