"""Planar geometry for building and driving the town: polylines, strips along them and oriented rectangles.

Polylines are (N, 2) arrays ordered along their direction; "left" is the side 90 degrees counter-clockwise
of that direction. Rectangles are ``[cx, cy, length, width, yaw]`` rows or the x, y, dx, dy, yaw columns
of a ``[cx, cy, cz, dx, dy, dz, yaw]`` box.
"""

import numpy as np


def cumulative_length(points: np.ndarray) -> np.ndarray:
    """Arc length at each vertex of a polyline.

    Args:
        points: (N, 2) polyline.

    Returns:
        (N,) distance along the polyline from its first vertex.
    """
    steps = np.linalg.norm(np.diff(points, axis=0), axis=1)  # (N - 1,)
    return np.concatenate([[0.0], np.cumsum(steps)])


def resample_polyline(points: np.ndarray, spacing: float) -> np.ndarray:
    """Vertices at (nearly) equal arc-length spacing, keeping both end points.

    Args:
        points: (N, 2) polyline.
        spacing: wanted distance between vertices in metres.

    Returns:
        (M, 2) polyline with M >= 2.
    """
    arc = cumulative_length(points)
    count = max(int(np.ceil(arc[-1] / spacing)), 1) + 1
    targets = np.linspace(0.0, arc[-1], count)
    return np.stack([np.interp(targets, arc, points[:, 0]), np.interp(targets, arc, points[:, 1])], axis=1)


def cubic_bezier(
    p0: np.ndarray, p1: np.ndarray, p2: np.ndarray, p3: np.ndarray, count: int = 200
) -> np.ndarray:
    """Points of the cubic Bezier curve with control points p0..p3, each (2,); returns (count, 2)."""
    t = np.linspace(0.0, 1.0, count)[:, None]
    return (1 - t) ** 3 * p0 + 3 * (1 - t) ** 2 * t * p1 + 3 * (1 - t) * t**2 * p2 + t**3 * p3


def vertex_headings(points: np.ndarray) -> np.ndarray:
    """(N,) heading in radians at each vertex, the direction of the chord through its two neighbours."""
    forward = np.empty_like(points)
    forward[1:-1] = points[2:] - points[:-2]
    forward[0] = points[1] - points[0]
    forward[-1] = points[-1] - points[-2]
    return np.arctan2(forward[:, 1], forward[:, 0])


def left_normals(points: np.ndarray) -> np.ndarray:
    """(N, 2) unit normals pointing to the left of the direction of travel at each vertex."""
    heading = vertex_headings(points)
    return np.stack([-np.sin(heading), np.cos(heading)], axis=1)


def offset_polyline(points: np.ndarray, offset: float) -> np.ndarray:
    """The polyline shifted sideways by ``offset`` metres (positive to the left); returns (N, 2).

    Valid while ``|offset|`` is below the radius of curvature, which holds for lanes and walkways here.
    """
    return points + offset * left_normals(points)


def strip_polygon(points: np.ndarray, right_offset: float, left_offset: float) -> np.ndarray:
    """The counter-clockwise outline of the band between two sideways offsets of a polyline.

    Args:
        points: (N, 2) polyline.
        right_offset, left_offset: offsets of the band's edges, ``right_offset < left_offset``.

    Returns:
        (2N, 2) polygon.
    """
    right_edge = offset_polyline(points, right_offset)
    left_edge = offset_polyline(points, left_offset)
    return counter_clockwise(np.concatenate([right_edge, left_edge[::-1]]))


def counter_clockwise(polygon: np.ndarray) -> np.ndarray:
    """The (N, 2) ring reordered, if needed, so that its signed area is positive."""
    x, y = polygon[:, 0], polygon[:, 1]
    signed_area = 0.5 * np.sum(x * np.roll(y, -1) - np.roll(x, -1) * y)
    return polygon if signed_area > 0 else polygon[::-1].copy()


def sub_polyline(points: np.ndarray, start: float, end: float) -> np.ndarray:
    """The piece of a polyline between arc lengths ``start`` < ``end``, resampled at its vertex spacing.

    Even spacing matters: a vertex a few cm from an end gives that end a meaningless direction, and offsets
    of such a polyline fold over.

    Args:
        points: (N, 2) polyline.
        start, end: arc lengths of the piece's ends.

    Returns:
        (M, 2) polyline, M >= 2.
    """
    arc = cumulative_length(points)
    spacing = arc[-1] / (len(points) - 1)
    targets = np.linspace(start, end, max(int(np.ceil((end - start) / spacing)), 1) + 1)
    return np.stack([np.interp(targets, arc, points[:, 0]), np.interp(targets, arc, points[:, 1])], axis=1)


