"""A small hand-built town and drive for the nuScenes writer tests, independent of the simulator.

The town: an east-west road with two lanes each way crossing a north-south road with one lane each way,
a pedestrian crossing on the east arm, stop lines, a traffic light, walkways and a car park. The drive:
the ego goes east at 8 m/s in the inner eastbound lane for two scenes of one log, with a car ahead, a
parked car, a pedestrian on the crossing and a traffic cone. Sensor data is simple but consistent:
LiDAR returns on fixed ground and wall points plus a grid inside every object box, radar returns at the
object centres, all expressed in the sensor frames of the calibration module.
"""

from dataclasses import dataclass

import numpy as np

from bevjepa.sim.calibration import LIDAR_TOP, RADARS, SensorMount
from bevjepa.sim.types import (
    CanBusLog,
    EgoState,
    KeyframeLog,
    MapLane,
    ObjectState,
    RoadSegment,
    SceneLog,
    SensorCapture,
    TownMap,
    TrafficLight,
)

LOCATION = "singapore-onenorth"
LOG_NAME = "sim-2024-01-01-00-00-00+0000"
START_US = 1_700_000_000_000_000
EGO_SPEED = 8.0
EGO_LANE_Y = 98.25
LIDAR_PERIOD_US = 50_000
RADAR_PERIOD_US = 77_000
KEYFRAME_PERIOD_US = 500_000


def _rect(x0: float, y0: float, x1: float, y1: float) -> np.ndarray:
    return np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], dtype=np.float64)  # counter-clockwise


