"""tools/plan.py end to end on the tiny synthetic dataroot, from a checkpoint written by ``bevjepa fit``."""

import importlib.util
import json
from pathlib import Path

import pytest
import yaml

from bevjepa.cli import BevJepaCLI

REPO = Path(__file__).resolve().parents[2]


def _plan_tool():
    spec = importlib.util.spec_from_file_location("plan_tool", REPO / "tools" / "plan.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_plan_config_names_only_what_the_tool_reads():
    plan = _plan_tool()
    config = yaml.safe_load((REPO / "configs" / "plan" / "synthetic_cpu.yaml").read_text())
    assert set(config) == {"data", "heads", "episodes", "cem", "energy", "audits", "open_loop", "seed"}
    assert set(config["data"]) <= set(plan.DATA_KEYS) | {"future_steps", "batch_size", "num_workers"}
    assert plan.parse_args(["--ckpt", "x.ckpt", "--out", "out"]).config == plan.DEFAULT_CONFIG


@pytest.mark.slow
def test_plan_tool_writes_results_pictures_and_heads(synthetic_dataroot, tmp_path) -> None:
    dataroot, version = synthetic_dataroot
    BevJepaCLI(
        subclass_mode_model=True,
        subclass_mode_data=True,
        seed_everything_default=0,
        save_config_kwargs={"overwrite": True},
        args=[
            "fit",
            "--config",
            str(REPO / "configs" / "pretrain" / "synthetic_cpu.yaml"),
            f"--data.init_args.dataroot={dataroot}",
            f"--data.init_args.version={version}",
            "--data.init_args.batch_size=2",
            "--data.init_args.num_workers=0",
            f"--trainer.default_root_dir={tmp_path / 'fit'}",
            "--trainer.max_steps=1",
            "--trainer.limit_val_batches=1",
            "--trainer.enable_progress_bar=false",
        ],
    )
    checkpoint = sorted((tmp_path / "fit").rglob("*.ckpt"))[0]
    config = yaml.safe_load((REPO / "configs" / "plan" / "synthetic_cpu.yaml").read_text())
    config["data"].update(dataroot=str(dataroot), version=version, batch_size=2, num_workers=0)
    config["heads"].update(steps=5, ego_status_steps=5)
    config["episodes"].update(town_seeds=[1001], max_duration_s=1.0)
    config["cem"].update(samples=4, elites=2, iterations=1)
    config["audits"].update(instants=1, hazard_episodes=1)
    config["open_loop"]["max_batches"] = 1
    config_path = tmp_path / "plan.yaml"
    config_path.write_text(yaml.safe_dump(config))
    out = tmp_path / "plan"
    results = _plan_tool().main(
        ["--ckpt", str(checkpoint), "--episodes", "1", "--out", str(out), "--config", str(config_path)]
    )
    stored = json.loads((out / "results.json").read_text())
    assert set(stored["closed_loop"]) == set(results["closed_loop"]) and len(stored["closed_loop"]) == 5
    assert stored["closed_loop"]["privileged_cem"]["episodes"] == 1
    assert stored["audits"]["instants"] == 1 and "small_faced" in stored["hazards"]["jepa_mpc_cem"]
    assert len(stored["hazard_episodes"]["privileged_cem"]) == 3  # cone, pedestrian, car
    assert stored["open_loop"]["samples"] >= 1
    assert (out / "heads.pt").is_file() and "| policy |" in (out / "results.md").read_text()
    assert len(sorted((out / "episodes").rglob("*.png"))) == 5
    assert len(sorted((out / "episodes").rglob("*.gif"))) == 5  # --animations 3 > 1 episode

    inspection_out = tmp_path / "inspect"
    inspection = _plan_tool().main(
        ["--ckpt", str(checkpoint), "--heads", str(out / "heads.pt"), "--inspect-energy", "1"]
        + ["--out", str(inspection_out), "--config", str(config_path)]
    )
    written = json.loads((inspection_out / "energy_spread.json").read_text())
    assert written["spread"]["moments"] == inspection["spread"]["moments"] >= 1
    assert set(written["spread"]["iteration_1"]) == {"goal", "cost", "collision", "off_road"}


def test_plan_tool_help_describes_the_animations(capsys) -> None:
    with pytest.raises(SystemExit):
        _plan_tool().parse_args(["--help"])
    assert "--animations" in capsys.readouterr().out


def test_hazard_summary_counts_the_episodes_that_faced_the_hazard():
    from bevjepa.planning.closed_loop import EpisodeResult

    def episode(seed: int, category: str, progress_m: float, hit: bool) -> EpisodeResult:
        return EpisodeResult(
            "p", seed, "town", False, int(hit), [], progress_m, 0.0, 0.0, progress_m, 10.0, 1.0,
            hazards_in_path={7: category}, hazards_hit=[7] if hit else [],
        )  # fmt: skip

    results = [
        episode(0, "movable_object.trafficcone", 22.0, hit=True),  # hit: faced
        episode(1, "human.pedestrian.adult", 17.0, hit=False),  # stopped 8 m short: faced, avoided
        episode(2, "human.pedestrian.adult", 9.0, hit=False),  # ended far before it: not faced
        episode(3, "vehicle.car", 15.0, hit=False),  # stopped behind the car: faced, avoided
    ]
    hazard_ids = {(seed, "town"): 7 for seed in range(4)}
    summary = _plan_tool().hazard_summary(results, hazard_ids, faced_from_m=15.0)
    assert summary == {
        "small_episodes": 3, "small_faced": 2, "small_hit_rate": 0.5,
        "large_episodes": 1, "large_faced": 1, "large_hit_rate": 0.0,
    }  # fmt: skip
