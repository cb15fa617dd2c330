"""Closed-loop episodes in the synthetic simulator: sense, plan, act for one keyframe step, repeat.

The clock is the recorder's: LIDAR_TOP every 50 ms simulator step, each radar at about 13 Hz with its own
phase, a plan every ``replan_steps`` steps (0.5 s, the world model's step). Only the sweeps the data path
fuses are captured (the last ``lidar_sweeps`` LiDAR sweeps and the radar sweeps of the same window before
each plan), and only for policies that read sensors. The ego is asked to drive ``goal_distance_m`` along its
route; traffic reacts to it. Everything is seeded by the episode seed, so an episode is reproducible.
"""

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from bevjepa.batch import VoxelBatch
from bevjepa.sim.calibration import RADARS
from bevjepa.sim.recorder import RADAR_PERIOD_US
from bevjepa.sim.simulator import Simulator
from bevjepa.sim.simulator_config import SimulatorConfig
from bevjepa.sim.town import Town
from bevjepa.sim.types import EgoAction, EgoState, SensorCapture

# Object categories that count as small hazards in the hazard audit (the rest of the objects are large).
SMALL_HAZARD_PREFIXES = ("human.", "movable_object.", "vehicle.bicycle", "vehicle.motorcycle")
# An object within this lateral distance of the route ahead (and this far ahead) lies in the ego's path.
PATH_HALF_WIDTH_M = 2.0
PATH_LOOKAHEAD_M = 25.0
# The route is handed to policies this far ahead (beyond what a 3 s plan can drive).
ROUTE_AHEAD_M = 45.0


class SensorFrames(Protocol):
    """Turns the latest sensor captures into the model's voxels (the DataModule's data path)."""

    def add(self, capture: SensorCapture) -> None: ...

    def voxels(self) -> VoxelBatch: ...

    def close(self) -> None: ...

    def __enter__(self) -> "SensorFrames": ...

    def __exit__(self, *exc) -> None: ...


@dataclass(frozen=True)
class EpisodeSettings:
    """What an episode asks of the ego and how it is run.

    Attributes:
        goal_distance_m: route distance to drive; the goal is the route point there.
        goal_tolerance_m: the goal is reached within this distance of it.
        max_duration_s: time limit.
        replan_steps: simulator steps between plans (10 = 0.5 s, the world model's step).
        waypoint_distance_m: how far along the route ahead the planner's waypoint lies.
        lidar_sweeps: LiDAR sweeps the data path fuses (captured before each plan).
        radar_window_s: radar sweeps within this time before a plan are captured.
        stop_on_collision: end the episode at the first collision.
    """

    goal_distance_m: float = 60.0
    goal_tolerance_m: float = 3.0
    max_duration_s: float = 15.0
    replan_steps: int = 10
    waypoint_distance_m: float = 20.0
    lidar_sweeps: int = 3
    radar_window_s: float = 0.25
    stop_on_collision: bool = True


@dataclass
class Observation:
    """What a policy sees before a plan.

    Attributes:
        time_s: seconds since the episode began.
        ego: the ego state (the policy reads its speed and yaw rate; a real car knows them).
        waypoint: (3,) ``[x, y, yaw]`` of the route waypoint in the ego frame now.
        route_ahead: (P, 2) route points ahead in the ego frame (pictures, privileged planning).
        voxels: the fused sensor voxels now (policies that read sensors), else None.
        simulator: the simulator itself, for privileged policies only, else None.
    """

    time_s: float
    ego: EgoState
    waypoint: np.ndarray
    route_ahead: np.ndarray
    voxels: VoxelBatch | None = None
    simulator: Simulator | None = None

    @property
    def ego_status(self) -> np.ndarray:
        """(4,) ``[vx, vy, yaw_rate, speed]`` in the LiDAR frame (x right, y forward), as the dataset's label."""
        return np.array([0.0, self.ego.speed, self.ego.yaw_rate, self.ego.speed], dtype=np.float32)


@dataclass
class PlanStep:
    """A policy's answer.

    Attributes:
        controls: (H, 2) ``[acceleration, yaw_rate]`` per keyframe step; the first is executed.
        trajectory: (H, 2) the planned ego positions in the ego frame now (pictures), or None.
        candidates: (S, H, 2) candidate ego paths in the ego frame now (pictures), or None.
    """

    controls: np.ndarray
    trajectory: np.ndarray | None = None
    candidates: np.ndarray | None = None


