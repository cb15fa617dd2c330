"""Preprocess a nuScenes-format dataroot into bevjepa's sample cache, sharded by scene.

  python tools/create_data.py --dataroot data/synthetic_demo --version v1.0-demo --cache-dir data/cache \
      --splits train val --workers 2

The cache lands in CACHE_DIR/<options hash>/<scene>/<sample>.bin with the options written beside it, so a
change of grid or options writes a new cache instead of mixing the two. Existing files are kept: an
interrupted run resumes. Pass the same options to the DataModule (``cache_dir``) to read it.
"""

import argparse
import multiprocessing
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from bevjepa.grid_arguments import add_grid_arguments, grid_from_arguments
from datamodules.nuscenes import NuScenesBEVDataModule


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--dataroot", type=Path, required=True, help="nuScenes-format dataroot")
    parser.add_argument("--version", required=True, help="table folder, e.g. v1.0-trainval or v1.0-demo")
    parser.add_argument("--cache-dir", type=Path, required=True, help="where the cache is written")
    parser.add_argument("--splits", nargs="+", default=["train", "val"], help="split names to preprocess")
    add_grid_arguments(parser)
    parser.add_argument("--lidar-sweeps", type=int, default=10)
    parser.add_argument("--no-radar", action="store_true", help="LiDAR only")
    parser.add_argument("--radar-sweeps", type=int, default=6)
    parser.add_argument("--future-steps", type=int, default=6)
    parser.add_argument("--occlusion-window", type=int, default=2)
    parser.add_argument("--no-labels", action="store_true", help="skip probe labels")
    parser.add_argument(
        "--workers",
        type=int,
        default=2,
        help="processes, each preprocessing whole scenes (1: in this process)",
    )
    return parser.parse_args(argv)


def datamodule_of(args: argparse.Namespace) -> NuScenesBEVDataModule:
    """The DataModule whose samples the cache will hold."""
    return NuScenesBEVDataModule(
        dataroot=str(args.dataroot),
        version=args.version,
        grid=grid_from_arguments(args),
        lidar_sweeps=args.lidar_sweeps,
        radar=not args.no_radar,
        radar_sweeps=args.radar_sweeps,
        future_steps=args.future_steps,
        occlusion_window=args.occlusion_window,
        labels=not args.no_labels,
        cache_dir=str(args.cache_dir),
    )


_PROCESS_DATAMODULE: NuScenesBEVDataModule | None = None


def preprocess_scene(args: argparse.Namespace, split: str, scene_name: str) -> int:
    """Write the missing payloads of one scene; returns how many were written."""
    global _PROCESS_DATAMODULE
    if _PROCESS_DATAMODULE is None:  # the dataset tables are loaded once per worker process
        _PROCESS_DATAMODULE = datamodule_of(args)
    datamodule = _PROCESS_DATAMODULE
    dataset = datamodule.dataset(split)
    assert dataset.cache is not None
    written = 0
    for record in dataset.records:
        if record.scene_name != scene_name or dataset.cache.contains(scene_name, record.sample_token):
            continue
        dataset.cache.save(scene_name, record.sample_token, datamodule.builder.build(record))
        written += 1
    return written


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    datamodule = datamodule_of(args)
    jobs = []
    for split in args.splits:
        try:
            records = datamodule.dataset(split).records
        except ValueError as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
        jobs += [(split, name) for name in dict.fromkeys(record.scene_name for record in records)]
    total_written = 0
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns) as progress:
        task = progress.add_task("scenes", total=len(jobs))
        if args.workers == 1:
            for split, name in jobs:
                total_written += preprocess_scene(args, split, name)
                progress.advance(task)
        else:
            # Fresh interpreters: forking a process that already runs torch and numba threads can deadlock.
            spawn = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(args.workers, mp_context=spawn) as pool:
                futures = [pool.submit(preprocess_scene, args, split, name) for split, name in jobs]
                for future in futures:
                    total_written += future.result()
                    progress.advance(task)
    cache_folder = args.cache_dir / datamodule.options.cache_key()
    print(f"wrote {total_written} samples ({len(jobs)} scenes) into {cache_folder}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