def extend_polyline(points: np.ndarray, length: float) -> np.ndarray:
    """The polyline prolonged straight by ``length`` metres beyond both ends; returns (N + 2, 2)."""
    head = points[0] - length * _unit(points[1] - points[0])
    tail = points[-1] + length * _unit(points[-1] - points[-2])
    return np.concatenate([head[None], points, tail[None]])


def _unit(vector: np.ndarray) -> np.ndarray:
    return vector / np.linalg.norm(vector)


def rectangle_corners(rectangles: np.ndarray) -> np.ndarray:
    """Corners of oriented rectangles, counter-clockwise from the front-left one.

    Args:
        rectangles: (M, 5) ``[cx, cy, length, width, yaw]``.

    Returns:
        (M, 4, 2) corners.
    """
    half_length, half_width = rectangles[:, 2:3] / 2, rectangles[:, 3:4] / 2  # (M, 1)
    local_x = np.concatenate([half_length, -half_length, -half_length, half_length], axis=1)  # (M, 4)
    local_y = np.concatenate([half_width, half_width, -half_width, -half_width], axis=1)
    cos, sin = np.cos(rectangles[:, 4:5]), np.sin(rectangles[:, 4:5])
    corners_x = rectangles[:, 0:1] + cos * local_x - sin * local_y
    corners_y = rectangles[:, 1:2] + sin * local_x + cos * local_y
    return np.stack([corners_x, corners_y], axis=-1)


def boxes_to_rectangles(boxes: np.ndarray) -> np.ndarray:
    """(M, 5) ``[cx, cy, dx, dy, yaw]`` footprints of (M, 7) ``[cx, cy, cz, dx, dy, dz, yaw]`` boxes."""
    return boxes[:, [0, 1, 3, 4, 6]]


def rectangles_overlap(rectangle: np.ndarray, others: np.ndarray) -> np.ndarray:
    """Which of ``others`` overlap ``rectangle`` (separating-axis test on the four edge normals).

    Args:
        rectangle: (5,) ``[cx, cy, length, width, yaw]``.
        others: (M, 5) rectangles.

    Returns:
        (M,) bool; touching counts as overlapping.
    """
    if len(others) == 0:
        return np.zeros(0, dtype=bool)
    own = rectangle_corners(rectangle[None])  # (1, 4, 2)
    theirs = rectangle_corners(others)  # (M, 4, 2)
    yaws = np.stack([np.full(len(others), rectangle[4]), others[:, 4]], axis=1)  # (M, 2)
    overlap = np.ones(len(others), dtype=bool)
    for axis_yaw in (yaws, yaws + np.pi / 2):
        for column in range(2):
            axis = np.stack([np.cos(axis_yaw[:, column]), np.sin(axis_yaw[:, column])], axis=1)  # (M, 2)
            own_proj = np.einsum("mkd,md->mk", np.broadcast_to(own, theirs.shape), axis)  # (M, 4)
            their_proj = np.einsum("mkd,md->mk", theirs, axis)
            separated = (own_proj.max(1) < their_proj.min(1)) | (their_proj.max(1) < own_proj.min(1))
            overlap &= ~separated
    return overlap


def rectangle_circle_overlap(rectangle: np.ndarray, circles: np.ndarray) -> np.ndarray:
    """Which circles ``[x, y, radius]`` (K, 3) overlap ``rectangle`` (5,); returns (K,) bool."""
    if len(circles) == 0:
        return np.zeros(0, dtype=bool)
    cos, sin = np.cos(rectangle[4]), np.sin(rectangle[4])
    offset = circles[:, :2] - rectangle[:2]  # (K, 2)
    local = np.stack(
        [cos * offset[:, 0] + sin * offset[:, 1], -sin * offset[:, 0] + cos * offset[:, 1]], axis=1
    )
    half = rectangle[2:4] / 2
    nearest = np.clip(local, -half, half)
    return np.linalg.norm(local - nearest, axis=1) <= circles[:, 2]


def wrap_angle(angle: np.ndarray | float) -> np.ndarray | float:
    """Angle(s) wrapped into [-pi, pi)."""
    return (np.asarray(angle) + np.pi) % (2 * np.pi) - np.pi