class Policy(Protocol):
    """A driving policy of the closed loop."""

    name: str
    needs_sensors: bool
    privileged: bool

    def reset(self, seed: int) -> None: ...

    def act(self, observation: Observation) -> PlanStep: ...


@dataclass
class PlanRecord:
    """One plan of an episode, in the global frame (for pictures and animations).

    Attributes:
        time_s: when it was made.
        ego_pose: (3,) ``[x, y, yaw]``.
        trajectory: (H, 2) planned path, or None; candidates: (S, H, 2), or None.
        planning_ms: wall time of the policy's ``act``.
        ego_box: (7,) ``[cx, cy, cz, dx, dy, dz, yaw]`` of the ego's body then.
        agent_boxes: (K, 7) boxes of the traffic (the objects that move) then.
    """

    time_s: float
    ego_pose: np.ndarray
    trajectory: np.ndarray | None
    candidates: np.ndarray | None
    planning_ms: float
    ego_box: np.ndarray = field(default_factory=lambda: np.zeros(7))
    agent_boxes: np.ndarray = field(default_factory=lambda: np.zeros((0, 7)))


@dataclass
class EpisodeResult:
    """How an episode went.

    Attributes:
        policy, seed, location: what was run.
        success: the goal was reached in time without a collision.
        collisions: collision events (a new object touched).
        collided_categories: categories of what was hit (``structure`` for buildings, walls, poles).
        distance_m: path length driven.
        off_road_s: seconds with a corner of the ego off the drivable area.
        route_completion: share of ``goal_distance_m`` driven along the route (at most 1).
        progress_m: distance driven along the route.
        duration_s: simulated seconds.
        planning_ms: mean wall time per plan.
        hazards_in_path: categories of the objects that lay in the ego's path ahead, by instance id.
        hazards_hit: instance ids among those that the ego collided with.
        path: (T, 3) ego ``[x, y, yaw]`` at every simulator step; goal: (2,) the goal point.
        plans: every plan (for pictures).
    """

    policy: str
    seed: int
    location: str
    success: bool
    collisions: int
    collided_categories: list[str]
    distance_m: float
    off_road_s: float
    route_completion: float
    progress_m: float
    duration_s: float
    planning_ms: float
    hazards_in_path: dict[int, str] = field(default_factory=dict)
    hazards_hit: list[int] = field(default_factory=list)
    path: np.ndarray = field(default_factory=lambda: np.zeros((0, 3)))
    goal: np.ndarray = field(default_factory=lambda: np.zeros(2))
    plans: list[PlanRecord] = field(default_factory=list)

    def summary(self) -> dict:
        """The scalar outcome as plain JSON values."""
        return {
            "policy": self.policy,
            "seed": self.seed,
            "location": self.location,
            "success": self.success,
            "collisions": self.collisions,
            "collided_categories": self.collided_categories,
            "distance_m": round(self.distance_m, 3),
            "off_road_s": round(self.off_road_s, 3),
            "route_completion": round(self.route_completion, 4),
            "progress_m": round(self.progress_m, 3),
            "duration_s": round(self.duration_s, 3),
            "planning_ms": round(self.planning_ms, 3),
            "hazards_in_path": {str(k): v for k, v in self.hazards_in_path.items()},
            "hazards_hit": self.hazards_hit,
        }


def to_ego_frame(points: np.ndarray, ego: EgoState) -> np.ndarray:
    """(N, 2) global points -> the ego frame."""
    cos, sin = np.cos(ego.yaw), np.sin(ego.yaw)
    offset = points - ego.position
    return np.stack([cos * offset[:, 0] + sin * offset[:, 1], -sin * offset[:, 0] + cos * offset[:, 1]], -1)


def to_global_frame(points: np.ndarray, pose: np.ndarray) -> np.ndarray:
    """(..., 2) points in the frame of ``pose = [x, y, yaw]`` -> the global frame."""
    cos, sin = np.cos(pose[2]), np.sin(pose[2])
    x, y = points[..., 0], points[..., 1]
    return np.stack([pose[0] + cos * x - sin * y, pose[1] + sin * x + cos * y], -1)


def radar_phases(seed: int) -> dict[str, int]:
    """Each radar's first firing (microseconds after the start) in an episode of ``seed``, as the recorder."""
    rng = np.random.default_rng([seed, 13])
    return {mount.channel: int(rng.integers(RADAR_PERIOD_US)) for mount in RADARS}


