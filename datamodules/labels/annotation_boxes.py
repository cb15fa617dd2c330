"""Annotated boxes of a keyframe in a chosen LiDAR frame: now, and at future keyframes for agent futures.

nuScenes stores each ``sample_annotation`` in the global frame as a centre, a size ``(w, l, h)`` and a rotation
quaternion; bevjepa's boxes are ``[cx, cy, cz, dx, dy, dz, yaw]`` with ``dx`` the length along the heading and
``yaw`` the heading about +z of the target frame (see ``bevjepa.geometry.boxes``). The conversion below is the
devkit's ``Box`` translate/rotate into a sensor frame (``NuScenes.get_sample_data``), done with arrays.
"""

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
from nuscenes.nuscenes import NuScenes


class AnnotationBoxes(NamedTuple):
    """The annotated objects of one keyframe in one LiDAR frame.

    Attributes:
        boxes: (M, 7) float64 ``[cx, cy, cz, dx, dy, dz, yaw]``.
        categories: M nuScenes category names (e.g. ``vehicle.car``).
        instance_tokens: M ``instance`` tokens: the same object across keyframes.
        velocities: (M, 2) float64 ``[vx, vy]`` in m/s in the same frame; NaN where the devkit cannot estimate
            one (an object annotated in a single keyframe, or neighbours too far apart in time).
    """

    boxes: np.ndarray
    categories: list[str]
    instance_tokens: list[str]
    velocities: np.ndarray


def _quaternion_x_axes(quaternions: np.ndarray) -> np.ndarray:
    """(M, 3) first column of the rotation matrix of each ``(w, x, y, z)`` quaternion (M, 4): the box heading."""
    w, x, y, z = (quaternions / np.linalg.norm(quaternions, axis=1, keepdims=True)).T
    return np.stack([1 - 2 * (y * y + z * z), 2 * (x * y + w * z), 2 * (x * z - w * y)], axis=1)


def global_boxes_to_lidar(
    translations: np.ndarray, sizes_wlh: np.ndarray, rotations: np.ndarray, lidar_to_global: np.ndarray
) -> np.ndarray:
    """Convert nuScenes global boxes into ``[cx, cy, cz, dx, dy, dz, yaw]`` boxes of a LiDAR frame.

    Args:
        translations: (M, 3) global box centres.
        sizes_wlh: (M, 3) nuScenes sizes (width, length, height).
        rotations: (M, 4) global rotations as ``(w, x, y, z)`` quaternions.
        lidar_to_global: (4, 4) pose of the target LiDAR frame.

    Returns:
        (M, 7) float64 boxes; the yaw is the heading projected onto the frame's x-y plane, as
        ``Box.orientation.yaw_pitch_roll[0]`` after the devkit's rotation into that frame.
    """
    global_to_lidar = np.linalg.inv(lidar_to_global)
    centres = translations @ global_to_lidar[:3, :3].T + global_to_lidar[:3, 3]  # (M, 3)
    headings = _quaternion_x_axes(rotations) @ global_to_lidar[:3, :3].T  # (M, 3)
    yaws = np.arctan2(headings[:, 1], headings[:, 0])
    return np.column_stack([centres, sizes_wlh[:, [1, 0, 2]], yaws]).astype(np.float64)


def sample_boxes_lidar(
    nusc: NuScenes, sample_token: str, lidar_to_global: np.ndarray, min_points: int = 0
) -> AnnotationBoxes:
    """The annotated boxes of a keyframe, in the LiDAR frame given by ``lidar_to_global``.

    Args:
        nusc: the dataset.
        sample_token: the keyframe whose annotations are read.
        lidar_to_global: (4, 4) pose of the frame to express them in (the keyframe's own LIDAR_TOP frame, or
            the current keyframe's for the boxes of a future keyframe).
        min_points: keep boxes with at least this many LiDAR plus radar points (1 is the nuScenes detection
            benchmark's filter; 0 keeps everything).

    Returns:
        The boxes, categories, instance tokens and velocities, in annotation order.
    """
    annotations = [nusc.get("sample_annotation", token) for token in nusc.get("sample", sample_token)["anns"]]
    annotations = [a for a in annotations if a["num_lidar_pts"] + a["num_radar_pts"] >= min_points]
    if not annotations:
        return AnnotationBoxes(np.zeros((0, 7)), [], [], np.zeros((0, 2)))
    boxes = global_boxes_to_lidar(
        np.array([a["translation"] for a in annotations], dtype=np.float64),
        np.array([a["size"] for a in annotations], dtype=np.float64),
        np.array([a["rotation"] for a in annotations], dtype=np.float64),
        lidar_to_global,
    )
    global_velocities = np.array([nusc.box_velocity(a["token"]) for a in annotations])  # (M, 3)
    velocities = global_velocities @ np.linalg.inv(lidar_to_global)[:3, :3].T  # rotation only
    return AnnotationBoxes(
        boxes=boxes,
        categories=[a["category_name"] for a in annotations],
        instance_tokens=[a["instance_token"] for a in annotations],
        velocities=velocities[:, :2],
    )


def future_agent_boxes(
    nusc: NuScenes, future_sample_tokens: Sequence[str], lidar_to_global: np.ndarray, min_points: int = 0
) -> list[AnnotationBoxes]:
    """The annotated boxes of each future keyframe, all in the current keyframe's LiDAR frame.

    Args:
        nusc: the dataset.
        future_sample_tokens: the future keyframes, in order (``KeyframeRecord.future_sample_tokens``).
        lidar_to_global: (4, 4) pose of the current keyframe's LIDAR_TOP frame.
        min_points: as in ``sample_boxes_lidar``.

    Returns:
        One ``AnnotationBoxes`` per future keyframe.
    """
    return [sample_boxes_lidar(nusc, token, lidar_to_global, min_points) for token in future_sample_tokens]


def track_instances(
    current: AnnotationBoxes, futures: Sequence[AnnotationBoxes]
) -> tuple[np.ndarray, np.ndarray]:
    """Follow the current keyframe's objects through the future keyframes by instance token.

    Args:
        current: the current keyframe's boxes (M objects).
        futures: K future keyframes' boxes, in the same frame.

    Returns:
        ``(boxes, present)``: (K, M, 7) float64 future boxes of each current object (zeros where absent) and a
        (K, M) bool mask of the steps where the object is still annotated.
    """
    column = {token: index for index, token in enumerate(current.instance_tokens)}
    boxes = np.zeros((len(futures), len(column), 7))
    present = np.zeros((len(futures), len(column)), dtype=bool)
    for step, future in enumerate(futures):
        for box, token in zip(future.boxes, future.instance_tokens, strict=True):
            if token in column:
                boxes[step, column[token]] = box
                present[step, column[token]] = True
    return boxes, present
