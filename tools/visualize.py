"""Render bird's-eye-view PNGs of bevjepa data.

  python tools/visualize.py frame --frame-dir ../shared/data/nuscenes_real_frame --out outputs/frame.png
  python tools/visualize.py frame --frame-dir DIR --ckpt model.ckpt --out outputs/frame_pred.png

  python tools/visualize.py sample --dataroot data/synthetic_demo --version v1.0-demo --index 0 --out s.png

The ``sample`` picture shows one keyframe of a nuScenes-format dataroot as bevjepa's DataModule sees it:
map layers, fused LiDAR by time lag and radar with velocities, boxes and the ego's future path; the
visibility with occluded-region targets; and the occupancy label.
The ``frame`` picture shows the LiDAR points coloured by height, the occupied voxels per column, and the
annotated boxes with their headings; with ``--ckpt`` (a BoxOccupancyModule checkpoint) a third panel shows
the predicted BEV occupancy next to the boxes.
"""

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

from bevjepa.grid import BevGrid
from bevjepa.grid_arguments import add_grid_arguments, grid_from_arguments
from bevjepa.sparse import Voxelizer, collate_voxels
from bevjepa.viz.bev_figure import draw_bev_map, draw_boxes, draw_points, new_bev_axes, voxel_columns
from bevjepa.viz.sample_figure import sample_figure
from datamodules.labels.annotation_boxes import sample_boxes_lidar
from datamodules.lidar_files import SensorFileError
from datamodules.real_frame import load_real_frame


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True)
    frame = commands.add_parser("frame", help="one real-frame folder (frame.json + .pcd.bin)")
    frame.add_argument("--frame-dir", type=Path, required=True, help="folder holding frame.json")
    frame.add_argument("--out", type=Path, required=True, help="PNG to write")
    frame.add_argument(
        "--ckpt", type=Path, help="BoxOccupancyModule checkpoint: adds a predicted-occupancy panel"
    )
    add_grid_arguments(frame, voxel_size=(0.2, 0.2, 0.2))
    sample = commands.add_parser("sample", help="one keyframe of a nuScenes-format dataroot")
    sample.add_argument("--dataroot", type=Path, required=True, help="nuScenes-format dataroot")
    sample.add_argument("--version", required=True, help="table folder, e.g. v1.0-mini or v1.0-demo")
    sample.add_argument("--split", default="val", help="split whose keyframes --index counts")
    sample.add_argument("--index", type=int, default=0, help="keyframe number within the split")
    sample.add_argument("--out", type=Path, required=True, help="PNG to write")
    add_grid_arguments(sample)
    return parser.parse_args(argv)


def predicted_occupancy(ckpt: Path, points: np.ndarray) -> tuple[BevGrid, np.ndarray]:
    """Occupancy probabilities (H, W) of a BoxOccupancyModule checkpoint on one frame, and its grid."""
    from bevjepa.supervised.box_occupancy import BoxOccupancyModule

    module = BoxOccupancyModule.load_from_checkpoint(ckpt, map_location="cpu").eval()
    grid = module.encoder.grid
    features, coords, _ = Voxelizer(grid, module.hparams.in_channels)(points[:, : module.hparams.in_channels])
    with torch.no_grad():
        logits = module.head(module.encoder(collate_voxels([(features, coords)])))  # (1, 1, H, W)
    return grid, torch.sigmoid(logits)[0, 0].numpy()


def render_frame(args: argparse.Namespace) -> Path:
    frame = load_real_frame(args.frame_dir)
    grid = grid_from_arguments(args)
    labels = [c for c in frame.categories]
    inside = grid.contains(torch.from_numpy(frame.points)).numpy()
    panels = 3 if args.ckpt else 2
    figure, axes = new_bev_axes(grid, panels)

    draw_points(axes[0], frame.points[inside])
    draw_boxes(axes[0], frame.boxes, labels)
    axes[0].set_title(f"LiDAR points by height ({inside.sum()} in range), {len(frame.boxes)} boxes")

    _, coords, _ = Voxelizer(grid, frame.points.shape[1])(frame.points)
    draw_bev_map(
        axes[1], grid, voxel_columns(coords.numpy(), grid), "magma", "occupied voxels in column", vmax=4
    )
    draw_boxes(axes[1], frame.boxes, color="cyan")
    axes[1].set_title(f"voxel occupancy ({len(coords)} voxels of {grid.voxel_size} m)")

    if args.ckpt:
        model_grid, probability = predicted_occupancy(args.ckpt, frame.points)
        draw_bev_map(axes[2], model_grid, probability, "viridis", "P(occupied)", vmax=1.0)
        draw_boxes(axes[2], frame.boxes, color="white")
        axes[2].set_title(f"predicted box occupancy ({Path(args.ckpt).name})")

    figure.suptitle(f"nuScenes sample {frame.sample_token} (LiDAR frame)")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(args.out, dpi=110)
    return args.out


def render_sample(args: argparse.Namespace) -> Path:
    from datamodules.lidar_fusion import fuse_lidar_sweeps
    from datamodules.nuscenes import NuScenesBEVDataModule
    from datamodules.radar_fusion import fuse_radar_sweeps

    grid = grid_from_arguments(args)
    datamodule = NuScenesBEVDataModule(str(args.dataroot), args.version, grid=grid)
    records = datamodule.dataset(args.split).records
    if not 0 <= args.index < len(records):
        raise ValueError(
            f"--index {args.index} is outside the {len(records)} keyframes of split {args.split!r}"
        )
    record = records[args.index]
    payload = datamodule.builder.build(record)
    boxes = sample_boxes_lidar(datamodule.builder.index.nusc, record.sample_token, record.lidar_to_global)
    valid = payload["future_valid"].numpy()
    figure = sample_figure(
        grid=grid,
        lidar=fuse_lidar_sweeps(record).points,
        radar=fuse_radar_sweeps(record).points,
        rasters=payload["map_rasters"].numpy(),
        visibility=payload["visibility"].numpy(),
        target_visibility=payload["target_visibility"].numpy(),
        occupancy=payload["occupancy"][0].numpy(),
        boxes=boxes.boxes,
        trajectory=payload["ego_trajectory"].numpy()[valid],
        title=f"{args.version} {record.scene_name} sample {record.sample_token} (LiDAR frame)",
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(args.out, dpi=110)
    return args.out


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        out = render_frame(args) if args.command == "frame" else render_sample(args)
    except (SensorFileError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
