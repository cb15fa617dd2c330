"""Counting points inside annotation boxes the way nuScenes counts ``num_lidar_pts`` and ``num_radar_pts``."""

import numpy as np
from nuscenes.utils.data_classes import Box
from nuscenes.utils.geometry_utils import points_in_box


class PointsInBoxCounter:
    """Counts points inside boxes under the devkit's ``points_in_box`` convention (faces included).

    Points are sorted by x once, so that each box only tests the slice of points within its reach.
    """

    def __init__(self, points_global: np.ndarray):
        """
        Args:
            points_global: (N, 3) points in the global frame.
        """
        order = np.argsort(points_global[:, 0], kind="stable")
        self.points = np.asarray(points_global, dtype=np.float64)[order]  # (N, 3) sorted by x
        self.xs = self.points[:, 0]

    def count(self, box: Box) -> int:
        """How many of the points lie inside ``box`` (a devkit Box in the global frame)."""
        width, length, height = box.wlh
        reach = 0.5 * float(np.hypot(width, length)) + 1e-3  # half the footprint's diagonal, and a margin
        first = np.searchsorted(self.xs, box.center[0] - reach, side="left")
        last = np.searchsorted(self.xs, box.center[0] + reach, side="right")
        near = self.points[first:last]
        near = near[
            (np.abs(near[:, 1] - box.center[1]) <= reach)
            & (np.abs(near[:, 2] - box.center[2]) <= 0.5 * height + 1e-3)
        ]
        return int(np.count_nonzero(points_in_box(box, near.T))) if len(near) else 0
