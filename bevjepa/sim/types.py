"""Data passed between the parts of the simulator: the town, the world's state, sensor captures, logs.

Frames and units: the *global* frame is the town's map frame (metres, x east, y north, z up, flat ground at
z = 0, every coordinate positive as in a nuScenes map). The *ego* frame has x forward, y left, z up, origin on
the ground under the rear axle. Times are seconds in the simulator and integer microseconds in logs.
Boxes are ``[cx, cy, cz, dx, dy, dz, yaw]``: gravity centre, size along the box's own x (length), y (width)
and z (height) axes, and yaw about +z from the frame's x axis. Polygons are (N, 2) counter-clockwise
exterior rings without a repeated last vertex; polylines are (N, 2).
"""

from dataclasses import dataclass, field

import numpy as np

# The only location names nuscenes-devkit's NuScenesMap accepts; a dataroot holds at most one town each.
LOCATIONS = ("singapore-onenorth", "singapore-hollandvillage", "singapore-queenstown", "boston-seaport")


@dataclass
class MapLane:
    """One lane (or a lane connector inside an intersection) with its direction of travel.

    Attributes:
        polygon: (N, 2) outline of the lane surface.
        centerline: (M, 2) centre line, ordered along the direction of travel.
        successors: indices into ``TownMap.lanes`` of the lanes a vehicle may continue onto.
        is_connector: True for a lane connector (a path through an intersection).
    """

    polygon: np.ndarray
    centerline: np.ndarray
    successors: list[int] = field(default_factory=list)
    is_connector: bool = False


@dataclass
class RoadSegment:
    """A stretch of road or an intersection; ``polygon`` is (N, 2)."""

    polygon: np.ndarray
    is_intersection: bool


@dataclass
class TrafficLight:
    """A traffic light at ``position`` (x, y) facing the traffic that approaches along ``yaw``."""

    position: np.ndarray
    yaw: float


@dataclass
class TownMap:
    """The HD map of one town: every layer nuscenes-devkit's NuScenesMap reads, in the global frame.

    Attributes:
        location: one of ``LOCATIONS``.
        size_m: (width, height) of the map canvas in metres; all geometry lies inside [0, width] x [0, height].
    """

    location: str
    size_m: tuple[float, float]
    drivable_area: list[np.ndarray]
    road_segments: list[RoadSegment]
    road_blocks: list[np.ndarray]
    lanes: list[MapLane]
    ped_crossings: list[np.ndarray]
    walkways: list[np.ndarray]
    stop_lines: list[np.ndarray]
    carpark_areas: list[np.ndarray]
    road_dividers: list[np.ndarray]
    lane_dividers: list[np.ndarray]
    traffic_lights: list[TrafficLight]


@dataclass
class ObjectState:
    """One annotated object at one instant, in the global frame.

    Attributes:
        instance_id: stable id of the object across time (>= 0).
        category: nuScenes category name, e.g. ``vehicle.car``, ``human.pedestrian.adult``.
        attribute: nuScenes attribute name, e.g. ``vehicle.moving``; empty for categories without one.
        box: (7,) ``[cx, cy, cz, dx, dy, dz, yaw]``; dx is the length along the heading.
        velocity: (2,) metres per second in global x, y.
        visibility: fraction (0..1) of the object that LIDAR_TOP sees at this instant, as
            ``bevjepa.sim.lidar.lidar_visibility`` measures it; the writer bins it into nuScenes levels.
    """

    instance_id: int
    category: str
    attribute: str
    box: np.ndarray
    velocity: np.ndarray
    visibility: float = 1.0


