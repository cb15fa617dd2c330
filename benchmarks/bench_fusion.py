"""Multi-sweep fusion timings: bevjepa's LiDAR and radar fusion against the devkit's ``from_file_multisweep``.

Both run in the same process on the same keyframes. Before timing, every keyframe's output is compared
with the devkit's (positions in metres, time lags in seconds) and the largest differences are reported, so
a speed-up is only claimed for equal output. Each method is timed over all keyframes in several rounds,
alternating methods between rounds, by the thread's CPU time (steady on a shared machine) and by the wall
clock; the table gives the best round, the JSON also the median round.

    python benchmarks/bench_fusion.py --dataroot DATAROOT --version v1.0-mini --out fusion.json
"""

import argparse
import json
import os
import platform
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from nuscenes.nuscenes import NuScenes
from nuscenes.utils.data_classes import LidarPointCloud, RadarPointCloud

from datamodules.lidar_fusion import fuse_lidar_sweeps
from datamodules.nuscenes_index import LIDAR_CHANNEL, RADAR_CHANNELS, NuScenesIndex, open_nuscenes
from datamodules.radar_fusion import fuse_radar_sweeps
from datamodules.sample_records import FusedPoints, KeyframeRecord


def devkit_lidar(nusc: NuScenes, record: KeyframeRecord, nsweeps: int) -> tuple[np.ndarray, np.ndarray]:
    """The devkit's fused LiDAR of a keyframe: ((N, 3) positions, (N,) time lags)."""
    sample = nusc.get("sample", record.sample_token)
    cloud, times = LidarPointCloud.from_file_multisweep(
        nusc, sample, LIDAR_CHANNEL, LIDAR_CHANNEL, nsweeps=nsweeps
    )
    return cloud.points[:3].T, times[0]


def devkit_radar(nusc: NuScenes, record: KeyframeRecord, nsweeps: int) -> tuple[np.ndarray, np.ndarray]:
    """The devkit's fused radar of a keyframe, channel after channel: ((N, 3) positions, (N,) time lags)."""
    sample = nusc.get("sample", record.sample_token)
    positions, time_lags = [], []
    for channel in RADAR_CHANNELS:
        if channel in sample["data"]:
            cloud, times = RadarPointCloud.from_file_multisweep(
                nusc, sample, channel, LIDAR_CHANNEL, nsweeps=nsweeps
            )
            positions.append(cloud.points[:3].T)
            time_lags.append(times[0])
    return np.concatenate(positions or [np.zeros((0, 3))]), np.concatenate(time_lags or [np.zeros(0)])


def largest_differences(
    ours: Sequence[FusedPoints], devkit: Sequence[tuple[np.ndarray, np.ndarray]]
) -> tuple[float, float]:
    """Largest position (m) and time-lag (s) difference over keyframes; inf where point counts differ."""
    position_error, time_error = 0.0, 0.0
    for fused, (positions, time_lags) in zip(ours, devkit, strict=True):
        if len(fused.points) != len(positions):
            return float("inf"), float("inf")
        if len(positions):
            position_error = max(position_error, float(np.abs(fused.points[:, :3] - positions).max()))
            time_error = max(time_error, float(np.abs(fused.points[:, -1] - time_lags).max()))
    return position_error, time_error


def time_rounds(
    methods: dict[str, Callable[[KeyframeRecord], object]], records: Sequence[KeyframeRecord], rounds: int
) -> dict[str, dict[str, list[float]]]:
    """Milliseconds per keyframe of each method in each round, methods alternating between rounds.

    Returns:
        Per method, ``{"cpu": [...], "wall": [...]}``: the thread's CPU time (what the work costs, steady
        on a shared machine) and the wall-clock time (what a caller waits, including time other processes
        took the core).
    """
    per_round: dict[str, dict[str, list[float]]] = {name: {"cpu": [], "wall": []} for name in methods}
    for _ in range(rounds):
        for name, method in methods.items():
            wall_start, cpu_start = time.perf_counter(), time.thread_time()
            for record in records:
                method(record)
            per_round[name]["cpu"].append((time.thread_time() - cpu_start) * 1e3 / len(records))
            per_round[name]["wall"].append((time.perf_counter() - wall_start) * 1e3 / len(records))
    return per_round


