"""Record a scene: drive the simulator on nuScenes' sensor clock and keep everything the writer needs.

The clock: LIDAR_TOP sweeps at 20 Hz (every simulator step), each radar at about 13 Hz with its own phase,
keyframes at 2 Hz on every tenth LiDAR sweep (the radar captures nearest in time are the radars' key
frames), CAN bus pose at 50 Hz and steering at 100 Hz. Every capture carries the ego state at its own
timestamp. Objects are annotated at keyframes while within range of the ego, with the LiDAR visibility of
each; a track that leaves the range and comes back is annotated in between too, so tracks are unbroken.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import numpy as np
from pyquaternion import Quaternion

from bevjepa.sim.calibration import LIDAR_TOP, RADARS
from bevjepa.sim.lidar import lidar_visibility
from bevjepa.sim.simulator import Simulator
from bevjepa.sim.town import Town
from bevjepa.sim.types import CanBusLog, KeyframeLog, ObjectState, SceneLog, SensorCapture

SWEEPS_PER_KEYFRAME = 10
RADAR_PERIOD_US = 76_923  # 13 Hz
CAN_POSE_PERIOD_US = 20_000  # 50 Hz
CAN_STEERING_PERIOD_US = 10_000  # 100 Hz
GRAVITY_MPS2 = 9.81
# nuScenes log names start with the vehicle id and end with the local time zone of the city.
_LOG_PREFIX = {
    "singapore": ("n015", timezone(timedelta(hours=8))),
    "boston": ("n008", timezone(timedelta(hours=-4))),
}


@dataclass(frozen=True)
class SceneSpec:
    """What to record.

    Attributes:
        name: scene name (``scene-NNNN``).
        seed: seed of the drive (traffic, route, sensor noise).
        start_timestamp_us: timestamp of the first LiDAR sweep.
        duration_s: scene length.
        annotation_range_m: objects within this distance of the ego are annotated.
    """

    name: str
    seed: int
    start_timestamp_us: int
    duration_s: float
    annotation_range_m: float


def log_name(location: str, start_timestamp_us: int) -> str:
    """A nuScenes-style log name, e.g. ``n015-2018-07-24-10-00-00+0800``, from location and start time."""
    prefix, zone = _LOG_PREFIX[location.split("-")[0]]
    local = datetime.fromtimestamp(start_timestamp_us // 1_000_000, tz=zone)
    return f"{prefix}-{local.strftime('%Y-%m-%d-%H-%M-%S%z')}"


def record_scene(simulator: Simulator, town: Town, spec: SceneSpec) -> SceneLog:
    """Drive one scene with the autopilot and record it.

    Args:
        simulator: the simulator (its config gives the sensors and traffic).
        town: the town to drive in.
        spec: name, seed, start time, length and annotation range.

    Returns:
        The scene log: captures sorted by time, keyframes, CAN bus.
    """
    simulator.reset_world(spec.seed, town, spec.start_timestamp_us)
    step_us = int(round(simulator.config.step_s * 1e6))
    sweeps = int(round(spec.duration_s / simulator.config.step_s))
    end_us = spec.start_timestamp_us + sweeps * step_us
    phase_rng = np.random.default_rng([spec.seed, 13])
    radar_times = {
        mount.channel: list(
            range(spec.start_timestamp_us + int(phase_rng.integers(RADAR_PERIOD_US)), end_us, RADAR_PERIOD_US)
        )
        for mount in RADARS
    }

    captures: list[SensorCapture] = []
    keyframe_objects: list[tuple[int, np.ndarray, list[ObjectState]]] = []
    for sweep in range(sweeps):
        is_key_frame = sweep % SWEEPS_PER_KEYFRAME == 0
        lidar = simulator.capture_lidar(is_key_frame)
        captures.append(lidar)
        if is_key_frame:
            keyframe_objects.append((lidar.timestamp_us, lidar.ego.position, _visible_objects(simulator)))
        step_start = simulator.timestamp_us
        simulator.advance()
        for mount in RADARS:
            for time_us in radar_times[mount.channel]:
                if step_start <= time_us < simulator.timestamp_us:
                    captures.append(simulator.capture_radar(mount, time_us))

    keyframe_times = [time_us for time_us, _, _ in keyframe_objects]
    _mark_radar_key_frames(captures, keyframe_times)
    channel_order = {mount.channel: i for i, mount in enumerate((LIDAR_TOP, *RADARS))}
    captures.sort(key=lambda c: (c.timestamp_us, channel_order[c.channel]))
    vehicles, walkers = len(simulator.traffic.vehicles), len(simulator.traffic.pedestrians.people)
    return SceneLog(
        name=spec.name,
        description=f"Synthetic drive in {town.location} (town seed {town.seed}): {vehicles} vehicles and cyclists, "
        f"{walkers} pedestrians, {spec.duration_s:g} s",
        location=town.location,
        log_name=log_name(town.location, spec.start_timestamp_us),
        captures=captures,
        keyframes=_keyframes(keyframe_objects, spec.annotation_range_m),
        can_bus=_can_bus(simulator, spec.start_timestamp_us, end_us),
    )


def _visible_objects(simulator: Simulator) -> list[ObjectState]:
    """Every annotated object now, with the share of it LIDAR_TOP sees."""
    scene = simulator.raycast_scene()
    lidar_pose = simulator.sensor_to_global(LIDAR_TOP, simulator.ego)
    visibility = dict(
        zip(scene.box_ids.tolist(), lidar_visibility(scene, lidar_pose, simulator.config.lidar), strict=True)
    )
    return [
        ObjectState(
            o.instance_id,
            o.category,
            o.attribute,
            o.box.copy(),
            o.velocity.copy(),
            float(visibility[o.instance_id]),
        )
        for o in simulator.objects()
    ]


def _keyframes(
    keyframe_objects: list[tuple[int, np.ndarray, list[ObjectState]]], range_m: float
) -> list[KeyframeLog]:
    """Keyframe logs annotating each object from the first to the last keyframe it is within range."""
    in_range: dict[int, list[int]] = {}
    for index, (_, ego_position, objects) in enumerate(keyframe_objects):
        for obj in objects:
            if np.linalg.norm(obj.box[:2] - ego_position) <= range_m:
                in_range.setdefault(obj.instance_id, []).append(index)
    span = {instance: (min(indices), max(indices)) for instance, indices in in_range.items()}
    keyframes = []
    for index, (time_us, _, objects) in enumerate(keyframe_objects):
        kept = [
            o
            for o in objects
            if o.instance_id in span and span[o.instance_id][0] <= index <= span[o.instance_id][1]
        ]
        keyframes.append(KeyframeLog(timestamp_us=time_us, objects=kept))
    return keyframes


def _mark_radar_key_frames(captures: list[SensorCapture], keyframe_times: list[int]) -> None:
    """Make each radar's capture nearest to each keyframe that radar's key frame."""
    for mount in RADARS:
        radar = [c for c in captures if c.channel == mount.channel]
        times = np.array([c.timestamp_us for c in radar])
        for keyframe_time in keyframe_times:
            radar[int(np.abs(times - keyframe_time).argmin())].is_key_frame = True


def _can_bus(simulator: Simulator, start_us: int, end_us: int) -> CanBusLog:
    """Pose (50 Hz) and steering-wheel angle (100 Hz) messages over the scene, from the ego's history."""
    spec = simulator.config.ego
    pose, steering = [], []
    for time_us, ego in simulator.ego_history:
        if not start_us <= time_us <= end_us:
            continue
        offset = time_us - start_us
        if offset % CAN_STEERING_PERIOD_US == 0:
            steering.append({"utime": time_us, "value": ego.steering * spec.steering_ratio})
        if offset % CAN_POSE_PERIOD_US == 0:
            orientation = Quaternion(axis=(0.0, 0.0, 1.0), angle=ego.yaw)
            pose.append(
                {
                    "utime": time_us,
                    "pos": [float(ego.position[0]), float(ego.position[1]), 0.0],
                    "orientation": [orientation.w, orientation.x, orientation.y, orientation.z],
                    "vel": [ego.speed, 0.0, 0.0],
                    # An IMU feels gravity as an upward acceleration, as in the nuScenes pose messages.
                    "accel": [ego.acceleration, ego.speed * ego.yaw_rate, GRAVITY_MPS2],
                    "rotation_rate": [0.0, 0.0, ego.yaw_rate],
                }
            )
    return CanBusLog(pose=pose, steeranglefeedback=steering)
