"""Futures and actions: where the ego goes in the next keyframes, seen from the current LIDAR_TOP frame.

For a keyframe at time t and its following keyframes t+0.5 s ... t+K*0.5 s (nuScenes keyframes run at
2 Hz), this gives each future LiDAR frame's pose in the current LiDAR frame and the ego action of each
step k (from keyframe k-1 to keyframe k, keyframe 0 being the current one): ``[dx, dy, dyaw, speed]``, the
displacement of the ego origin (the rear axle, where nuScenes puts ``ego_pose``) and the change of its
heading, both in the current LiDAR frame, and its mean speed over the step, from the CAN bus ``pose``
messages where the scene has them, else from the two ego poses. Steps past the end of the scene are
marked invalid and hold zeros (a zero matrix is no pose), never a copy of the last valid step.
"""

import functools
import json
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from nuscenes.can_bus.can_bus_api import NuScenesCanBus
from nuscenes.nuscenes import NuScenes

from datamodules.sample_records import KeyframeRecord
from datamodules.sweep_transforms import invert_rigid

log = logging.getLogger(__name__)

ACTION_FEATURES = ("dx_m", "dy_m", "dyaw_rad", "speed_mps")
# CAN bus pose messages come at 50 Hz; a step is covered when messages reach this close to both ends.
CAN_BUS_COVERAGE_TOLERANCE_US = 100_000
_CAN_BUS_SCENE_NAME = re.compile(r"^scene-\d{4}$")


@dataclass(frozen=True)
class FutureMotion:
    """The ego's next K keyframes relative to the current one.

    Attributes:
        poses: (K, 4, 4) float64, future LIDAR_TOP frame -> current LIDAR_TOP frame; zeros where
            invalid.
        actions: (K, 4) float32 ``[dx, dy, dyaw, speed]`` of each step (m, m, rad, m/s) in the current
            LIDAR_TOP frame; zeros where invalid.
        valid: (K,) bool, False for steps past the end of the scene.
        time_offsets_s: (K,) float32, future keyframe time minus the current one; zeros where invalid.
        speed_from_can_bus: (K,) bool, whether a step's speed came from the CAN bus (else from ego poses).
    """

    poses: np.ndarray
    actions: np.ndarray
    valid: np.ndarray
    time_offsets_s: np.ndarray
    speed_from_can_bus: np.ndarray


class CanBusSpeeds:
    """Ego speeds from the CAN bus expansion (``can_bus/<scene>_pose.json``, field ``vel``) of a dataroot.

    Scenes without CAN bus data (no ``can_bus`` folder, no file for the scene, or a scene the devkit lists
    as having none) give None, so that callers fall back to ego poses.

    Args:
        dataroot: the nuScenes dataroot holding ``can_bus/``.
    """

    def __init__(self, dataroot: str | Path):
        self.can_dir = Path(dataroot) / "can_bus"
        self._api = NuScenesCanBus(dataroot=str(dataroot)) if self.can_dir.is_dir() else None
        self._by_scene: dict[str, tuple[np.ndarray, np.ndarray] | None] = {}

    def _scene_speeds(self, scene_name: str) -> tuple[np.ndarray, np.ndarray] | None:
        """(times (M,) int64 us, planar speeds (M,) m/s) of a scene's pose messages, or None."""
        if scene_name in self._by_scene:
            return self._by_scene[scene_name]
        speeds = None
        path = self.can_dir / f"{scene_name}_pose.json"
        has_data = (
            self._api is not None
            and _CAN_BUS_SCENE_NAME.match(scene_name)
            and int(scene_name[-4:]) not in self._api.can_blacklist
            and path.is_file()
        )
        if has_data:
            try:
                messages = self._api.get_messages(scene_name, "pose", print_warnings=False)
                times = np.array([message["utime"] for message in messages], dtype=np.int64)
                velocities = np.array([message["vel"] for message in messages], dtype=np.float64).reshape(
                    -1, 3
                )
            except (json.JSONDecodeError, KeyError, TypeError, ValueError) as error:
                raise ValueError(f"CAN bus file {path} of {scene_name} is malformed: {error}") from error
            order = np.argsort(times, kind="stable")
            speeds = (
                (times[order], np.hypot(velocities[order, 0], velocities[order, 1])) if len(times) else None
            )
        if speeds is None:
            log.debug("no CAN bus pose messages for %s; ego speeds come from ego poses", scene_name)
        self._by_scene[scene_name] = speeds
        return speeds

    def mean_speed(self, scene_name: str, start_us: int, end_us: int) -> float | None:
        """Mean CAN bus speed over ``[start_us, end_us]``, or None where the messages do not cover it.

        Args:
            scene_name: the scene, e.g. ``scene-0061``.
            start_us: interval start (microseconds, the dataset's clock).
            end_us: interval end, after ``start_us``.

        Returns:
            m/s, the time average of the linearly interpolated message speeds.
        """
        speeds = self._scene_speeds(scene_name)
        if speeds is None or end_us <= start_us:
            return None
        times, values = speeds
        if (
            times[0] > start_us + CAN_BUS_COVERAGE_TOLERANCE_US
            or times[-1] < end_us - CAN_BUS_COVERAGE_TOLERANCE_US
        ):
            return None
        inside = times[(times > start_us) & (times < end_us)]
        sample_times = np.concatenate([[start_us], inside, [end_us]]).astype(np.float64)
        sample_speeds = np.interp(sample_times, times, values)
        area = np.sum(0.5 * (sample_speeds[1:] + sample_speeds[:-1]) * np.diff(sample_times))  # trapezoids
        return float(area / (end_us - start_us))

    def latest_speed(self, scene_name: str, time_us: int) -> float | None:
        """Speed of the latest CAN bus message at or before ``time_us`` (never a later one).

        Args:
            scene_name: the scene, e.g. ``scene-0061``.
            time_us: the moment (microseconds, the dataset's clock).

        Returns:
            m/s, or None where no message came within ``CAN_BUS_COVERAGE_TOLERANCE_US`` before it.
        """
        speeds = self._scene_speeds(scene_name)
        if speeds is None:
            return None
        times, values = speeds
        latest = int(np.searchsorted(times, time_us, side="right")) - 1
        if latest < 0 or times[latest] < time_us - CAN_BUS_COVERAGE_TOLERANCE_US:
            return None
        return float(values[latest])


