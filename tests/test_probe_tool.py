"""tools/probe.py: --help, clear refusals, and an end-to-end run on the tiny synthetic dataroot writing
results.json, results.md and pictures."""

import json
import sys
from pathlib import Path

import pytest
import torch
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "probes"))
sys.path.insert(0, str(REPO / "tools"))

import probe  # noqa: E402
from probe_batches import save_checkpoint, tiny_encoder, tiny_predictor  # noqa: E402

from bevjepa.grid import BevGrid  # noqa: E402
from bevjepa.jepa import JEPAPretrainModule  # noqa: E402
from bevjepa.probes.suite import ProbeSettings  # noqa: E402

CONFIG = REPO / "configs" / "probe" / "synthetic_cpu.yaml"
# The pretraining CPU grid: BEV 24 x 24 cells of 3.2 m, tokens of 2 x 2 cells.
CPU_GRID = BevGrid((-38.4, -38.4, -5.0, 38.4, 38.4, 3.0), (0.4, 0.4, 0.25))


def _jepa_checkpoint(path: Path, seed: int, grid: BevGrid = CPU_GRID, in_channels: int = 10) -> Path:
    torch.manual_seed(seed)
    module = JEPAPretrainModule(
        grid=grid, in_channels=in_channels, encoder=tiny_encoder, predictor=tiny_predictor, token_patch=2
    )
    save_checkpoint(module, path)
    return path


def test_help_lists_the_options(capsys):
    with pytest.raises(SystemExit) as exit_info:
        probe.parse_args(["--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for option in ("--ckpt", "--baselines", "--out", "--config", "--max-samples"):
        assert option in text


def test_the_probe_config_knows_every_key():
    config = yaml.safe_load(CONFIG.read_text())
    assert set(config["data"]) <= set(probe.DATA_KEYS) | {"dataset_seed"}
    assert set(config["probe"]) == {f for f in ProbeSettings.__dataclass_fields__}


def test_refuses_mismatched_methods_and_baselines_without_checkpoints(tmp_path):
    jepa = _jepa_checkpoint(tmp_path / "jepa.ckpt", 0)
    other = _jepa_checkpoint(tmp_path / "other.ckpt", 1, grid=BevGrid((-25.6, -25.6, -5.0, 25.6, 25.6, 3.0)))
    common = ["--ckpt", str(jepa), "--out", str(tmp_path)]
    with pytest.raises(SystemExit, match="grid"):
        probe.load_methods(probe.parse_args([*common, "--baselines", f"mae={other}"]), seed=0)
    with pytest.raises(SystemExit, match="needs a checkpoint"):
        probe.load_methods(probe.parse_args([*common, "--baselines", "random,mae"]), seed=0)
    methods = probe.load_methods(probe.parse_args(common), seed=0)
    config = yaml.safe_load(CONFIG.read_text())
    config["data"]["grid"] = {"point_cloud_range": [-25.6, -25.6, -5.0, 25.6, 25.6, 3.0]}
    with pytest.raises(SystemExit, match="not the grid the checkpoints were trained on"):
        probe.build_data(config["data"], methods[0])
    config = yaml.safe_load(CONFIG.read_text())
    config["data"]["radar"] = False
    with pytest.raises(SystemExit, match="features per voxel"):
        probe.build_data(config["data"], methods[0])


@pytest.mark.slow
def test_end_to_end_on_the_tiny_dataroot(synthetic_dataroot, tmp_path):
    dataroot, version = synthetic_dataroot
    jepa = _jepa_checkpoint(tmp_path / "jepa.ckpt", 0)
    mae = _jepa_checkpoint(tmp_path / "mae.ckpt", 1)
    out = tmp_path / "probes"
    results = probe.main(
        [
            "--ckpt", str(jepa),
            "--baselines", f"random,mae={mae}",
            "--out", str(out),
            "--dataroot", str(dataroot),
            "--version", version,
            "--steps", "2",
            "--max-samples", "4",
            "--no-progress",
        ]
    )  # fmt: skip
    assert set(results["methods"]) == {"jepa", "random", "mae"}
    assert results["forecast_steps"] == 2  # the tiny predictor forecasts two keyframes (1 s)
    written = json.loads((out / "results.json").read_text())
    assert written["methods"]["jepa"]["sha256"] == results["methods"]["jepa"]["sha256"]
    jepa_full = written["probes"]["jepa"]["1.0"]
    assert "future_forecast_1s_miou" in jepa_full and "future_forecast_2s_miou" not in jepa_full
    assert "future_forecast_1s_miou" not in written["probes"]["random"]["1.0"]
    assert "future_encoded_future_1s_miou" in jepa_full  # the held-out split's perfect forecast
    assert "future_encoded_future_1s_miou" not in written["probes"]["mae"]["1.0"]
    assert set(written["probes"]["mae"]) == {"0.01", "0.1", "1.0"}
    assert "plan_ego_status_mlp_l2_avg_3s" in written["ego_status_planners"]["1.0"]
    assert "plan_ridge_with_ego_status_l2_avg_3s" in written["probes"]["mae"]["0.01"]
    assert set(written["ego_speed_r2"]) == {"jepa", "random", "mae"}
    assert written["settings"]["head_seeds"] == 3  # the config's: every number is a mean with its spread
    assert (
        "occupancy_miou_std" in jepa_full
        and "plan_ego_status_mlp_l2_avg_3s_std" in written["ego_status_planners"]["1.0"]
    )
    markdown = (out / "results.md").read_text()
    for text in (
        "| jepa |",
        "| random |",
        "jepa forecast",
        "jepa encoded future (perfect forecast)",
        "copy current labels (reference)",
        "ego-status MLP",
        "3 head seed(s)",
        "ego speed R^2",
        "jepa ridge planner, scene only",
        "random ridge planner + ego status",
        "The cost heads choose by `least_expected_distance`",  # the config's decision, named in the table
    ):
        assert text in markdown, text
    assert results["methods"]["jepa"]["sha256"] in markdown
    assert sorted(p.name for p in (out / "pictures").iterdir()) == ["jepa.png", "mae.png", "random.png"]


def test_end_to_end_one_method_all_labels(synthetic_dataroot, tmp_path):
    dataroot, version = synthetic_dataroot
    jepa = _jepa_checkpoint(tmp_path / "jepa.ckpt", 0)
    out = tmp_path / "probes"
    results = probe.main(
        [
            "--ckpt", str(jepa),
            "--baselines", "",
            "--out", str(out),
            "--dataroot", str(dataroot),
            "--version", version,
            "--steps", "1",
            "--label-fractions", "1.0",
            "--max-samples", "2",
            "--no-progress",
        ]
    )  # fmt: skip
    assert list(results["probes"]) == ["jepa"] and list(results["probes"]["jepa"]) == ["1.0"]
    assert list(results["ego_speed_r2"]) == ["jepa"]  # a number, or NaN where the two samples cannot say
    assert "ego speed R^2" in (out / "results.md").read_text()
    assert json.loads((out / "results.json").read_text())["dataset"]["val_samples"] == 2
    assert "| jepa |" in (out / "results.md").read_text()
    assert (out / "pictures" / "jepa.png").stat().st_size > 0
