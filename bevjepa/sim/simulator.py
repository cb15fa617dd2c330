"""The closed-loop simulator: a town, its traffic and the ego, stepped on a fixed clock with sensors.

``reset(seed)`` builds (or takes) a town, spawns traffic and an ego route, lets traffic settle, and returns
the first frame; ``step(action)`` drives the ego by one LiDAR period (50 ms) under an ``EgoAction`` (or
under its autopilot when the action is None) while traffic reacts, and returns the new frame: LiDAR and
radar captures, annotated objects and the safety checks (collision, off-road, route progress).

The recorder uses the finer-grained pieces: ``advance`` (world only), ``capture_lidar`` and
``capture_radar`` at any instant of the last step (objects are interpolated between the step's ends,
the ego is integrated exactly).
"""

from dataclasses import dataclass, field

import numpy as np

from bevjepa.sim.calibration import LIDAR_TOP, RADARS, SensorMount
from bevjepa.sim.ego import INTEGRATION_STEP_S, Route, propagate, pure_pursuit_yaw_rate
from bevjepa.sim.lane_graph import LaneGraph
from bevjepa.sim.lidar import cast_lidar
from bevjepa.sim.planar import (
    boxes_to_rectangles,
    rectangle_circle_overlap,
    rectangle_corners,
    rectangles_overlap,
)
from bevjepa.sim.presets import get_preset
from bevjepa.sim.radar import cast_radar
from bevjepa.sim.simulator_config import SimulatorConfig
from bevjepa.sim.town import Town, generate_town
from bevjepa.sim.traffic import EgoOnLanes, Traffic
from bevjepa.sim.types import EgoAction, EgoState, ObjectState, RaycastScene, SensorCapture

# 2018-07-24 02:00:00 UTC, a morning in Singapore: when a reset without a start time begins.
DEFAULT_START_US = 1_532_397_600_000_000
# Beyond this lateral offset (or heading error) from its route the ego is no longer "on its lane".
_ON_ROUTE_LATERAL_M = 1.5
_ON_ROUTE_HEADING_RAD = np.pi / 6


@dataclass
class EgoChecks:
    """Safety and progress of the ego at one instant.

    Attributes:
        collided_with: instance ids of the objects the ego's box overlaps; -1 for a building, wall or pole.
        off_road: a corner of the ego's box is off the drivable area.
        route_progress_m: distance driven along the route since the first frame.
        route_completion: share of the route driven.
        lateral_offset_m: distance of the rear axle to the left of the route.
    """

    collided_with: list[int]
    off_road: bool
    route_progress_m: float
    route_completion: float
    lateral_offset_m: float

    @property
    def collision(self) -> bool:
        """Whether the ego touches anything."""
        return bool(self.collided_with)


@dataclass
class SimFrame:
    """What the simulator returns after ``reset`` and each ``step``.

    Attributes:
        time_s: simulated seconds since the first frame; timestamp_us: the same as a log timestamp.
        ego: the ego state.
        objects: every annotated object (static ones included).
        lidar: the LIDAR_TOP sweep taken now.
        radars: one sweep of each of the five radars, taken now.
        checks: collision, off-road and route progress.
    """

    time_s: float
    timestamp_us: int
    ego: EgoState
    objects: list[ObjectState]
    lidar: SensorCapture
    radars: list[SensorCapture]
    checks: EgoChecks


@dataclass
class _Snapshot:
    """The world at the end of a step: time, ego, agent states (in a fixed order) and their arrays."""

    time_us: int
    ego: EgoState
    agents: list[ObjectState]
    boxes: np.ndarray = field(init=False)  # (A, 7)
    velocities: np.ndarray = field(init=False)  # (A, 2)

    def __post_init__(self) -> None:
        self.boxes = np.array([a.box for a in self.agents]).reshape(-1, 7)
        self.velocities = np.array([a.velocity for a in self.agents]).reshape(-1, 2)


