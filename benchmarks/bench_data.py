"""Data-path timings of NuScenesBEVDataModule, all measured in one run on the same keyframes.

Rows: 10-sweep LiDAR fusion, ours vs the devkit's ``from_file_multisweep`` (output checked equal first);
one full sample (fusion + radar + voxelization + visibility + target view + futures + labels) from the raw
files and from the cache, on one core (CPU time of this process, and wall clock); cached samples collated
into batches on one core (a DataLoader without workers); and samples/s through a DataLoader with 2 workers,
raw and cached.

    python benchmarks/bench_data.py --dataroot data/synthetic_nuscenes --version v1.0-nuscenes --out data.json
"""

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
from bench_fusion import compare_fusion, devkit_lidar
from torch.utils.data import DataLoader

from bevjepa.grid import BevGrid
from datamodules.collate import collate_bev_batch
from datamodules.lidar_fusion import fuse_lidar_sweeps
from datamodules.nuscenes import NuScenesBEVDataModule


def per_item_ms(dataset, items: list[int], rounds: int) -> tuple[float, float]:
    """Best milliseconds per ``dataset[i]`` over the rounds (the whole item: keyframe plus future voxels),
    as ``(wall clock, CPU time of this process)``: on a shared machine the CPU time is the one-core cost."""
    wall, cpu = [], []
    for _ in range(rounds):
        wall_start, cpu_start = time.perf_counter(), time.process_time()
        for item in items:
            dataset[item]
        cpu.append((time.process_time() - cpu_start) * 1e3 / len(items))
        wall.append((time.perf_counter() - wall_start) * 1e3 / len(items))
    return min(wall), min(cpu)


def loader_samples_per_s(dataset, workers: int, batch_size: int) -> float:
    """Samples per second of a DataLoader in steady state: a second pass with the workers already running."""
    loader = DataLoader(
        dataset,
        batch_size=batch_size,
        num_workers=workers,
        collate_fn=collate_bev_batch,
        persistent_workers=True,
    )
    for _ in loader:  # starts the workers and warms their caches
        pass
    start, count = time.perf_counter(), 0
    for batch in loader:
        count += len(batch.sample_tokens)
    return count / (time.perf_counter() - start)


