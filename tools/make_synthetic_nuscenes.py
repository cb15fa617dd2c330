"""Generate a synthetic dataset in the nuScenes format: procedural towns, traffic, ray-cast LiDAR and radar.

    python tools/make_synthetic_nuscenes.py --preset demo --out data/synthetic --seed 0

Presets: ``tiny`` (two 4 s scenes, for tests), ``demo`` (train scenes in three towns and a held-out val town),
``nuscenes`` (nuScenes LiDAR density and 20 s scenes). The output folder then holds ``v1.0-<preset>/``,
``samples/``, ``sweeps/``, ``maps/``, ``can_bus/`` and ``bevjepa_splits.json``, and loads with
``NuScenes("v1.0-<preset>", dataroot)``. The same seed always gives the same bytes.
"""

import argparse
import os
import shutil
import sys
import time
from pathlib import Path

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from bevjepa.sim.generate import generate_dataset
from bevjepa.sim.presets import PRESETS, get_preset


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Generate a synthetic nuScenes-format dataset (towns, traffic, LiDAR, radar, HD map, CAN bus).",
    )
    parser.add_argument("--preset", required=True, choices=sorted(PRESETS), help="dataset size and sensors")
    parser.add_argument("--out", required=True, type=Path, help="output dataroot (created; must be empty)")
    parser.add_argument(
        "--seed", type=int, default=0, help="dataset seed (default 0); the same seed gives the same bytes"
    )
    parser.add_argument("--overwrite", action="store_true", help="delete a non-empty --out folder first")
    parser.add_argument(
        "--workers",
        type=int,
        default=min(os.cpu_count() or 1, 2),
        help="processes recording scenes in parallel (default: up to 2); the output does not depend on it",
    )
    args = parser.parse_args(argv)
    if args.seed < 0:
        parser.error(f"--seed must be non-negative, got {args.seed}")
    if args.workers < 1:
        parser.error(f"--workers must be at least 1, got {args.workers}")
    if args.out.exists() and not args.out.is_dir():
        parser.error(f"--out {args.out} exists and is not a folder")
    if args.out.is_dir() and any(args.out.iterdir()) and not args.overwrite:
        parser.error(f"--out {args.out} is not empty; pass --overwrite to replace its contents")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    preset = get_preset(args.preset)
    if args.out.is_dir() and args.overwrite:
        shutil.rmtree(args.out)
    args.out.mkdir(parents=True, exist_ok=True)

    scenes = preset.towns * preset.scenes_per_town
    start = time.perf_counter()
    with Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()
    ) as progress:
        task = progress.add_task(f"recording {preset.name} scenes", total=scenes)

        def scene_done(_) -> None:
            progress.advance(task)
            if progress.tasks[task].completed == scenes:
                progress.update(task, description="writing nuScenes files")

        generated = generate_dataset(
            preset, args.out, args.seed, workers=args.workers, on_scene_done=scene_done
        )
    elapsed = time.perf_counter() - start
    sweeps = sum(sum(c.channel == "LIDAR_TOP" for c in scene.captures) for scene in generated.scenes)
    print(
        f"wrote {preset.version} to {args.out}: {len(generated.scenes)} scenes "
        f"(train {len(generated.splits['train'])}, val {len(generated.splits['val'])}), "
        f"{sweeps} LiDAR sweeps, {len(generated.towns)} towns, in {elapsed:.1f} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
