"""Rasterising boxes onto a ``BevGrid``'s BEV cells."""

import numpy as np
import torch

from bevjepa.geometry.boxes import points_to_box_frames
from bevjepa.grid import BevGrid


def boxes_to_bev_mask(boxes: np.ndarray, grid: BevGrid) -> np.ndarray:
    """Cells whose centre lies inside the ground footprint of a box, plus the cell holding each box's centre
    (so that boxes smaller than a cell, such as pedestrians, still mark one cell).

    Args:
        boxes: (M, 7) ``[cx, cy, cz, dx, dy, dz, yaw]`` in the grid's frame.
        grid: the grid.

    Returns:
        (H, W) boolean mask on ``grid.bev_shape``.
    """
    height, width = grid.bev_shape
    if len(boxes) == 0:
        return np.zeros((height, width), dtype=bool)
    centers = grid.bev_cell_centers().numpy().reshape(-1, 2)  # (H * W, 2)
    centers = np.concatenate([centers, np.zeros((len(centers), 1))], axis=1)  # (H * W, 3) on z = 0
    flat_boxes = np.array(boxes, dtype=np.float64)
    flat_boxes[:, 2] = 0.0  # footprint only
    local = points_to_box_frames(centers, flat_boxes)  # (M, H * W, 3)
    inside = (np.abs(local[..., 0]) <= flat_boxes[:, None, 3] / 2) & (
        np.abs(local[..., 1]) <= flat_boxes[:, None, 4] / 2
    )
    mask = inside.any(axis=0).reshape(height, width)
    centre_cells = grid.metric_to_bev_index(torch.from_numpy(flat_boxes[:, :2])).numpy()  # (M, 2) [row, col]
    centre_cells = centre_cells[centre_cells[:, 0] >= 0]
    mask[centre_cells[:, 0], centre_cells[:, 1]] = True
    return mask