def one_core_loader_ms(dataset, batch_size: int, rounds: int) -> tuple[float, float]:
    """Best ``(wall, CPU)`` milliseconds per sample of a DataLoader without workers: loading plus collating
    into ``BevBatch`` es, all on the calling core."""
    loader = DataLoader(dataset, batch_size=batch_size, collate_fn=collate_bev_batch)
    wall, cpu = [], []
    for _ in range(rounds):
        wall_start, cpu_start = time.perf_counter(), time.process_time()
        count = sum(len(batch.sample_tokens) for batch in loader)
        cpu.append((time.process_time() - cpu_start) * 1e3 / count)
        wall.append((time.perf_counter() - wall_start) * 1e3 / count)
    return min(wall), min(cpu)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--dataroot", type=Path, required=True, help="nuScenes-format dataroot")
    parser.add_argument("--version", required=True, help="table folder, e.g. v1.0-nuscenes")
    parser.add_argument("--split", default="train", help="split to sample keyframes from")
    parser.add_argument("--samples", type=int, default=16, help="keyframes timed (default 16)")
    parser.add_argument(
        "--voxel-size", type=float, nargs=3, default=[0.1, 0.1, 0.2], help="default: nuScenes"
    )
    parser.add_argument("--rounds", type=int, default=3, help="timing rounds (default 3)")
    parser.add_argument("--cache-dir", type=Path, help="cache folder (default: a temporary one)")
    parser.add_argument("--out", type=Path, help="write the results as JSON here")
    args = parser.parse_args(argv)

    torch.set_num_threads(1)  # per-sample rows are "on one core"
    load_at_start = os.getloadavg()[0]
    grid = BevGrid(voxel_size=tuple(args.voxel_size))
    with tempfile.TemporaryDirectory() as scratch:
        cache_dir = args.cache_dir or Path(scratch)
        datamodule = NuScenesBEVDataModule(str(args.dataroot), args.version, grid=grid, cache_dir=None)
        cached_module = NuScenesBEVDataModule(
            str(args.dataroot), args.version, grid=grid, cache_dir=str(cache_dir)
        )
        raw = datamodule.dataset(args.split)
        cached = cached_module.dataset(args.split)
        step = max(len(raw) // args.samples, 1)
        items = list(range(0, len(raw), step))[: args.samples]
        records = [raw.records[i] for i in items]
        nusc = datamodule.builder.index.nusc

        fusion = compare_fusion(
            "LiDAR 10 sweeps", fuse_lidar_sweeps, lambda r: devkit_lidar(nusc, r, 10), records, args.rounds
        )
        raw_ms = per_item_ms(raw, items, args.rounds)
        # Fill the cache with every keyframe the timed samples read (their futures included).
        needed = {raw.records[i].sample_token for i in items}
        for i in items:
            needed.update(t for t in raw.records[i].future_sample_tokens[: datamodule.options.future_steps])
        for record in datamodule.builder.index.records_of(sorted(needed)):
            if not cached.cache.contains(record.scene_name, record.sample_token):
                cached.cache.save(record.scene_name, record.sample_token, datamodule.builder.build(record))
        cached_ms = per_item_ms(cached, items, args.rounds)
        subset_raw = torch.utils.data.Subset(raw, items)
        subset_cached = torch.utils.data.Subset(cached, items)
        cached_batches_ms = one_core_loader_ms(subset_cached, batch_size=4, rounds=args.rounds)
        raw_rate = loader_samples_per_s(subset_raw, workers=2, batch_size=4)
        cached_rate = loader_samples_per_s(subset_cached, workers=2, batch_size=4)
        voxels = statistics.mean(len(raw[i]["features"]) for i in items[:4])

    result = {
        "dataroot": str(args.dataroot),
        "version": args.version,
        "grid": {"range": grid.point_cloud_range, "voxel_size": grid.voxel_size, "bev_shape": grid.bev_shape},
        "samples": len(items),
        "machine": platform.processor() or platform.machine(),
        "lidar_fusion": fusion,
        "load_average_start_end": [load_at_start, os.getloadavg()[0]],
        "full_sample_raw_ms": raw_ms[0],
        "full_sample_raw_cpu_ms": raw_ms[1],
        "full_sample_cached_ms": cached_ms[0],
        "full_sample_cached_cpu_ms": cached_ms[1],
        "cached_samples_per_s_one_core": 1e3 / cached_ms[1],
        "cached_batches_one_core_ms": cached_batches_ms[0],
        "cached_batches_one_core_cpu_ms": cached_batches_ms[1],
        "cached_batches_samples_per_s_one_core": 1e3 / cached_batches_ms[1],
        "loader_2_workers_raw_samples_per_s": raw_rate,
        "loader_2_workers_cached_samples_per_s": cached_rate,
        "voxels_per_keyframe": voxels,
    }
    rows = [
        ("10-sweep LiDAR fusion, ours (ms/sample, CPU)", f"{fusion['ours_cpu_best_ms']:.1f}"),
        ("10-sweep LiDAR fusion, devkit (ms/sample, CPU)", f"{fusion['devkit_cpu_best_ms']:.1f}"),
        ("  speed-up, same output", f"{fusion['speedup_cpu_best']:.1f}x (max error {fusion['max_position_error_m']:.1e} m)"),
        ("full sample from raw files (ms, 1 core: CPU / wall)", f"{raw_ms[1]:.1f} / {raw_ms[0]:.1f}"),
        ("full sample from cache (ms, 1 core: CPU / wall)", f"{cached_ms[1]:.1f} / {cached_ms[0]:.1f}"),
        ("  = samples/s from cache, 1 core (CPU time)", f"{result['cached_samples_per_s_one_core']:.0f}"),
        ("cached batches of 4, collated, 1 core (ms/sample: CPU / wall)", f"{cached_batches_ms[1]:.1f} / {cached_batches_ms[0]:.1f}"),
        ("  = samples/s in batches from cache, 1 core (CPU time)", f"{result['cached_batches_samples_per_s_one_core']:.0f}"),
        ("DataLoader, 2 workers, raw (samples/s)", f"{raw_rate:.1f}"),
        ("DataLoader, 2 workers, cache (samples/s)", f"{cached_rate:.1f}"),
    ]  # fmt: skip
    print(f"load average (1 min) {load_at_start:.1f} at start, {os.getloadavg()[0]:.1f} at end")
    print(
        f"{args.version}, {len(items)} keyframes, grid {grid.voxel_size} m -> BEV {grid.bev_shape}, {voxels:.0f} voxels"
    )
    for name, value in rows:
        print(f"{name:<64}{value:>30}")
    if args.out:
        args.out.write_text(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    main(sys.argv[1:])