def _straight_lane(start: tuple[float, float], end: tuple[float, float], width: float = 3.5) -> MapLane:
    start_xy, end_xy = np.array(start), np.array(end)
    direction = (end_xy - start_xy) / np.linalg.norm(end_xy - start_xy)
    left = np.array([-direction[1], direction[0]]) * width / 2
    polygon = np.stack([start_xy - left, end_xy - left, end_xy + left, start_xy + left])
    steps = np.linspace(0.0, 1.0, int(np.linalg.norm(end_xy - start_xy) // 5) + 2)[:, None]
    return MapLane(polygon=polygon, centerline=start_xy + steps * (end_xy - start_xy))


def _lane_along(centerline: np.ndarray, width: float = 3.5) -> MapLane:
    """A lane connector around ``centerline``: its outline offset half a lane width to either side."""
    tangents = np.gradient(centerline, axis=0)
    normals = np.stack([-tangents[:, 1], tangents[:, 0]], axis=1) / np.linalg.norm(
        tangents, axis=1, keepdims=True
    )
    right, left = centerline - normals * width / 2, centerline + normals * width / 2
    return MapLane(polygon=np.concatenate([right, left[::-1]]), centerline=centerline, is_connector=True)


def _arc(centre: tuple[float, float], radius: float, start_deg: float, end_deg: float) -> np.ndarray:
    angles = np.radians(np.linspace(start_deg, end_deg, 10))
    return np.array(centre) + radius * np.stack([np.cos(angles), np.sin(angles)], axis=1)


def make_town() -> TownMap:
    """The crossroads town described in the module docstring."""
    west, east, south, north = (20.0, 146.5), (153.5, 280.0), (20.0, 93.0), (107.0, 180.0)
    lanes = [
        _straight_lane((west[0], 94.75), (west[1], 94.75)),  # 0 eastbound outer, west arm
        _straight_lane((west[0], 98.25), (west[1], 98.25)),  # 1 eastbound inner, west arm
        _straight_lane((east[0], 94.75), (east[1], 94.75)),  # 2 eastbound outer, east arm
        _straight_lane((east[0], 98.25), (east[1], 98.25)),  # 3 eastbound inner, east arm
        _straight_lane((east[1], 101.75), (east[0], 101.75)),  # 4 westbound inner, east arm
        _straight_lane((east[1], 105.25), (east[0], 105.25)),  # 5 westbound outer, east arm
        _straight_lane((west[1], 101.75), (west[0], 101.75)),  # 6 westbound inner, west arm
        _straight_lane((west[1], 105.25), (west[0], 105.25)),  # 7 westbound outer, west arm
        _straight_lane((151.75, south[0]), (151.75, south[1])),  # 8 northbound, south arm
        _straight_lane((151.75, north[0]), (151.75, north[1])),  # 9 northbound, north arm
        _straight_lane((148.25, north[1]), (148.25, north[0])),  # 10 southbound, north arm
        _straight_lane((148.25, south[1]), (148.25, south[0])),  # 11 southbound, south arm
    ]
    connectors = [
        (_straight_lane((west[1], 94.75), (east[0], 94.75)), 0, 2),
        (_straight_lane((west[1], 98.25), (east[0], 98.25)), 1, 3),
        (_straight_lane((east[0], 101.75), (west[1], 101.75)), 4, 6),
        (_straight_lane((east[0], 105.25), (west[1], 105.25)), 5, 7),
        (_straight_lane((151.75, south[1]), (151.75, north[0])), 8, 9),
        (_straight_lane((148.25, north[0]), (148.25, south[1])), 10, 11),
        # Eastbound inner turns left on an arc then straight; eastbound outer turns right on a quarter circle.
        (
            _lane_along(
                np.concatenate([_arc((west[1], 103.5), 5.25, -90, 0), [[151.75, 105.0], [151.75, 107.0]]])
            ),
            1,
            9,
        ),
        (_lane_along(_arc((west[1], south[1]), 1.75, 90, 0)), 0, 11),
    ]
    for connector, entry, exit_lane in connectors:
        connector.is_connector = True
        connector.successors = [exit_lane]
        lanes[entry].successors.append(len(lanes))
        lanes.append(connector)
    arms = [_rect(west[0], 93, west[1], 107), _rect(east[0], 93, east[1], 107)]
    arms += [_rect(146.5, south[0], 153.5, south[1]), _rect(146.5, north[0], 153.5, north[1])]
    crossing = _rect(146.5, 93, 153.5, 107)
    return TownMap(
        location=LOCATION,
        size_m=(300.0, 200.0),
        drivable_area=[*arms, crossing],
        road_segments=[*(RoadSegment(arm, False) for arm in arms), RoadSegment(crossing, True)],
        road_blocks=[lane.polygon for lane in lanes[:12]],
        lanes=lanes,
        ped_crossings=[_rect(155.0, 93, 159.0, 107)],
        walkways=[_rect(west[0], 89, west[1], 93), _rect(west[0], 107, west[1], 111)],
        stop_lines=[_rect(145.5, 93, 146.5, 100), _rect(153.5, 100, 154.5, 107)],
        carpark_areas=[_rect(60, 60, 90, 80)],
        road_dividers=[
            np.array([[west[0], 100.0], [west[1], 100.0]]),
            np.array([[east[0], 100.0], [east[1], 100.0]]),
        ]
        + [
            np.array([[150.0, south[0]], [150.0, south[1]]]),
            np.array([[150.0, north[0]], [150.0, north[1]]]),
        ],
        lane_dividers=[np.array([[x0, y], [x1, y]]) for x0, x1 in (west, east) for y in (96.5, 103.5)],
        traffic_lights=[TrafficLight(position=np.array([147.0, 92.0]), yaw=0.0)],
    )


@dataclass(frozen=True)
class Agent:
    """An object moving at constant velocity: box at time 0 and velocity (m/s, global)."""

    instance_id: int
    category: str
    attribute: str
    box: tuple[float, float, float, float, float, float, float]
    velocity: tuple[float, float]
    visibility: float
    appears_s: float = -np.inf

    def state(self, time_s: float) -> ObjectState:
        box = np.array(self.box, dtype=np.float64)
        box[:2] += np.array(self.velocity) * time_s
        velocity = np.array(self.velocity, dtype=np.float64)
        return ObjectState(self.instance_id, self.category, self.attribute, box, velocity, self.visibility)


_WALKER_BOX = (157.0, 108.0, 0.9, 0.7, 0.7, 1.8, -np.pi / 2)
AGENTS = (
    Agent(1, "vehicle.car", "vehicle.moving", (118.0, 94.75, 0.8, 4.5, 1.9, 1.6, 0.0), (6.0, 0.0), 0.95),
    Agent(2, "vehicle.car", "vehicle.parked", (112.0, 105.25, 0.8, 4.4, 1.8, 1.5, np.pi), (0.0, 0.0), 0.5),
    Agent(3, "human.pedestrian.adult", "pedestrian.moving", _WALKER_BOX, (0.0, -1.2), 0.7, appears_s=0.4),
    Agent(4, "movable_object.trafficcone", "", (126.0, 92.5, 0.35, 0.4, 0.4, 0.7, 0.3), (0.0, 0.0), 0.2),
)

# Static returns: a ground grid and a building wall north of the road, fixed in the global frame.
_GROUND = np.stack(np.meshgrid(np.arange(90.0, 170.0, 4.0), np.arange(86.0, 114.0, 4.0)), -1).reshape(-1, 2)
_WALL = np.stack(np.meshgrid(np.arange(90.0, 170.0, 2.0), np.arange(0.5, 6.0, 1.0)), -1).reshape(-1, 2)
STATIC_POINTS = np.concatenate(
    [
        np.column_stack([_GROUND, np.zeros(len(_GROUND))]),
        np.column_stack([_WALL[:, 0], np.full(len(_WALL), 115.0), _WALL[:, 1]]),
    ]
)  # (S, 3) global
BOX_GRID = np.stack(np.meshgrid(*[np.linspace(-0.4, 0.4, 3)] * 3), -1).reshape(-1, 3)  # (27, 3), box units


def _objects(time_s: float) -> list[ObjectState]:
    return [agent.state(time_s) for agent in AGENTS if time_s >= agent.appears_s]


def ego_state(time_s: float) -> EgoState:
    return EgoState(np.array([100.0 + EGO_SPEED * time_s, EGO_LANE_Y]), 0.0, EGO_SPEED, 0.0, 0.0, 0.0)


def _global_to_sensor(points: np.ndarray, ego: EgoState, mount: SensorMount) -> np.ndarray:
    sensor_to_global = ego.ego_to_global() @ mount.sensor_to_ego()
    global_to_sensor = np.linalg.inv(sensor_to_global)
    return points @ global_to_sensor[:3, :3].T + global_to_sensor[:3, 3]


def _object_points(obj: ObjectState) -> np.ndarray:
    """A 3x3x3 grid strictly inside the box, in the global frame."""
    cx, cy, cz, length, width, height, yaw = obj.box
    local = BOX_GRID * np.array([length, width, height])
    c, s = np.cos(yaw), np.sin(yaw)
    rotated = local @ np.array([[c, s, 0], [-s, c, 0], [0, 0, 1]])
    return rotated + np.array([cx, cy, cz])


def lidar_capture(time_s: float, is_key_frame: bool, rng: np.random.Generator) -> SensorCapture:
    ego = ego_state(time_s)
    objects = _objects(time_s)
    points = [STATIC_POINTS] + [_object_points(obj) for obj in objects]
    hit_ids = np.concatenate(
        [np.full(len(STATIC_POINTS), -1)] + [np.full(27, obj.instance_id) for obj in objects]
    )
    xyz = _global_to_sensor(np.concatenate(points), ego, LIDAR_TOP)
    intensity = rng.uniform(0.0, 255.0, len(xyz)).round()
    elevation = np.degrees(np.arctan2(xyz[:, 2], np.hypot(xyz[:, 0], xyz[:, 1])))
    ring = np.clip(np.round((elevation + 30.67) / (41.34 / 31)), 0, 31)
    data = np.column_stack([xyz, intensity, ring]).astype(np.float32)
    return SensorCapture(
        "LIDAR_TOP", START_US + round(time_s * 1e6), ego, data, hit_ids.astype(np.int32), is_key_frame
    )


def radar_capture(mount: SensorMount, time_us: int, is_key_frame: bool) -> SensorCapture:
    """One return at each object's centre (the last one flagged invalid) plus one on the wall."""
    time_s = (time_us - START_US) * 1e-6
    ego = ego_state(time_s)
    objects = _objects(time_s)
    centres = np.array([obj.box[:3] for obj in objects] + [[130.0, 115.0, 2.0]])
    xyz = _global_to_sensor(centres, ego, mount)
    xyz[:, 2] = 0.0  # radar returns are planar, in the sensor's horizontal plane as in nuScenes
    global_to_sensor = np.linalg.inv(ego.ego_to_global() @ mount.sensor_to_ego())[:2, :2]
    velocities = np.array([obj.velocity for obj in objects] + [[0.0, 0.0]]) @ global_to_sensor.T
    ego_velocity = (np.array([EGO_SPEED, 0.0]) @ global_to_sensor.T)[None]
    count = len(xyz)
    data = np.zeros((count, 18), dtype=np.float32)
    data[:, :3] = xyz
    data[:, 3] = [0 if np.any(obj.velocity) else 1 for obj in objects] + [1]  # dyn_prop: moving / stationary
    data[:, 4] = np.arange(count)  # cluster id
    data[:, 5] = 5.0  # rcs
    data[:, 6:8] = velocities - ego_velocity
    data[:, 8:10] = velocities
    data[:, 10:16] = [1, 3, 19, 19, 0, 1]  # is_quality_valid, ambig_state, x_rms, y_rms, invalid_state, pdh0
    data[-2, 14] = 1  # invalid due to low RCS: dropped by the devkit's default filter, still counted
    data[:, 16:18] = 2
    hit_ids = np.array([obj.instance_id for obj in objects] + [-1], dtype=np.int32)
    return SensorCapture(mount.channel, time_us, ego, data, hit_ids, is_key_frame)


def _can_bus(start_s: float, end_s: float) -> CanBusLog:
    pose = []
    for time_s in np.arange(start_s, end_s, 0.02):
        ego = ego_state(time_s)
        pose.append(
            {
                "utime": START_US + round(time_s * 1e6),
                "pos": [float(ego.position[0]), float(ego.position[1]), 0.0],
                "orientation": [1.0, 0.0, 0.0, 0.0],
                "vel": [EGO_SPEED, 0.0, 0.0],
                "accel": [0.0, 0.0, 9.81],
                "rotation_rate": [0.0, 0.0, 0.0],
            }
        )
    steering = [{"utime": START_US + round(t * 1e6), "value": 0.0} for t in np.arange(start_s, end_s, 0.01)]
    return CanBusLog(pose=pose, steeranglefeedback=steering)


def make_scene(name: str, first_keyframe_s: float, num_keyframes: int, seed: int = 0) -> SceneLog:
    """A scene whose keyframes start at ``first_keyframe_s``, with 0.45 s of sweeps before the first."""
    rng = np.random.default_rng(seed)
    first_us = START_US + round(first_keyframe_s * 1e6)
    keyframe_us = [first_us + k * KEYFRAME_PERIOD_US for k in range(num_keyframes)]
    start_us, end_us = first_us - 9 * LIDAR_PERIOD_US, keyframe_us[-1]
    captures = [
        lidar_capture((time_us - START_US) * 1e-6, time_us in keyframe_us, rng)
        for time_us in range(start_us, end_us + 1, LIDAR_PERIOD_US)
    ]
    for offset, mount in enumerate(RADARS):
        times = np.arange(start_us + 11_000 * offset, end_us + RADAR_PERIOD_US // 2, RADAR_PERIOD_US)
        nearest = {int(times[np.argmin(np.abs(times - key))]) for key in keyframe_us}
        captures += [radar_capture(mount, int(time), int(time) in nearest) for time in times]
    captures.sort(key=lambda capture: (capture.timestamp_us, capture.channel))
    keyframes = [KeyframeLog(time_us, _objects((time_us - START_US) * 1e-6)) for time_us in keyframe_us]
    can_bus = _can_bus((start_us - START_US) * 1e-6, (end_us - START_US) * 1e-6 + 0.02)
    return SceneLog(name, f"hand-made drive {name}", LOCATION, LOG_NAME, captures, keyframes, can_bus)


def make_scenes() -> list[SceneLog]:
    """Two consecutive scenes of one log: five keyframes from 0 s, four from 3 s."""
    return [make_scene("scene-0001", 0.0, 5, seed=1), make_scene("scene-0002", 3.0, 4, seed=2)]
