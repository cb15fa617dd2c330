"""The ego vehicle: a kinematic bicycle model, the route it follows and its pure-pursuit autopilot.

Actions are a longitudinal acceleration and a yaw rate (``EgoAction``); the front-wheel steering angle
that realises the yaw rate at the current speed is kept in ``EgoState.steering``.
"""

from dataclasses import dataclass

import numpy as np

from bevjepa.sim.lane_graph import LaneGraph
from bevjepa.sim.planar import cumulative_length, vertex_headings
from bevjepa.sim.types import EgoAction, EgoState

# The model is integrated in steps of at most this long (the CAN bus steering rate is 100 Hz).
INTEGRATION_STEP_S = 0.01


@dataclass(frozen=True)
class EgoSpec:
    """Size and limits of the ego vehicle (a Renault Zoe, as the nuScenes vehicles).

    Attributes:
        length, width, height: body size in metres.
        wheelbase: distance between the axles.
        rear_overhang: body length behind the rear axle (the ego frame's origin).
        max_acceleration, max_deceleration: m/s^2, both positive.
        max_steering: front-wheel angle limit in radians.
        steering_ratio: steering-wheel angle per front-wheel angle.
    """

    length: float = 4.084
    width: float = 1.730
    height: float = 1.562
    wheelbase: float = 2.588
    rear_overhang: float = 0.72
    max_acceleration: float = 3.0
    max_deceleration: float = 8.0
    max_steering: float = 0.6
    steering_ratio: float = 15.0

    @property
    def centre_offset(self) -> float:
        """Distance from the rear axle forward to the body's centre."""
        return self.length / 2 - self.rear_overhang

    def box(self, state: EgoState) -> np.ndarray:
        """(7,) global ``[cx, cy, cz, dx, dy, dz, yaw]`` of the ego's body."""
        centre = state.position + self.centre_offset * np.array([np.cos(state.yaw), np.sin(state.yaw)])
        return np.array(
            [centre[0], centre[1], self.height / 2, self.length, self.width, self.height, state.yaw]
        )


def propagate(state: EgoState, action: EgoAction, duration: float, spec: EgoSpec) -> EgoState:
    """Drive the kinematic bicycle model (rear-axle reference) for ``duration`` seconds under ``action``.

    The acceleration is limited to the vehicle's range and the speed to >= 0 (no reversing); the yaw rate
    is limited by the steering lock at the current speed, so the ego cannot turn on the spot.

    Args:
        state: the ego now.
        action: commanded acceleration and yaw rate, held for the whole duration.
        duration: seconds (> 0); integrated with the midpoint rule in steps of at most 10 ms.
        spec: the vehicle.

    Returns:
        The ego after ``duration``.
    """
    steps = max(int(np.ceil(duration / INTEGRATION_STEP_S - 1e-9)), 1)
    dt = duration / steps
    (x, y), yaw, speed = state.position, state.yaw, state.speed
    steering, acceleration, yaw_rate = state.steering, 0.0, 0.0
    commanded = min(max(float(action.acceleration), -spec.max_deceleration), spec.max_acceleration)
    max_curvature = np.tan(spec.max_steering) / spec.wheelbase
    for _ in range(steps):
        new_speed = max(speed + commanded * dt, 0.0)
        acceleration = (new_speed - speed) / dt
        mid_speed = 0.5 * (speed + new_speed)
        max_yaw_rate = mid_speed * max_curvature
        yaw_rate = min(max(float(action.yaw_rate), -max_yaw_rate), max_yaw_rate)
        mid_yaw = yaw + 0.5 * yaw_rate * dt
        x += mid_speed * dt * np.cos(mid_yaw)
        y += mid_speed * dt * np.sin(mid_yaw)
        yaw += yaw_rate * dt
        speed = new_speed
        if mid_speed > 0.1:
            steering = float(np.arctan(spec.wheelbase * yaw_rate / mid_speed))
    return EgoState(
        position=np.array([x, y], dtype=float),
        yaw=float((yaw + np.pi) % (2 * np.pi) - np.pi),
        speed=speed,
        acceleration=acceleration,
        yaw_rate=yaw_rate,
        steering=steering,
    )