class RouteTracker:
    """Arc length of the ego on its route (the simulator reports progress since the start)."""

    def __init__(self, simulator: Simulator) -> None:
        route = simulator.route
        first_lane_end = float(route.lane_starts[1]) if len(route.lanes) > 1 else route.length
        self.start_s = route.locate(simulator.ego.position, 0.0, window=(0.0, first_lane_end))[0]

    def arc_length(self, progress_m: float) -> float:
        return self.start_s + progress_m


class EpisodeRunner:
    """Runs policies through closed-loop episodes.

    Args:
        config: the simulator settings (sensors, traffic) of the episodes' towns.
        settings: the episode settings.
        sensor_frames: makes a fresh ``SensorFrames`` for an episode whose policy reads sensors (the
            DataModule's data path; see ``datamodules.live_frames``); None if no policy reads sensors.
    """

    def __init__(
        self,
        config: SimulatorConfig,
        settings: EpisodeSettings = EpisodeSettings(),
        sensor_frames: Callable[[str], SensorFrames] | None = None,
    ) -> None:
        self.config = config
        self.settings = settings
        self.sensor_frames = sensor_frames

    def run(self, policy: Policy, town: Town, seed: int) -> EpisodeResult:
        """One episode of ``policy`` in ``town`` with traffic and route from ``seed``."""
        settings = self.settings
        simulator = Simulator(self.config)
        simulator.reset_world(seed, town)
        policy.reset(seed)
        route = RouteTracker(simulator)
        goal_s = route.arc_length(settings.goal_distance_m)
        goal = simulator.route.point_at(goal_s)
        frames = None
        if policy.needs_sensors:
            if self.sensor_frames is None:
                raise ValueError(f"policy {policy.name} reads sensors but the runner has no sensor frames")
            frames = self.sensor_frames(town.location)
        radar_phase = radar_phases(seed)
        start_us = simulator.timestamp_us
        if frames is not None:
            frames.add(simulator.capture_lidar())
        step_s = self.config.step_s
        num_plans = int(round(settings.max_duration_s / (step_s * settings.replan_steps)))
        path = [self._pose(simulator.ego)]
        plans: list[PlanRecord] = []
        collided: set[int] = set()
        collided_categories: list[str] = []
        categories: dict[int, str] = {}
        hazards_in_path: dict[int, str] = {}
        collisions, off_road_s, distance, reached = 0, 0.0, 0.0, False
        checks = simulator.checks()
        try:
            for _ in range(num_plans):
                ego = simulator.ego
                for obj in simulator.objects():
                    categories[obj.instance_id] = obj.category
                observation = self.observe(
                    simulator, route, checks.route_progress_m, frames, policy.privileged
                )
                self._note_hazards_in_path(observation, simulator, hazards_in_path)
                started = time.perf_counter()
                plan = policy.act(observation)
                planning_ms = (time.perf_counter() - started) * 1e3
                pose = self._pose(ego)
                plans.append(
                    PlanRecord(
                        observation.time_s,
                        pose,
                        None if plan.trajectory is None else to_global_frame(plan.trajectory, pose),
                        None if plan.candidates is None else to_global_frame(plan.candidates, pose),
                        planning_ms,
                        self.config.ego.box(ego),
                        np.array([o.box for o in simulator.objects()[len(town.static.objects) :]]).reshape(
                            -1, 7
                        ),
                    )
                )
                action = EgoAction(float(plan.controls[0, 0]), float(plan.controls[0, 1]))
                for step in range(settings.replan_steps):
                    before = simulator.timestamp_us
                    previous_position = simulator.ego.position
                    simulator.advance(action)
                    distance += float(np.linalg.norm(simulator.ego.position - previous_position))
                    path.append(self._pose(simulator.ego))
                    if frames is not None:
                        self.capture_sweeps(simulator, frames, step, before, start_us, radar_phase)
                    checks = simulator.checks()
                    off_road_s += step_s * checks.off_road
                    new = set(checks.collided_with) - collided
                    if new:
                        collisions += 1
                        collided |= new
                        collided_categories += [categories.get(i, "structure") for i in sorted(new)]
                    at_goal = np.linalg.norm(simulator.ego.position - goal) <= settings.goal_tolerance_m
                    reached = reached or bool(at_goal)
                    if reached or (collisions and settings.stop_on_collision):
                        break
                if reached or (collisions and settings.stop_on_collision):
                    break
        finally:
            if frames is not None:
                frames.close()
        return EpisodeResult(
            policy=policy.name,
            seed=seed,
            location=town.location,
            success=reached and collisions == 0,
            collisions=collisions,
            collided_categories=collided_categories,
            distance_m=distance,
            off_road_s=off_road_s,
            route_completion=float(np.clip(checks.route_progress_m / settings.goal_distance_m, 0.0, 1.0)),
            progress_m=float(checks.route_progress_m),
            duration_s=simulator.time_s,
            planning_ms=float(np.mean([p.planning_ms for p in plans])) if plans else 0.0,
            hazards_in_path=hazards_in_path,
            hazards_hit=sorted(i for i in collided if i in hazards_in_path),
            path=np.array(path),
            goal=goal,
            plans=plans,
        )

    @staticmethod
    def _pose(ego: EgoState) -> np.ndarray:
        return np.array([ego.position[0], ego.position[1], ego.yaw])

    def observe(
        self,
        simulator: Simulator,
        route: RouteTracker,
        progress_m: float,
        frames: SensorFrames | None,
        privileged: bool = False,
    ) -> Observation:
        """What a policy sees now (``progress_m``: the route progress of the simulator's last checks)."""
        ego = simulator.ego
        here = route.arc_length(progress_m)
        waypoint_s = here + self.settings.waypoint_distance_m
        waypoint_global = simulator.route.point_at(waypoint_s)
        waypoint_xy = to_ego_frame(waypoint_global[None], ego)[0]
        waypoint_yaw = (simulator.route.heading_at(waypoint_s) - ego.yaw + np.pi) % (2 * np.pi) - np.pi
        ahead = np.array([simulator.route.point_at(s) for s in here + np.arange(0.0, ROUTE_AHEAD_M, 1.0)])
        return Observation(
            time_s=simulator.time_s,
            ego=ego,
            waypoint=np.array([waypoint_xy[0], waypoint_xy[1], waypoint_yaw]),
            route_ahead=to_ego_frame(ahead, ego),
            voxels=frames.voxels() if frames is not None else None,
            simulator=simulator if privileged else None,
        )

    @staticmethod
    def _note_hazards_in_path(observation: Observation, simulator: Simulator, found: dict[int, str]) -> None:
        """Objects whose centre lies within ``PATH_HALF_WIDTH_M`` of the route ahead."""
        ego, route = observation.ego, observation.route_ahead
        for obj in simulator.objects():
            centre = to_ego_frame(obj.box[None, :2], ego)[0]
            if 0.0 < centre[0] < PATH_LOOKAHEAD_M:
                reach = PATH_HALF_WIDTH_M + 0.5 * obj.box[4]
                if np.min(np.linalg.norm(route[: int(PATH_LOOKAHEAD_M)] - centre, axis=1)) < reach:
                    found.setdefault(obj.instance_id, obj.category)

    def capture_sweeps(
        self,
        simulator: Simulator,
        frames: SensorFrames,
        step: int,
        step_start_us: int,
        start_us: int,
        radar_phase: dict[str, int],
    ) -> None:
        """Capture the sweeps of the step just driven (number ``step`` of a plan's steps, begun at
        ``step_start_us``) that the next plan's data path fuses; radars fire at ``start_us`` plus their phase
        plus whole periods."""
        settings = self.settings
        if step >= settings.replan_steps - settings.lidar_sweeps:
            frames.add(simulator.capture_lidar())
        window_start_us = step_start_us + round(
            ((settings.replan_steps - step) * self.config.step_s - settings.radar_window_s) * 1e6
        )
        for mount in RADARS:
            phase = start_us + radar_phase[mount.channel]
            first = max(step_start_us, window_start_us)
            count = int(np.ceil((first - phase) / RADAR_PERIOD_US))
            time_us = phase + max(count, 0) * RADAR_PERIOD_US
            while time_us < simulator.timestamp_us:
                if time_us >= first:
                    frames.add(simulator.capture_radar(mount, time_us))
                time_us += RADAR_PERIOD_US


def hazard_category(category: str) -> str:
    """``small`` (people, cones, barriers, two-wheelers) or ``large`` (cars, trucks, buses) hazard."""
    return "small" if category.startswith(SMALL_HAZARD_PREFIXES) else "large"