class Simulator:
    """A closed-loop driving simulator with nuScenes-like sensors.

    Args:
        config: a ``SimulatorConfig``, or a preset name (``tiny``, ``demo``, ``nuscenes``) whose simulator
            settings to use.
    """

    def __init__(self, config: SimulatorConfig | str = "tiny") -> None:
        if isinstance(config, str):
            config = get_preset(config).simulator
        self.config = config
        self.town: Town | None = None
        self.route: Route | None = None
        self.ego: EgoState | None = None

    # ----- reset and stepping ---------------------------------------------------------------------------

    def reset(
        self, seed: int, town: Town | None = None, start_timestamp_us: int = DEFAULT_START_US
    ) -> SimFrame:
        """Start a new drive.

        Args:
            seed: seed of traffic, route and sensor noise (and of the town when none is given).
            town: the town to drive in; generated from ``config.location`` and ``seed`` when None.
            start_timestamp_us: log timestamp of the first frame.

        Returns:
            The first frame.
        """
        self.reset_world(seed, town, start_timestamp_us)
        return self._frame()

    def reset_world(
        self, seed: int, town: Town | None = None, start_timestamp_us: int = DEFAULT_START_US
    ) -> None:
        """``reset`` without sensing the first frame."""
        config = self.config
        self.town = town if town is not None else generate_town(config.location, seed, config.town)
        self.lanes = LaneGraph(self.town.map, self.town.lane_infos, self.town.crossings)
        traffic_rng, route_rng, sensor_rng = (
            np.random.default_rng(s) for s in np.random.SeedSequence([seed, 0x5EED]).spawn(3)
        )
        self._route_rng, self.sensor_rng = route_rng, sensor_rng

        start_lane, start_s = self._pick_start(route_rng)
        self.route = Route(self.lanes, self._route_lanes(start_lane, config.route_length_m))
        position = self.route.point_at(start_s - config.ego.centre_offset)
        speed = 0.6 * float(self.lanes.speed_limit[start_lane])
        self.ego = EgoState(position, self.route.heading_at(start_s), speed, 0.0, 0.0, 0.0)
        self._rear_axle_s, self._route_start_s = start_s - config.ego.centre_offset, 0.0

        static = self.town.static
        self.traffic = Traffic(
            self.lanes,
            self.town.walk_graph,
            config.traffic,
            len(static.objects),
            (start_lane, start_s),
            traffic_rng,
        )
        self._static_boxes = np.concatenate(
            [static.structure_boxes, np.array([o.box for o in static.objects]).reshape(-1, 7)]
        )
        self._static_ids = np.concatenate(
            [np.full(len(static.structure_boxes), -1), [o.instance_id for o in static.objects]]
        ).astype(np.int32)
        self._static_rcs = np.concatenate([static.structure_rcs, static.object_rcs]).astype(np.float32)
        self._agent_rcs = self.traffic.radar_cross_sections()
        self._agent_ids = np.array([a.instance_id for a in self.traffic.states()], dtype=np.int32)

        self._step_us = int(round(config.step_s * 1e6))
        self._start_us, self._step_index = start_timestamp_us, 0
        self._current: _Snapshot | None = None  # Not kept while warming up.
        for _ in range(int(round(config.warmup_s / config.step_s))):
            self.advance(None)
        self._route_start_s = self._rear_axle_s
        self._step_index = 0
        # The ego every 10 ms since the first frame: the CAN bus streams are sampled from it.
        self.ego_history: list[tuple[int, EgoState]] = [(self.timestamp_us, self.ego)]
        self._previous = self._current = _Snapshot(self.timestamp_us, self.ego, self.traffic.states())

    def step(self, action: EgoAction | None = None) -> SimFrame:
        """Drive one step and sense.

        Args:
            action: the ego's acceleration and yaw rate for this step; None lets the autopilot drive.

        Returns:
            The frame at the end of the step.
        """
        self.advance(action)
        return self._frame()

    def advance(self, action: EgoAction | None = None) -> None:
        """Drive one step without sensing (see ``step``)."""
        if self.ego is None:
            raise RuntimeError("call reset(seed) before stepping the simulator")
        ego_on_lanes = self._ego_on_lanes()
        target_acceleration = self.traffic.step(
            self.config.step_s, ego_on_lanes, self.config.ego.box(self.ego)
        )
        if action is None:
            action = self._autopilot(target_acceleration)
        self._last_action = action
        substeps = int(round(self.config.step_s / INTEGRATION_STEP_S))
        for index in range(1, substeps + 1):
            self.ego = propagate(self.ego, action, INTEGRATION_STEP_S, self.config.ego)
            if self._current is not None:
                self.ego_history.append(
                    (self.timestamp_us + round(index * INTEGRATION_STEP_S * 1e6), self.ego)
                )
        self._step_index += 1
        self._rear_axle_s = self.route.locate(self.ego.position, self._rear_axle_s)[0]
        if self.route.length - self._rear_axle_s < 300.0:
            self._extend_route()
        if self._current is not None:
            self._previous = self._current
            self._current = _Snapshot(self.timestamp_us, self.ego, self.traffic.states())

    def autopilot_action(self) -> EgoAction:
        """What the built-in driver would do now (route following with traffic-aware speed)."""
        ego_on_lanes = self._ego_on_lanes()
        return self._autopilot(self.traffic.ego_acceleration(ego_on_lanes) if ego_on_lanes else 0.0)

    @property
    def time_s(self) -> float:
        """Seconds since the first frame."""
        return self._step_index * self.config.step_s

    @property
    def timestamp_us(self) -> int:
        """Log timestamp now."""
        return self._start_us + self._step_index * self._step_us

    # ----- the world at an instant -----------------------------------------------------------------------

    def objects(self) -> list[ObjectState]:
        """Every annotated object now: static objects, then traffic."""
        return list(self.town.static.objects) + self._current.agents

    def raycast_scene(self, timestamp_us: int | None = None) -> RaycastScene:
        """What a ray can hit (structures and annotated objects, not the ego) at an instant of the last step.

        Args:
            timestamp_us: an instant between the last two steps' ends (inclusive); None for now.

        Returns:
            The scene, agents interpolated to that instant.
        """
        agent_boxes, agent_velocities = self._agent_arrays_at(
            self.timestamp_us if timestamp_us is None else timestamp_us
        )
        return RaycastScene(
            boxes=np.concatenate([self._static_boxes, agent_boxes]),
            box_ids=np.concatenate([self._static_ids, self._agent_ids]),
            box_velocities=np.concatenate([np.zeros((len(self._static_boxes), 2)), agent_velocities]),
            box_rcs=np.concatenate([self._static_rcs, self._agent_rcs]),
            cylinders=self.town.static.cylinders,
        )

    def ego_at(self, timestamp_us: int) -> EgoState:
        """The ego at an instant of the last step (exactly integrated)."""
        previous = self._previous
        if timestamp_us == self._current.time_us or previous.time_us == self._current.time_us:
            return self._current.ego
        self._check_in_last_step(timestamp_us)
        if timestamp_us == previous.time_us:
            return previous.ego
        return propagate(
            previous.ego, self._last_action, (timestamp_us - previous.time_us) * 1e-6, self.config.ego
        )

    def _agent_arrays_at(self, timestamp_us: int) -> tuple[np.ndarray, np.ndarray]:
        """Agent boxes (A, 7) and velocities (A, 2) interpolated to an instant of the last step."""
        current, previous = self._current, self._previous
        if timestamp_us == current.time_us or previous.time_us == current.time_us:
            return current.boxes, current.velocities
        self._check_in_last_step(timestamp_us)
        weight = (timestamp_us - previous.time_us) / (current.time_us - previous.time_us)
        boxes = previous.boxes + weight * (current.boxes - previous.boxes)
        turn = (current.boxes[:, 6] - previous.boxes[:, 6] + np.pi) % (2 * np.pi) - np.pi
        boxes[:, 6] = (previous.boxes[:, 6] + weight * turn + np.pi) % (2 * np.pi) - np.pi
        return boxes, previous.velocities + weight * (current.velocities - previous.velocities)

    def _check_in_last_step(self, timestamp_us: int) -> None:
        if not self._previous.time_us <= timestamp_us <= self._current.time_us:
            raise ValueError(
                f"instant {timestamp_us} is outside the last step [{self._previous.time_us}, {self._current.time_us}]"
            )

    # ----- sensors -------------------------------------------------------------------------------------

    def sensor_to_global(self, mount: SensorMount, ego: EgoState) -> np.ndarray:
        """4x4 pose of a sensor when the ego is in ``ego``."""
        return ego.ego_to_global() @ mount.sensor_to_ego()

    def capture_lidar(self, is_key_frame: bool = False) -> SensorCapture:
        """A LIDAR_TOP sweep now."""
        ego = self._current.ego
        points, hit_ids = cast_lidar(
            self.raycast_scene(), self.sensor_to_global(LIDAR_TOP, ego), self.config.lidar, self.sensor_rng
        )
        return SensorCapture(LIDAR_TOP.channel, self.timestamp_us, ego, points, hit_ids, is_key_frame)

    def capture_radar(
        self, mount: SensorMount, timestamp_us: int, is_key_frame: bool = False
    ) -> SensorCapture:
        """A sweep of the radar ``mount`` at an instant of the last step."""
        ego = self.ego_at(timestamp_us)
        # The radar moves with the ego's rear axle plus the turn rate times its lever arm.
        lever = np.asarray(mount.translation[:2])
        velocity_ego = np.array([ego.speed - ego.yaw_rate * lever[1], ego.yaw_rate * lever[0]])
        cos, sin = np.cos(ego.yaw), np.sin(ego.yaw)
        velocity = np.array(
            [cos * velocity_ego[0] - sin * velocity_ego[1], sin * velocity_ego[0] + cos * velocity_ego[1]]
        )
        points, hit_ids = cast_radar(
            self.raycast_scene(timestamp_us),
            self.sensor_to_global(mount, ego),
            velocity,
            self.config.radar,
            self.sensor_rng,
        )
        return SensorCapture(mount.channel, timestamp_us, ego, points, hit_ids, is_key_frame)

    # ----- checks ---------------------------------------------------------------------------------------

    def checks(self) -> EgoChecks:
        """Collision, off-road and route progress of the ego now."""
        ego_box = self.config.ego.box(self.ego)
        ego_rectangle = boxes_to_rectangles(ego_box[None])[0]
        scene = self.raycast_scene()
        near = (
            np.linalg.norm(scene.boxes[:, :2] - ego_box[:2], axis=1) < np.hypot(*scene.boxes[:, 3:5].T) + 5.0
        )
        hit_boxes = np.flatnonzero(near)[
            rectangles_overlap(ego_rectangle, boxes_to_rectangles(scene.boxes[near]))
        ]
        collided = sorted({int(scene.box_ids[i]) for i in hit_boxes})
        cylinders = scene.cylinders[:, :3]
        if rectangle_circle_overlap(ego_rectangle, cylinders).any() and -1 not in collided:
            collided = [-1, *collided]
        corners = rectangle_corners(ego_rectangle[None])[0]
        progress = self._rear_axle_s - self._route_start_s
        lateral = self.route.locate(self.ego.position, self._rear_axle_s)[1]
        return EgoChecks(
            collided_with=collided,
            off_road=not bool(self.town.on_drivable_area(corners).all()),
            route_progress_m=float(progress),
            route_completion=float(progress / (self.route.length - self._route_start_s)),
            lateral_offset_m=float(lateral),
        )

    def _frame(self) -> SimFrame:
        return SimFrame(
            time_s=self.time_s,
            timestamp_us=self.timestamp_us,
            ego=self.ego,
            objects=self.objects(),
            lidar=self.capture_lidar(),
            radars=[self.capture_radar(mount, self.timestamp_us) for mount in RADARS],
            checks=self.checks(),
        )

    # ----- route and autopilot -------------------------------------------------------------------------

    def _pick_start(self, rng: np.random.Generator) -> tuple[int, float]:
        """A random lane and arc length (of the ego's centre) well before its stop line."""
        candidates = np.flatnonzero(~self.lanes.is_connector & (self.lanes.stop_s > 40.0))
        lane = int(rng.choice(candidates))
        return lane, float(rng.uniform(10.0, self.lanes.stop_s[lane] - 25.0))

    def _route_lanes(self, first_lane: int, length_m: float) -> list[int]:
        lanes, total = [first_lane], float(self.lanes.lengths[first_lane])
        while total < length_m:
            lanes.append(int(self._route_rng.choice(self.lanes.successors[lanes[-1]])))
            total += float(self.lanes.lengths[lanes[-1]])
        return lanes

    def _extend_route(self) -> None:
        more = self._route_lanes(self.route.lanes[-1], self.config.route_length_m)[1:]
        self.route = Route(self.lanes, self.route.lanes + more)

    def _ego_on_lanes(self) -> EgoOnLanes | None:
        """The ego's lane position for traffic, or None when it has left its route."""
        spec = self.config.ego
        centre = spec.box(self.ego)[:2]
        centre_s, lateral = self.route.locate(centre, self._rear_axle_s + spec.centre_offset)
        heading_error = (self.ego.yaw - self.route.heading_at(centre_s) + np.pi) % (2 * np.pi) - np.pi
        if abs(lateral) > _ON_ROUTE_LATERAL_M or abs(heading_error) > _ON_ROUTE_HEADING_RAD:
            return None
        index, lane, s = self.route.lane_at(centre_s)
        plan = self.route.lanes[index + 1 : index + 5]
        return EgoOnLanes(lane, s, self.ego.speed, spec.length, spec.width, plan)

    def _autopilot(self, acceleration: float) -> EgoAction:
        yaw_rate = pure_pursuit_yaw_rate(self.ego, self.route, self._rear_axle_s, self.config.ego)
        return EgoAction(acceleration=acceleration, yaw_rate=yaw_rate)