def compare_fusion(
    name: str,
    ours: Callable[[KeyframeRecord], FusedPoints],
    devkit: Callable[[KeyframeRecord], tuple[np.ndarray, np.ndarray]],
    records: Sequence[KeyframeRecord],
    rounds: int,
) -> dict:
    """Check that ``ours`` equals ``devkit`` on every record, then time both.

    Args:
        name: row label.
        ours: bevjepa's fusion of a record.
        devkit: the devkit's fusion of the same record as (positions, time lags).
        records: the keyframes.
        rounds: timing rounds per method.

    Returns:
        The table row: ms per keyframe of both (CPU and wall clock; best and median round), speed-ups,
        largest differences and the mean number of fused points.
    """
    fused = [ours(record) for record in records]  # also compiles kernels and warms the page cache
    position_error, time_error = largest_differences(fused, [devkit(record) for record in records])
    timings = time_rounds({"ours": ours, "devkit": devkit}, records, rounds)
    row = {"name": name, "points_per_keyframe": float(np.mean([len(f.points) for f in fused]))}
    for clock in ("cpu", "wall"):
        for summary, reduce in (("best", min), ("median", statistics.median)):
            ours_ms, devkit_ms = reduce(timings["ours"][clock]), reduce(timings["devkit"][clock])
            row[f"ours_{clock}_{summary}_ms"] = ours_ms
            row[f"devkit_{clock}_{summary}_ms"] = devkit_ms
            row[f"speedup_{clock}_{summary}"] = devkit_ms / ours_ms
    row["max_position_error_m"] = position_error
    row["max_time_lag_error_s"] = time_error
    return row


def print_table(rows: list[dict]) -> None:
    """One line per fusion: best-round ms per keyframe of both, CPU time and wall clock, and the errors."""
    header = (
        f"{'fusion':<22}{'points':>8}{'ours cpu ms':>13}{'devkit cpu ms':>15}{'speed-up':>10}"
        f"{'ours wall ms':>14}{'devkit wall ms':>16}{'speed-up':>10}{'max |dxyz| m':>14}{'max |dt| s':>12}"
    )
    print(header)
    print("-" * len(header))
    for row in rows:
        print(
            f"{row['name']:<22}{row['points_per_keyframe']:>8.0f}"
            f"{row['ours_cpu_best_ms']:>13.3f}{row['devkit_cpu_best_ms']:>15.3f}{row['speedup_cpu_best']:>9.1f}x"
            f"{row['ours_wall_best_ms']:>14.3f}{row['devkit_wall_best_ms']:>16.3f}{row['speedup_wall_best']:>9.1f}x"
            f"{row['max_position_error_m']:>14.1e}{row['max_time_lag_error_s']:>12.1e}"
        )


def main(argv: Sequence[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--dataroot", type=Path, required=True, help="nuScenes-format dataroot")
    parser.add_argument("--version", required=True, help="table folder, e.g. v1.0-mini")
    parser.add_argument("--keyframes", type=int, default=40, help="at most this many keyframes (default 40)")
    parser.add_argument("--lidar-sweeps", type=int, default=10, help="LiDAR sweeps per keyframe (default 10)")
    parser.add_argument(
        "--radar-sweeps", type=int, default=6, help="sweeps per radar (default 6); 0: no radar"
    )
    parser.add_argument("--rounds", type=int, default=5, help="timing rounds per method (default 5)")
    parser.add_argument("--out", type=Path, help="write the results as JSON here")
    args = parser.parse_args(argv)

    nusc = open_nuscenes(args.dataroot, args.version)
    index = NuScenesIndex(
        nusc,
        lidar_sweeps=args.lidar_sweeps,
        radar_sweeps=max(args.radar_sweeps, 1),
        radar=args.radar_sweeps > 0,
    )
    # Keyframes spread over the whole dataset, in table order.
    step = max(len(nusc.sample) // args.keyframes, 1)
    tokens = [sample["token"] for sample in nusc.sample[::step][: args.keyframes]]
    # Building records (table lookups, transforms) is done once per dataset, not per epoch: timed apart.
    index_start = time.thread_time()
    records = index.records_of(tokens)
    index_ms = (time.thread_time() - index_start) * 1e3 / len(records)
    rows = [
        compare_fusion(
            f"LiDAR, {args.lidar_sweeps} sweeps",
            fuse_lidar_sweeps,
            lambda record: devkit_lidar(nusc, record, args.lidar_sweeps),
            records,
            args.rounds,
        )
    ]
    if args.radar_sweeps > 0:
        rows.append(
            compare_fusion(
                f"radar, 5 x {args.radar_sweeps} sweeps",
                fuse_radar_sweeps,
                lambda record: devkit_radar(nusc, record, args.radar_sweeps),
                records,
                args.rounds,
            )
        )
    print(f"{len(records)} keyframes of {args.version} in {args.dataroot}, best of {args.rounds} rounds")
    print_table(rows)
    print(f"(building the index records, once per dataset: {index_ms:.3f} ms CPU per keyframe)")
    results = {
        "dataroot": str(args.dataroot),
        "version": args.version,
        "keyframes": len(records),
        "rounds": args.rounds,
        "index_cpu_ms_per_keyframe": index_ms,
        "machine": {
            "cpus": os.cpu_count(),
            "processor": platform.processor(),
            "python": platform.python_version(),
        },
        "rows": rows,
    }
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    main()
