"""Rasterising boxes onto a ``BevGrid``'s BEV cells."""

import functools

import numba
import numpy as np
import torch

from bevjepa.geometry.boxes import box_corners_bev
from bevjepa.grid import BevGrid


@functools.lru_cache(maxsize=8)
def _cell_centres(grid: BevGrid) -> np.ndarray:
    return np.ascontiguousarray(grid.bev_cell_centers().numpy())  # (H, W, 2)


@numba.njit(cache=True)
def _mark_footprints(
    centres: np.ndarray,
    boxes: np.ndarray,
    coses: np.ndarray,
    sines: np.ndarray,
    windows: np.ndarray,
    mask: np.ndarray,
) -> None:
    """Mark the cells of each box's window ``[row_lo, row_hi, col_lo, col_hi]`` whose centre lies in its
    footprint, with the arithmetic of ``points_to_box_frames`` term for term so boundary cells agree with it."""
    for i in range(boxes.shape[0]):
        half_length, half_width = boxes[i, 3] / 2, boxes[i, 4] / 2
        for row in range(windows[i, 0], windows[i, 1] + 1):
            for col in range(windows[i, 2], windows[i, 3] + 1):
                offset_x = centres[row, col, 0] - boxes[i, 0]
                offset_y = centres[row, col, 1] - boxes[i, 1]
                local_x = offset_x * coses[i] + offset_y * sines[i]
                local_y = -offset_x * sines[i] + offset_y * coses[i]
                if abs(local_x) <= half_length and abs(local_y) <= half_width:
                    mask[row, col] = True


def boxes_to_bev_mask(boxes: np.ndarray, grid: BevGrid) -> np.ndarray:
    """Cells whose centre lies inside the ground footprint of a box, plus the cell holding each box's centre
    (so that boxes smaller than a cell, such as pedestrians, still mark one cell).

    Each box is tested only against the cells its corners span, not the whole grid.

    Args:
        boxes: (M, 7) ``[cx, cy, cz, dx, dy, dz, yaw]`` in the grid's frame.
        grid: the grid.

    Returns:
        (H, W) boolean mask on ``grid.bev_shape``.
    """
    height, width = grid.bev_shape
    mask = np.zeros((height, width), dtype=bool)
    if len(boxes) == 0:
        return mask
    cell_x, cell_y = grid.bev_cell_size
    x_min, y_min = grid.point_cloud_range[:2]
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 7)
    corners = box_corners_bev(boxes)  # (M, 4, 2)
    windows = np.stack(
        [
            np.maximum(np.floor((corners[..., 1].min(1) - y_min) / cell_y), 0),
            np.minimum(np.floor((corners[..., 1].max(1) - y_min) / cell_y), height - 1),
            np.maximum(np.floor((corners[..., 0].min(1) - x_min) / cell_x), 0),
            np.minimum(np.floor((corners[..., 0].max(1) - x_min) / cell_x), width - 1),
        ],
        axis=1,
    ).astype(np.int64)  # (M, 4) [row_lo, row_hi, col_lo, col_hi]
    _mark_footprints(_cell_centres(grid), boxes, np.cos(boxes[:, 6]), np.sin(boxes[:, 6]), windows, mask)
    centre_cells = grid.metric_to_bev_index(
        torch.from_numpy(boxes[:, :2].copy())
    ).numpy()  # (M, 2) [row, col]
    centre_cells = centre_cells[centre_cells[:, 0] >= 0]
    mask[centre_cells[:, 0], centre_cells[:, 1]] = True
    return mask