@dataclass
class EgoState:
    """The ego vehicle at one instant.

    Attributes:
        position: (2,) rear-axle centre on the ground, global frame.
        yaw: heading in radians from global +x.
        speed: m/s along the heading; acceleration: m/s^2 along the heading.
        yaw_rate: rad/s; steering: front-wheel angle in radians (positive turns left).
    """

    position: np.ndarray
    yaw: float
    speed: float
    acceleration: float
    yaw_rate: float
    steering: float

    def ego_to_global(self) -> np.ndarray:
        """4x4 homogeneous transform from the ego frame to the global frame."""
        c, s = np.cos(self.yaw), np.sin(self.yaw)
        matrix = np.eye(4)
        matrix[:2, :2] = [[c, -s], [s, c]]
        matrix[:2, 3] = self.position
        return matrix


@dataclass
class EgoAction:
    """What the ego's controller commands for the next step: longitudinal acceleration and yaw rate."""

    acceleration: float
    yaw_rate: float


@dataclass
class RaycastScene:
    """Everything a ray can hit at one instant besides the ground plane z = 0, in the global frame.

    Attributes:
        boxes: (M, 7) ``[cx, cy, cz, dx, dy, dz, yaw]`` float64: buildings, walls, vehicles, people, cones...
        box_ids: (M,) int32, the ``ObjectState.instance_id`` for annotated objects, -1 for structures.
        box_velocities: (M, 2) float64 global m/s (radar Doppler).
        box_rcs: (M,) float32 radar cross-section in dBsm.
        cylinders: (K, 4) ``[x, y, radius, height]`` float64 (poles, trunks), standing on the ground.
    """

    boxes: np.ndarray
    box_ids: np.ndarray
    box_velocities: np.ndarray
    box_rcs: np.ndarray
    cylinders: np.ndarray


@dataclass
class SensorCapture:
    """One sweep of one sensor as it goes to disk.

    Attributes:
        channel: e.g. ``LIDAR_TOP``, ``RADAR_FRONT``.
        timestamp_us: capture time.
        ego: the ego state at ``timestamp_us`` (its pose becomes the ``ego_pose`` record).
        data: LiDAR (N, 5) float32 ``[x, y, z, intensity, ring]`` in the sensor frame; radar (N, 18) float32
            in the field order of nuScenes radar ``.pcd`` files, positions and velocities in the sensor frame.
        hit_ids: (N,) int32 instance id of what each return hit, -1 for ground, structures and clutter.
        is_key_frame: True for the capture a keyframe (``sample``) links to.
    """

    channel: str
    timestamp_us: int
    ego: EgoState
    data: np.ndarray
    hit_ids: np.ndarray
    is_key_frame: bool


@dataclass
class KeyframeLog:
    """A 2 Hz keyframe: its time (the LIDAR_TOP keyframe's) and the annotated objects then."""

    timestamp_us: int
    objects: list[ObjectState]


@dataclass
class CanBusLog:
    """CAN bus streams of one scene, as ``NuScenesCanBus`` reads them.

    Attributes:
        pose: ``{'utime', 'pos', 'orientation', 'vel', 'accel', 'rotation_rate'}`` dicts at 50 Hz
            (pos global, orientation (w, x, y, z), vel/accel/rotation_rate in the ego frame).
        steeranglefeedback: ``{'utime', 'value'}`` dicts at 100 Hz, steering-wheel angle in radians.
    """

    pose: list[dict]
    steeranglefeedback: list[dict]


@dataclass
class SceneLog:
    """A recorded drive, ready to be written as one nuScenes scene.

    Attributes:
        name: scene name, e.g. ``scene-0001``; splits are defined by these names.
        description: free text.
        location: one of ``LOCATIONS``; the town the scene was driven in.
        log_name: the ``log`` record's logfile name.
        captures: every sensor capture, sorted by time.
        keyframes: the 2 Hz keyframes, sorted by time; each matches a LIDAR_TOP capture with is_key_frame.
        can_bus: the scene's CAN bus streams.
    """

    name: str
    description: str
    location: str
    log_name: str
    captures: list[SensorCapture]
    keyframes: list[KeyframeLog]
    can_bus: CanBusLog