def _heading_yaw(rotations: np.ndarray) -> np.ndarray:
    """(N,) yaw of each rotation's x axis in the plane of the frame it maps into."""
    return np.arctan2(rotations[:, 1, 0], rotations[:, 0, 0])


@functools.lru_cache(maxsize=8)
def dataroot_can_bus(dataroot: str) -> CanBusSpeeds:
    """The CAN bus speeds of a dataroot, loaded once per process."""
    return CanBusSpeeds(dataroot)


def future_motion(
    nusc: NuScenes | None,
    record: KeyframeRecord,
    future_records: Sequence[KeyframeRecord],
    num_steps: int | None = None,
) -> FutureMotion:
    """Relative poses, actions and validity of the keyframes after ``record``.

    Args:
        nusc: the dataset, whose CAN bus expansion gives the speeds where it covers a step; None takes
            every speed from the ego poses.
        record: the current keyframe.
        future_records: the records of its following keyframes, in order (the first entries of
            ``record.future_sample_tokens``); fewer than ``num_steps`` near the end of a scene.
        num_steps: K; steps beyond ``future_records`` are invalid. None: K = ``len(future_records)``.

    Returns:
        FutureMotion with K steps.

    Raises:
        ValueError: ``future_records`` are not the record's next keyframes in order, or a CAN bus file is
            malformed.
    """
    num_steps = len(future_records) if num_steps is None else num_steps
    can_bus = dataroot_can_bus(str(nusc.dataroot)) if nusc is not None else None
    futures = list(future_records)[:num_steps]
    expected = record.future_sample_tokens[: len(futures)]
    if tuple(future.sample_token for future in futures) != expected:
        raise ValueError(
            f"future records of sample {record.sample_token} must be its next keyframes in order "
            f"{list(expected)}, got {[future.sample_token for future in futures]}"
        )
    count = len(futures)
    global_to_current = invert_rigid(record.lidar_to_global)
    chain = [record, *futures]
    lidar_to_global = np.stack([keyframe.lidar_to_global for keyframe in chain])  # (count + 1, 4, 4)
    ego_to_global = lidar_to_global @ invert_rigid(np.stack([keyframe.lidar_to_ego for keyframe in chain]))
    ego_in_current = global_to_current @ ego_to_global  # (count + 1, 4, 4)
    step_start, step_end = ego_in_current[:-1], ego_in_current[1:]  # (count, 4, 4) each

    yaw_change = _heading_yaw(step_end[:, :3, :3]) - _heading_yaw(step_start[:, :3, :3])
    times_us = np.array([keyframe.timestamp_us for keyframe in chain], dtype=np.int64)
    durations_s = np.diff(times_us) * 1e-6  # (count,)
    travelled = np.linalg.norm(ego_to_global[1:, :2, 3] - ego_to_global[:-1, :2, 3], axis=1)
    speeds = travelled / np.maximum(durations_s, 1e-6)
    from_can_bus = np.zeros(num_steps, dtype=bool)
    for step in range(count if can_bus is not None else 0):
        can_speed = can_bus.mean_speed(record.scene_name, int(times_us[step]), int(times_us[step + 1]))
        if can_speed is not None:
            speeds[step], from_can_bus[step] = can_speed, True

    actions = np.zeros((num_steps, len(ACTION_FEATURES)), dtype=np.float32)
    actions[:count, :2] = step_end[:, :2, 3] - step_start[:, :2, 3]
    actions[:count, 2] = np.arctan2(np.sin(yaw_change), np.cos(yaw_change))  # wrapped to (-pi, pi]
    actions[:count, 3] = speeds
    poses = np.zeros((num_steps, 4, 4))
    poses[:count] = global_to_current @ lidar_to_global[1:]
    valid = np.arange(num_steps) < count
    time_offsets = np.zeros(num_steps, dtype=np.float32)
    time_offsets[:count] = (times_us[1:] - times_us[0]) * 1e-6
    return FutureMotion(poses, actions, valid, time_offsets, from_can_bus)
