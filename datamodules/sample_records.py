"""What the index knows about one keyframe before any sensor file is read: file paths and the rigid
transforms of every sweep, taken once from the nuScenes tables so that loading needs no devkit objects."""

import os
from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class SweepRecord:
    """One sensor sweep (a ``sample_data`` record).

    Attributes:
        path: the sensor file, relative to the keyframe record's ``dataroot`` (for an indexed dataset, the
            ``filename`` string of the ``sample_data`` table itself, so that records hold no copy of it) or
            absolute; ``KeyframeRecord.sweep_file`` gives the file to open.
        token: the ``sample_data`` token.
        timestamp_us: capture time.
        sensor_to_global: (4, 4) float64, calibrated_sensor then ego_pose of this sweep.
    """

    path: str
    token: str
    timestamp_us: int
    sensor_to_global: np.ndarray


@dataclass(frozen=True)
class KeyframeRecord:
    """A keyframe (``sample``) with the sweeps that feed it.

    Attributes:
        sample_token: the ``sample`` token.
        scene_name: its scene's name.
        location: its log's map location.
        timestamp_us: the keyframe time (its LIDAR_TOP sample_data's).
        lidar_to_global: (4, 4) float64 transform of the keyframe LIDAR_TOP sweep: the reference frame.
        lidar_to_ego: (4, 4) float64 LIDAR_TOP calibration of the keyframe.
        lidar_sweeps: the keyframe sweep first, then earlier sweeps following ``prev`` (at most the number
            asked for; fewer where the chain ends early).
        radar_sweeps: per RADAR_* channel, the keyframe sweep first, then earlier ones.
        annotation_tokens: the sample's ``sample_annotation`` tokens.
        future_sample_tokens: the next keyframes of the same scene, in order (for futures).
        dataroot: the folder sweep paths are relative to ("" where they are absolute).
    """

    sample_token: str
    scene_name: str
    location: str
    timestamp_us: int
    lidar_to_global: np.ndarray
    lidar_to_ego: np.ndarray
    lidar_sweeps: tuple[SweepRecord, ...]
    radar_sweeps: dict[str, tuple[SweepRecord, ...]] = field(default_factory=dict)
    annotation_tokens: tuple[str, ...] = ()
    future_sample_tokens: tuple[str, ...] = ()
    dataroot: str = ""

    def sweep_file(self, sweep: SweepRecord) -> str:
        """The file of one of this record's sweeps."""
        return os.path.join(self.dataroot, sweep.path)


@dataclass
class FusedPoints:
    """Points of several sweeps in the keyframe's LIDAR_TOP frame.

    Attributes:
        points: (N, C) float32; LiDAR ``[x, y, z, intensity, time_lag_s]``, radar
            ``[x, y, z, rcs, vx_comp, vy_comp, time_lag_s]`` (velocities rotated into the reference frame).
        sweep_index: (N,) int16, which sweep of the record each point came from (0 = the keyframe sweep).
        sensor_origins: (S, 3) float32 position of the sensor at each sweep, in the reference frame.
    """

    points: np.ndarray
    sweep_index: np.ndarray
    sensor_origins: np.ndarray
