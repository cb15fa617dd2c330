"""Command-line options that describe a ``BevGrid``, shared by the tools."""

import argparse

from bevjepa.grid import BevGrid

NUSCENES_RANGE = (-51.2, -51.2, -5.0, 51.2, 51.2, 3.0)


def add_grid_arguments(
    parser: argparse.ArgumentParser, voxel_size: tuple[float, float, float] = (0.1, 0.1, 0.2)
) -> None:
    """Add ``--range`` and ``--voxel-size`` (defaults: the nuScenes range and ``voxel_size``)."""
    parser.add_argument(
        "--range",
        type=float,
        nargs=6,
        default=list(NUSCENES_RANGE),
        metavar=("XMIN", "YMIN", "ZMIN", "XMAX", "YMAX", "ZMAX"),
        help="point-cloud range in metres (default: nuScenes)",
    )
    parser.add_argument(
        "--voxel-size",
        type=float,
        nargs=3,
        default=list(voxel_size),
        metavar=("X", "Y", "Z"),
        help=f"voxel size in metres (default: {' '.join(map(str, voxel_size))})",
    )


def grid_from_arguments(args: argparse.Namespace) -> BevGrid:
    """The grid the parsed ``--range`` and ``--voxel-size`` describe."""
    return BevGrid(point_cloud_range=tuple(args.range), voxel_size=tuple(args.voxel_size))
