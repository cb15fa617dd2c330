"""A three-panel BEV picture of one dataset sample: sensors on the map, visibility, occupancy label."""

import numpy as np
from matplotlib.axes import Axes
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from bevjepa.grid import BevGrid
from bevjepa.viz.bev_figure import draw_boxes, new_bev_axes

# RGB per map layer, painted in this order: drivable_area, ped_crossing, walkway, stop_line, carpark_area,
# divider (the order of the probe labels' map rasters).
MAP_COLOURS = np.array(
    [
        [0.25, 0.25, 0.28],
        [0.95, 0.95, 0.95],
        [0.35, 0.5, 0.35],
        [0.9, 0.2, 0.2],
        [0.3, 0.3, 0.55],
        [0.55, 0.5, 0.2],
    ]
)
VISIBILITY_COLOURS = ListedColormap([[0.85, 0.85, 0.85], [0.1, 0.1, 0.1], [0.45, 0.55, 0.8]])
OCCUPANCY_COLOURS = {0: (0.9, 0.9, 0.9), 1: (0.15, 0.4, 0.9), 2: (0.95, 0.4, 0.1), 3: (0.3, 0.3, 0.3)}


def map_image(rasters: np.ndarray) -> np.ndarray:
    """(H, W, 3) RGB of map rasters (6, H, W), later layers on top, black where nothing is mapped."""
    image = np.zeros((*rasters.shape[1:], 3))
    for layer, colour in enumerate(MAP_COLOURS):
        image[rasters[layer]] = colour
    return image


def _show(ax: Axes, grid: BevGrid, image: np.ndarray, **kwargs) -> None:
    x_min, y_min, _, x_max, y_max, _ = grid.point_cloud_range
    ax.imshow(image, origin="lower", extent=(x_min, x_max, y_min, y_max), interpolation="nearest", **kwargs)


def sample_figure(
    grid: BevGrid,
    lidar: np.ndarray,
    radar: np.ndarray,
    rasters: np.ndarray,
    visibility: np.ndarray,
    target_visibility: np.ndarray,
    occupancy: np.ndarray,
    boxes: np.ndarray,
    trajectory: np.ndarray,
    title: str,
) -> Figure:
    """Draw one sample, everything in its LiDAR frame.

    Args:
        grid: the sample's grid.
        lidar: (N, 5) fused ``[x, y, z, intensity, time_lag]``; radar: (R, 7) ``[x, y, z, rcs, vx, vy, lag]``.
        rasters: (6, H, W) map rasters; visibility, target_visibility: (H, W) 0 free / 1 occupied / 2 unobserved.
        occupancy: (H, W) label (255 ignored); boxes: (M, 7); trajectory: (K, 2) future ego positions.
        title: the figure's title.
    """
    figure, axes = new_bev_axes(grid, 3)
    _show(axes[0], grid, map_image(rasters))
    order = np.argsort(-lidar[:, 4])  # older sweeps first, the keyframe sweep on top
    points = axes[0].scatter(
        lidar[order, 0],
        lidar[order, 1],
        c=lidar[order, 4],
        s=0.2,
        cmap="cool",
        vmin=0,
        vmax=0.5,
        linewidths=0,
    )
    figure.colorbar(points, ax=axes[0], fraction=0.046, pad=0.02, label="LiDAR time lag (s)")
    if len(radar):
        axes[0].quiver(radar[:, 0], radar[:, 1], radar[:, 4], radar[:, 5], color="red", angles="xy",
                       scale_units="xy", scale=1.0, width=0.004)  # fmt: skip
        axes[0].scatter(radar[:, 0], radar[:, 1], c="red", s=6, label="radar (arrow: velocity over 1 s)")
    draw_boxes(axes[0], boxes, color="lime")
    axes[0].plot(
        trajectory[:, 0], trajectory[:, 1], "o-", color="orange", markersize=4, label="ego future", zorder=5
    )
    axes[0].legend(loc="lower right", fontsize=7)
    axes[0].set_title("map, fused LiDAR and radar, boxes, ego future")

    _show(axes[1], grid, visibility, cmap=VISIBILITY_COLOURS, vmin=0, vmax=2)
    occluded = (visibility == 2) & (target_visibility != 2)
    overlay = np.zeros((*occluded.shape, 4))
    overlay[occluded] = (1.0, 0.2, 0.6, 0.8)
    _show(axes[1], grid, overlay)
    axes[1].legend(
        handles=[Patch(color=c, label=n) for c, n in zip(
            [*VISIBILITY_COLOURS.colors, (1.0, 0.2, 0.6)], ["free", "occupied", "unobserved", "occluded target"],
            strict=True)],
        loc="lower right", fontsize=7,
    )  # fmt: skip
    axes[1].set_title("visibility now; occluded cells seen from neighbouring keyframes")

    label_image = np.ones((*occupancy.shape, 3))
    for value, colour in OCCUPANCY_COLOURS.items():
        label_image[occupancy == value] = colour
    label_image[occupancy == 255] = (0.45, 0.55, 0.8)
    _show(axes[2], grid, label_image)
    draw_boxes(axes[2], boxes, color="black")
    names = ["free", "vehicle", "vulnerable", "static obstacle"]
    handles = [Patch(color=OCCUPANCY_COLOURS[i], label=n) for i, n in enumerate(names)]
    axes[2].legend(
        handles=[*handles, Patch(color=(0.45, 0.55, 0.8), label="ignored")], loc="lower right", fontsize=7
    )
    axes[2].set_title("occupancy label now")
    figure.suptitle(title)
    return figure
