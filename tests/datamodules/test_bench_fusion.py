"""The fusion benchmark runs end to end and only reports timings for output equal to the devkit's."""

import importlib.util
import json
from pathlib import Path

BENCHMARK = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_fusion.py"


def test_benchmark_compares_with_the_devkit_and_writes_json(synthetic_dataroot, tmp_path: Path, capsys):
    spec = importlib.util.spec_from_file_location("bench_fusion", BENCHMARK)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    dataroot, version = synthetic_dataroot
    out = tmp_path / "fusion.json"
    args = [
        "--dataroot",
        str(dataroot),
        "--version",
        version,
        "--keyframes",
        "3",
        "--rounds",
        "1",
        "--out",
        str(out),
    ]
    results = bench.main(args)
    assert json.loads(out.read_text()) == json.loads(json.dumps(results))
    assert "speed-up" in capsys.readouterr().out
    lidar, radar = results["rows"]
    assert lidar["name"].startswith("LiDAR") and radar["name"].startswith("radar")
    for row in (lidar, radar):
        assert row["max_position_error_m"] <= 1e-4 and row["max_time_lag_error_s"] <= 1e-6
        assert (
            row["ours_cpu_best_ms"] > 0 and row["devkit_cpu_best_ms"] > 0 and row["points_per_keyframe"] > 0
        )
    assert results["keyframes"] == 3