class Route:
    """A sequence of connected lanes the ego drives along, as one polyline.

    Attributes:
        lanes: lane indices in driving order.
        points: (P, 2) the concatenated centre lines; arc: (P,) arc length at each point.
        lane_starts: (len(lanes),) route arc length where each lane begins.
        length: total length.
    """

    def __init__(self, lane_graph: LaneGraph, lanes: list[int]) -> None:
        self.lanes = list(lanes)
        pieces, starts, total = [], [], 0.0
        for index, lane in enumerate(self.lanes):
            centerline = lane_graph.centerline(lane)
            starts.append(total)
            pieces.append(centerline if index == 0 else centerline[1:])
            total += float(lane_graph.lengths[lane])
        self.points = np.concatenate(pieces)
        self.arc = cumulative_length(self.points)
        self._headings = np.unwrap(vertex_headings(self.points))
        self.lane_starts = np.array(starts)
        self.length = float(self.arc[-1])

    def point_at(self, s: float) -> np.ndarray:
        """(2,) route point at arc length ``s`` (clamped to the route)."""
        return np.array(
            [np.interp(s, self.arc, self.points[:, 0]), np.interp(s, self.arc, self.points[:, 1])]
        )

    def heading_at(self, s: float) -> float:
        """Route direction at arc length ``s``, in radians."""
        return float(np.interp(s, self.arc, self._headings))

    def locate(self, position: np.ndarray, near_s: float, window: tuple[float, float] = (-10.0, 40.0)):
        """Project a point onto the route near where the ego was.

        Args:
            position: (2,) point.
            near_s: arc length close to the answer (the previous one); limits the search to ``window``.
            window: search range relative to ``near_s``, so that a route crossing itself is not confused.

        Returns:
            ``(s, lateral)``: arc length of the projection and signed distance to the left of the route.
        """
        first = max(int(np.searchsorted(self.arc, near_s + window[0])) - 1, 0)
        last = min(int(np.searchsorted(self.arc, near_s + window[1])) + 1, len(self.points) - 1)
        a, b = self.points[first:last], self.points[first + 1 : last + 1]  # (K, 2) segment ends
        along = b - a
        seg_length_sq = np.maximum(np.sum(along**2, axis=1), 1e-12)
        t = np.clip(np.sum((position - a) * along, axis=1) / seg_length_sq, 0.0, 1.0)
        foot = a + t[:, None] * along
        best = int(np.linalg.norm(position - foot, axis=1).argmin())
        offset = position - foot[best]
        lateral = float(along[best, 0] * offset[1] - along[best, 1] * offset[0]) / np.sqrt(
            seg_length_sq[best]
        )
        return float(self.arc[first + best] + t[best] * np.sqrt(seg_length_sq[best])), lateral

    def lane_at(self, s: float) -> tuple[int, int, float]:
        """``(index in lanes, lane, arc length on that lane)`` of route arc length ``s``."""
        index = int(np.clip(np.searchsorted(self.lane_starts, s, side="right") - 1, 0, len(self.lanes) - 1))
        return index, self.lanes[index], s - float(self.lane_starts[index])


def pure_pursuit_yaw_rate(state: EgoState, route: Route, rear_axle_s: float, spec: EgoSpec) -> float:
    """Yaw rate that steers the rear axle onto the route point a speed-dependent distance ahead.

    Args:
        state: the ego now.
        route: the route to follow.
        rear_axle_s: route arc length of the ego's rear axle.
        spec: the vehicle.

    Returns:
        The yaw rate (rad/s) of the circle through the rear axle and the look-ahead point.
    """
    lookahead = float(np.clip(3.0 + 0.6 * state.speed, 5.0, 15.0))
    target = route.point_at(rear_axle_s + lookahead) - state.position
    cos, sin = np.cos(state.yaw), np.sin(state.yaw)
    forward, left = cos * target[0] + sin * target[1], -sin * target[0] + cos * target[1]
    curvature = 2.0 * left / max(forward**2 + left**2, 1e-6)
    max_curvature = np.tan(spec.max_steering) / spec.wheelbase
    return float(state.speed * np.clip(curvature, -max_curvature, max_curvature))
