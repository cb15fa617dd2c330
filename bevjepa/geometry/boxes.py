"""Oriented 3D boxes ``[cx, cy, cz, dx, dy, dz, yaw]``: gravity centre, size along the box's own x (length),
y (width) and z (height) axes, and yaw about +z from the frame's x axis (the mmdetection3d / OpenPCDet LiDAR
box convention; nuScenes stores the same box as centre, size (w, l, h) and a rotation quaternion)."""

import numpy as np


def points_to_box_frames(points: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """Express points in each box's own frame (origin at the centre, x along the heading).

    Args:
        points: (N, >=3) points; only x, y, z are used.
        boxes: (M, 7) boxes.

    Returns:
        (M, N, 3) local coordinates.
    """
    offset = points[None, :, :3] - boxes[:, None, :3]  # (M, N, 3)
    cos, sin = np.cos(boxes[:, 6])[:, None], np.sin(boxes[:, 6])[:, None]  # (M, 1)
    local_x = offset[..., 0] * cos + offset[..., 1] * sin
    local_y = -offset[..., 0] * sin + offset[..., 1] * cos
    return np.stack([local_x, local_y, offset[..., 2]], axis=-1)


def points_in_boxes(points: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """Which points lie inside which boxes, faces included (nuScenes' ``points_in_box`` convention).

    Args:
        points: (N, >=3) points.
        boxes: (M, 7) boxes in the same frame.

    Returns:
        (M, N) boolean mask.
    """
    local = points_to_box_frames(points, boxes)  # (M, N, 3)
    half_size = boxes[:, None, 3:6] / 2.0  # (M, 1, 3)
    return np.all(np.abs(local) <= half_size, axis=-1)


def box_corners_bev(boxes: np.ndarray) -> np.ndarray:
    """The four ground-plane corners of each box, counter-clockwise from front-left.

    Args:
        boxes: (M, 7) boxes.

    Returns:
        (M, 4, 2) corner x, y.
    """
    half_length, half_width = boxes[:, 3] / 2.0, boxes[:, 4] / 2.0
    local = np.stack(
        [
            np.stack([half_length, half_width], axis=-1),
            np.stack([-half_length, half_width], axis=-1),
            np.stack([-half_length, -half_width], axis=-1),
            np.stack([half_length, -half_width], axis=-1),
        ],
        axis=1,
    )  # (M, 4, 2)
    cos, sin = np.cos(boxes[:, 6])[:, None], np.sin(boxes[:, 6])[:, None]
    x = local[..., 0] * cos - local[..., 1] * sin + boxes[:, None, 0]
    y = local[..., 0] * sin + local[..., 1] * cos + boxes[:, None, 1]
    return np.stack([x, y], axis=-1)
