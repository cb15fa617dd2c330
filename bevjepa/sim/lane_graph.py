"""The lanes of a town as arrays that traffic queries every step: poses along lanes, stop positions,
crossings each lane passes, and which connectors of an intersection cross each other's paths.
"""

import numpy as np

from bevjepa.sim.lane_layout import LaneInfo
from bevjepa.sim.planar import cumulative_length, vertex_headings
from bevjepa.sim.types import TownMap
from bevjepa.sim.walkways import CROSSING_FAR_M, CROSSING_NEAR_M, STOP_LINE_FAR_M, CrossingSite

# Connectors leaving the same lane overlap for their first metres: vehicles on them follow each other there.
SHARED_START_M = 8.0


class LaneGraph:
    """Lane geometry and topology for traffic.

    Attributes:
        lengths: (L,) centre-line length of each lane.
        successors, predecessors: lane indices a lane leads to / comes from.
        is_connector: (L,) bool.
        node: (L,) the intersection a lane ends at or a connector crosses.
        speed_limit: (L,) m/s, lowered on bends.
        rank: (L,) 0 for curb lanes, counting towards the road divider.
        min_radius: (L,) radius of each lane's sharpest bend, metres.
        stop_s: (L,) arc length of the stop line on a lane (NaN on connectors).
        connector_gaps: per connector, ``{other connector of its intersection: closest distance between their
            centre lines}``, leaving out its siblings; 0 for connectors that merge into the same lane.
        siblings: per connector, the other connectors leaving the same lane.
        crossing_spans: per lane, ``(crossing index, start, end)`` arc lengths where it passes a crossing.
    """

    def __init__(self, town_map: TownMap, lane_infos: list[LaneInfo], crossings: list[CrossingSite]) -> None:
        lanes = town_map.lanes
        self._centerlines = [lane.centerline for lane in lanes]
        self._arcs = [cumulative_length(c) for c in self._centerlines]
        self._headings = [np.unwrap(vertex_headings(c)) for c in self._centerlines]
        self.lengths = np.array([arc[-1] for arc in self._arcs])
        # All lanes on one arc-length axis, a metre apart, so that many poses take one interpolation.
        self._flat_start = np.concatenate([[0.0], np.cumsum(self.lengths + 1.0)[:-1]])
        self._flat_arc = np.concatenate(
            [start + arc for start, arc in zip(self._flat_start, self._arcs, strict=True)]
        )
        self._flat_points = np.concatenate(self._centerlines)
        self._flat_headings = np.concatenate(self._headings)
        self.successors = [list(lane.successors) for lane in lanes]
        self.predecessors: list[list[int]] = [[] for _ in lanes]
        for index, lane in enumerate(lanes):
            for successor in lane.successors:
                self.predecessors[successor].append(index)
        self.is_connector = np.array([lane.is_connector for lane in lanes])
        self.node = np.array([info.node for info in lane_infos])
        self.speed_limit = np.array([info.speed_limit for info in lane_infos])
        self.rank = np.array([info.rank for info in lane_infos])
        self.min_radius = np.array([_min_radius(c) for c in self._centerlines])
        self.stop_s = np.where(self.is_connector, np.nan, self.lengths - STOP_LINE_FAR_M)

        self.siblings: list[list[int]] = [[] for _ in lanes]
        self.connector_gaps: list[dict[int, float]] = [{} for _ in lanes]
        for node in np.unique(self.node):
            connectors = np.flatnonzero(self.is_connector & (self.node == node))
            for a in connectors:
                same_start = [
                    int(b) for b in connectors if b != a and self.predecessors[b] == self.predecessors[a]
                ]
                self.siblings[a] = same_start
                self.connector_gaps[a] = {
                    int(b): self._centerline_gap(a, b) for b in connectors if b != a and b not in same_start
                }

        self.crossing_spans: list[list[tuple[int, float, float]]] = [[] for _ in lanes]
        edges = np.array([info.edge for info in lane_infos])
        for crossing_index, crossing in enumerate(crossings):
            for lane in np.flatnonzero(edges == crossing.edge):
                # A lane meets the crossing near its end if it arrives at the crossing's intersection.
                if lane_infos[lane].node == crossing.node:
                    span = (self.lengths[lane] - CROSSING_FAR_M, self.lengths[lane] - CROSSING_NEAR_M)
                else:
                    span = (CROSSING_NEAR_M, CROSSING_FAR_M)
                self.crossing_spans[lane].append((crossing_index, span[0] - 0.3, span[1] + 0.3))

    def _centerline_gap(self, a: int, b: int) -> float:
        if self.successors[a] == self.successors[b]:
            return 0.0
        gaps = np.linalg.norm(self._centerlines[a][:, None] - self._centerlines[b][None], axis=-1)
        return float(gaps.min())

    def centerline(self, lane: int) -> np.ndarray:
        """(P, 2) centre line of ``lane``."""
        return self._centerlines[lane]

    def pose(self, lane: int, s: float) -> tuple[np.ndarray, float]:
        """Position (2,) and heading on ``lane`` at arc length ``s`` (clamped to the lane)."""
        positions, headings = self.poses(np.array([lane]), np.array([s]))
        return positions[0], float(headings[0])

    def poses(self, lanes: np.ndarray, s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Positions (N, 2) and headings (N,) at arc lengths ``s`` (N,) along ``lanes`` (N,), in one go."""
        flat_s = self._flat_start[lanes] + np.clip(s, 0.0, self.lengths[lanes])
        positions = np.stack(
            [
                np.interp(flat_s, self._flat_arc, self._flat_points[:, 0]),
                np.interp(flat_s, self._flat_arc, self._flat_points[:, 1]),
            ],
            axis=1,
        )
        return positions, np.interp(flat_s, self._flat_arc, self._flat_headings)


def _min_radius(centerline: np.ndarray) -> float:
    """Radius (m) of the sharpest bend of a centre line."""
    turn = np.abs(np.diff(np.unwrap(vertex_headings(centerline))))
    steps = np.linalg.norm(np.diff(centerline, axis=0), axis=1)
    return float(steps.min() / max(turn.max(), 1e-9)) if len(turn) else np.inf
