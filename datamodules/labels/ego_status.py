"""Ego status now: the ego's velocity, yaw rate and speed at the keyframe (a planning probe input).

Only what is known at the keyframe goes in: ego poses of the LIDAR_TOP sweeps at and before the keyframe,
and the latest CAN bus pose message at or before it, never anything later (a planner that read the future
poses would be told where the ego goes).

Velocity and yaw rate come from two chords of the ego origin's path: keyframe sweep to the latest earlier
sweep at least ``CHORD_S`` before it, and from there to one more ``CHORD_S`` back. A chord points along the
ego's velocity at the middle of its interval; turned by half its heading change and scaled from chord to arc
length, it gives the velocity in the ego frame at that middle, exact for motion at constant speed and turn
rate (the ego origin, the rear axle, on a circle). The two chords' velocities and turn rates are extrapolated
linearly to the keyframe, which makes the estimate exact under constant acceleration too. Where the scene
began too recently for two chords, the one chord's values are used; where the keyframe sweep is the scene's
first, velocity and yaw rate are zero (nothing before the keyframe tells the motion).
"""

import numpy as np
from nuscenes.nuscenes import NuScenes

from bevjepa.batch import EGO_SPEED, EGO_STATUS_FEATURES, EGO_VELOCITY, EGO_YAW_RATE
from datamodules.ego_motion import CanBusSpeeds
from datamodules.sample_records import KeyframeRecord
from datamodules.sweep_transforms import rigid_transforms

# Two LiDAR sweeps at 20 Hz: centimetre localisation jitter barely moves a velocity over this long.
CHORD_S = 0.1
# Sweeps closer in time than this give no velocity (a duplicated timestamp, not motion).
MIN_ELAPSED_S = 0.01


def _heading(ego_to_global: np.ndarray) -> float:
    """Yaw of the ego x axis about the global vertical."""
    return float(np.arctan2(ego_to_global[1, 0], ego_to_global[0, 0]))


def _chord_motion(later: np.ndarray, earlier: np.ndarray, elapsed_s: float) -> tuple[np.ndarray, float]:
    """Ego-frame velocity (3,) and turn rate at the middle of a chord between two ego poses (4, 4)."""
    heading_change = _heading(later) - _heading(earlier)
    heading_change = float(np.arctan2(np.sin(heading_change), np.cos(heading_change)))
    chord_later = later[:3, :3].T @ (later[:3, 3] - earlier[:3, 3])  # (3,) in the later ego frame
    half = 0.5 * heading_change
    to_middle = np.array([[np.cos(half), -np.sin(half), 0.0], [np.sin(half), np.cos(half), 0.0], [0, 0, 1]])
    arc_per_chord = 1.0 / np.sinc(half / np.pi)  # (theta / 2) / sin(theta / 2)
    return to_middle @ chord_later * (arc_per_chord / elapsed_s), heading_change / elapsed_s


def ego_status_from_poses(
    ego_to_global: np.ndarray, times_s: np.ndarray, lidar_to_ego: np.ndarray
) -> np.ndarray:
    """Velocity and yaw rate now from the ego pose now and one or two earlier poses.

    Args:
        ego_to_global: (S, 4, 4) ego poses, S in 1..3, the keyframe's first, then earlier ones.
        times_s: (S,) their times, decreasing.
        lidar_to_ego: (4, 4) LIDAR_TOP calibration of the keyframe (the frame the velocity is given in).

    Returns:
        (3,) float64 ``[vx, vy, yaw_rate]``: velocity of the ego origin in the current LiDAR frame (m/s)
        and heading rate (rad/s, counter-clockwise positive); zeros for a single pose.
    """
    middles = 0.5 * (times_s[:-1] + times_s[1:])  # (S - 1,)
    chords = [
        _chord_motion(ego_to_global[i], ego_to_global[i + 1], times_s[i] - times_s[i + 1])
        for i in range(len(times_s) - 1)
    ]
    if not chords:
        return np.zeros(3)
    velocity, yaw_rate = chords[0]
    if len(chords) == 2:  # constant acceleration: extrapolate from the two middles to now
        ahead = (times_s[0] - middles[0]) / (middles[0] - middles[1])
        velocity = velocity + ahead * (velocity - chords[1][0])
        yaw_rate = yaw_rate + ahead * (yaw_rate - chords[1][1])
    velocity_lidar = lidar_to_ego[:3, :3].T @ velocity  # (3,)
    return np.array([velocity_lidar[0], velocity_lidar[1], yaw_rate])


def _pose_matrix(nusc: NuScenes, sample_data: dict) -> np.ndarray:
    pose = nusc.get("ego_pose", sample_data["ego_pose_token"])
    return rigid_transforms(np.array([pose["rotation"]]), np.array([pose["translation"]]))[0]


def ego_status(nusc: NuScenes, record: KeyframeRecord, can_bus: CanBusSpeeds | None) -> np.ndarray:
    """The ego status of a keyframe from its LIDAR_TOP sweeps at and before it.

    At the start of a scene, where the keyframe sweep has no earlier sweep, velocity and yaw rate are zero
    (nothing before the keyframe tells the motion); the speed is then the CAN bus speed where present, else
    zero as well.

    Args:
        nusc: the dataset.
        record: the keyframe.
        can_bus: CAN bus speeds of the dataroot (None: speeds from ego poses only).

    Returns:
        (4,) float32 ``[vx, vy, yaw_rate, speed]`` (m/s, m/s, rad/s, m/s), velocity in the current LiDAR
        frame; speed is the latest CAN bus speed at or before the keyframe where the CAN bus covers it,
        else ``hypot(vx, vy)``.
    """
    chain = [nusc.get("sample_data", record.lidar_sweeps[0].token)]
    for _ in range(2):
        sweep = chain[-1]
        while sweep["prev"] and (chain[-1]["timestamp"] - sweep["timestamp"]) * 1e-6 < CHORD_S:
            sweep = nusc.get("sample_data", sweep["prev"])
        if (chain[-1]["timestamp"] - sweep["timestamp"]) * 1e-6 < MIN_ELAPSED_S:
            break
        chain.append(sweep)
    poses = np.stack([_pose_matrix(nusc, sweep) for sweep in chain])  # (S, 4, 4)
    times_s = np.array([(sweep["timestamp"] - chain[0]["timestamp"]) * 1e-6 for sweep in chain])  # (S,)
    status = np.zeros(len(EGO_STATUS_FEATURES))
    motion = ego_status_from_poses(poses, times_s, record.lidar_to_ego)  # (3,) vx, vy, yaw rate
    status[EGO_VELOCITY], status[EGO_YAW_RATE] = motion[:2], motion[2]
    can_speed = can_bus.latest_speed(record.scene_name, record.timestamp_us) if can_bus is not None else None
    status[EGO_SPEED] = can_speed if can_speed is not None else np.hypot(*status[EGO_VELOCITY])
    return status.astype(np.float32)
