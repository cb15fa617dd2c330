"""Lane centre lines as nuScenes ``arcline_path_3`` records: chains of circular arcs and straights.

nuscenes-devkit's ``arcline_path_utils`` rebuilds a lane from ``start_pose``, ``shape``, ``radius`` and
``segment_length`` alone. A centre line becomes a chain of circular arcs and straights, each running from
one polyline vertex to a later one through the vertices between (within a tolerance): a polyline sampled
from straights and circular arcs is rebuilt exactly, a smoothly curving one with a few arcs per lane.
"""

import math

import numpy as np

# What nuScenes maps store as the radius of straight paths; a straight's arcs have zero length.
STRAIGHT_RADIUS_M = 999.999
MIN_EDGE_LENGTH_M = 1e-3


def _wrap(angle: float) -> float:
    """Angle in [-pi, pi), the devkit's principal value."""
    return (angle + math.pi) % (2.0 * math.pi) - math.pi


def _vertex_headings(points: np.ndarray) -> np.ndarray:
    """Tangent heading at every vertex, from the circle through each vertex and its neighbours.

    Args:
        points: (N, 2) polyline with N >= 2 and no repeated vertices.

    Returns:
        (N,) headings in radians.
    """
    edges = np.diff(points, axis=0)  # (N-1, 2)
    chord_headings = np.arctan2(edges[:, 1], edges[:, 0])  # (N-1,)
    if len(points) == 2:
        return np.repeat(chord_headings, 2)
    before, after = edges[:-1], edges[1:]  # (N-2, 2)
    # Tangent at the middle of three points on a circle: |after|^2 * before + |before|^2 * after.
    tangents = (np.sum(after**2, axis=1, keepdims=True) * before) + (
        np.sum(before**2, axis=1, keepdims=True) * after
    )
    headings = np.empty(len(points))
    headings[1:-1] = np.arctan2(tangents[:, 1], tangents[:, 0])
    # On a circle the tangents at both ends of a chord are mirror images about the chord.
    headings[0] = chord_headings[0] + _wrap(chord_headings[0] - headings[1])
    headings[-1] = chord_headings[-1] + _wrap(chord_headings[-1] - headings[-2])
    return headings


def _edge_arc(start: np.ndarray, heading: float, end: np.ndarray) -> tuple[float, float]:
    """Curvature (1/m, positive left) and length of the arc leaving ``start`` along ``heading`` to ``end``."""
    chord = end - start
    chord_length = float(np.hypot(chord[0], chord[1]))
    half_turn = _wrap(math.atan2(chord[1], chord[0]) - heading)
    if abs(half_turn) < 1e-12:
        return 0.0, chord_length
    length = chord_length * half_turn / math.sin(half_turn)
    return 2.0 * half_turn / length, length


def pose_along_arc(
    start_pose: tuple[float, float, float], curvature: float, length: float
) -> tuple[float, float, float]:
    """Pose reached after ``length`` metres on a constant-curvature path.

    Args:
        start_pose: (x, y, heading) at the start.
        curvature: 1/m, positive turning left.
        length: metres along the path.

    Returns:
        (x, y, heading) with the heading wrapped to [-pi, pi).
    """
    x, y, heading = start_pose
    turn = curvature * length
    if abs(turn) < 1e-12:
        return x + length * math.cos(heading), y + length * math.sin(heading), _wrap(heading)
    end_heading = heading + turn
    return (
        x + (math.sin(end_heading) - math.sin(heading)) / curvature,
        y - (math.cos(end_heading) - math.cos(heading)) / curvature,
        _wrap(end_heading),
    )


def _arcline_record(start_pose: tuple[float, float, float], curvature: float, length: float) -> dict:
    end_pose = pose_along_arc(start_pose, curvature, length)
    if curvature == 0.0:
        shape, radius, segment_length = "LSL", STRAIGHT_RADIUS_M, [0.0, length, 0.0]
    else:
        # The first segment of an LSL (RSR) path turns left (right); the other two have zero length.
        shape = "LSL" if curvature > 0 else "RSR"
        radius, segment_length = 1.0 / abs(curvature), [length, 0.0, 0.0]
    return {
        "start_pose": [float(start_pose[0]), float(start_pose[1]), _wrap(float(start_pose[2]))],
        "end_pose": [float(value) for value in end_pose],
        "shape": shape,
        "radius": float(radius),
        "segment_length": [float(value) for value in segment_length],
    }


def _max_miss(start_pose: tuple[float, float, float], curvature: float, points: np.ndarray) -> float:
    """Largest distance from (K, 2) ``points`` to the circle (or line) of a path."""
    x, y, heading = start_pose
    if abs(curvature) < 1e-12:
        normal = np.array([-math.sin(heading), math.cos(heading)])
        return float(np.max(np.abs((points - [x, y]) @ normal), initial=0.0))
    radius = 1.0 / curvature
    centre = np.array([x - radius * math.sin(heading), y + radius * math.cos(heading)])
    return float(np.max(np.abs(np.linalg.norm(points - centre, axis=1) - abs(radius)), initial=0.0))


def centerline_to_arcline_paths(
    centerline: np.ndarray, tolerance_m: float = 0.01, max_heading_jump: float = 0.05
) -> list[dict]:
    """Convert a lane centre line to the arcline paths NuScenesMap discretizes.

    Greedily, each path leaves a vertex and reaches the farthest later vertex it can with one circular arc
    (or straight) that passes through that vertex and stays within ``tolerance_m`` of the ones between.
    A path starts along the previous path's end heading, so the rebuilt lane has no heading jumps, except
    at kinks where that heading differs from the polyline's by more than ``max_heading_jump``.

    Args:
        centerline: (M, 2) points in the direction of travel.
        tolerance_m: how far the paths may pass from the polyline vertices.
        max_heading_jump: radians; larger differences are kinks in the polyline.

    Returns:
        ``arcline_path_3`` records (``start_pose``, ``end_pose``, ``shape``, ``radius``, ``segment_length``).
    """
    points = np.asarray(centerline, dtype=np.float64)
    keep = np.concatenate([[True], np.linalg.norm(np.diff(points, axis=0), axis=1) >= MIN_EDGE_LENGTH_M])
    points = points[keep]
    if len(points) < 2:
        raise ValueError(f"a centre line needs two distinct points, got {len(points)}")
    headings = _vertex_headings(points)
    records = []
    start, heading = 0, float(headings[0])
    while start < len(points) - 1:
        pose = (float(points[start, 0]), float(points[start, 1]), heading)
        end = start + 1
        curvature, length = _edge_arc(points[start], heading, points[end])
        while end + 1 < len(points):
            candidate = _edge_arc(points[start], heading, points[end + 1])
            if _max_miss(pose, candidate[0], points[start + 1 : end + 1]) > tolerance_m:
                break
            end += 1
            curvature, length = candidate
        records.append(_arcline_record(pose, curvature, length))
        heading = pose_along_arc(pose, curvature, length)[2]
        if abs(_wrap(heading - headings[end])) > max_heading_jump:
            heading = float(headings[end])
        start = end
    return records
