"""Drawing layers of a BEV picture on matplotlib axes, all in the LiDAR frame (x right, y up on the page)."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure

from bevjepa.geometry.boxes import box_corners_bev
from bevjepa.grid import BevGrid


def new_bev_axes(grid: BevGrid, panels: int, panel_size: float = 7.0) -> tuple[Figure, list[Axes]]:
    """A figure with ``panels`` square BEV axes spanning the grid's x-y range."""
    figure, axes = plt.subplots(
        1, panels, figsize=(panel_size * panels, panel_size), squeeze=False, layout="constrained"
    )
    x_min, y_min, _, x_max, y_max, _ = grid.point_cloud_range
    for ax in axes[0]:
        ax.set_xlim(x_min, x_max)
        ax.set_ylim(y_min, y_max)
        ax.set_aspect("equal")
        ax.set_facecolor("black")
        ax.grid(False)
        ax.set_xlabel("x (m)")
        ax.set_ylabel("y (m)")
    return figure, list(axes[0])


def draw_points(ax: Axes, points: np.ndarray, z_range: tuple[float, float] = (-3.0, 2.0)) -> None:
    """Scatter points (N, >=3) coloured by height z."""
    scatter = ax.scatter(
        points[:, 0],
        points[:, 1],
        c=points[:, 2],
        s=0.3,
        cmap="turbo",
        vmin=z_range[0],
        vmax=z_range[1],
        linewidths=0,
    )
    plt.colorbar(scatter, ax=ax, fraction=0.046, pad=0.02, label="height z (m)")


def draw_bev_map(
    ax: Axes, grid: BevGrid, values: np.ndarray, cmap: str, label: str, vmax: float | None = None
) -> None:
    """Show a map on the grid's BEV cells or voxel columns; ``values`` is (rows along y, cols along x)."""
    x_min, y_min, _, x_max, y_max, _ = grid.point_cloud_range
    image = ax.imshow(
        values,
        origin="lower",
        extent=(x_min, x_max, y_min, y_max),
        cmap=cmap,
        vmin=0,
        vmax=vmax,
        interpolation="nearest",
    )
    plt.colorbar(image, ax=ax, fraction=0.046, pad=0.02, label=label)


def voxel_columns(coords: np.ndarray, grid: BevGrid) -> np.ndarray:
    """Occupied voxels per x-y column, (ny, nx), from voxel coords (V, 3) ``[z, y, x]``."""
    _, ny, nx = grid.voxel_grid_shape
    counts = np.zeros((ny, nx), dtype=np.int32)
    np.add.at(counts, (coords[:, 1], coords[:, 2]), 1)
    return counts


def draw_boxes(ax: Axes, boxes: np.ndarray, labels: list[str] | None = None, color: str = "white") -> None:
    """Outline boxes (M, 7) with a heading tick from the centre to the front edge."""
    if len(boxes) == 0:
        return
    corners = box_corners_bev(boxes)  # (M, 4, 2)
    outlines = np.concatenate([corners, corners[:, :1]], axis=1)  # (M, 5, 2)
    front_middle = corners[:, [0, 3]].mean(axis=1)  # (M, 2)
    headings = np.stack([boxes[:, :2], front_middle], axis=1)  # (M, 2, 2)
    ax.add_collection(LineCollection(list(outlines), colors=color, linewidths=0.9))
    ax.add_collection(LineCollection(list(headings), colors=color, linewidths=0.9))
    if labels is not None:
        for (x, y), label in zip(boxes[:, :2], labels, strict=True):
            ax.text(x, y, label, color=color, fontsize=5, ha="left", va="bottom", clip_on=True)
