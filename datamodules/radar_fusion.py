"""Multi-sweep radar: the five RADAR_* channels of a keyframe, ego-motion compensated into its LIDAR_TOP frame.

Per channel this computes what the devkit's ``RadarPointCloud.from_file_multisweep(nusc, sample, channel,
'LIDAR_TOP', nsweeps)`` computes with the default filters (invalid, dynamic-property and ambiguity states),
including its ``remove_close`` of clusters with ``|x| < d and |y| < d`` in the sensor frame, and goes one
step further for the velocities: the ego-motion compensated ``vx_comp, vy_comp`` of each cluster, which the
devkit leaves in the radar's frame, are rotated into the reference frame like the positions.
"""

import numpy as np
from numpy.lib import recfunctions as rfn

from datamodules.lidar_files import SensorFileError
from datamodules.nuscenes_index import RADAR_CHANNELS
from datamodules.radar_files import default_filter_mask, load_radar_records
from datamodules.sample_records import FusedPoints, KeyframeRecord, SweepRecord
from datamodules.sweep_transforms import sweeps_to_reference

RADAR_FEATURES = ("x", "y", "z", "rcs", "vx_comp", "vy_comp", "time_lag_s")
_VALUE_FIELDS = ("x", "y", "z", "rcs", "vx_comp", "vy_comp")
_COMMON_LAYOUT = np.dtype(
    [(name, "<f4") for name in _VALUE_FIELDS]
    + [(name, "i1") for name in ("dyn_prop", "ambig_state", "invalid_state")]
)


def radar_sweeps_in_order(record: KeyframeRecord) -> list[SweepRecord]:
    """A record's radar sweeps in fusion order: channel by channel (``RADAR_CHANNELS``), keyframe sweep first.

    ``FusedPoints.sweep_index`` of ``fuse_radar_sweeps`` indexes this list.
    """
    return [sweep for channel in RADAR_CHANNELS for sweep in record.radar_sweeps.get(channel, ())]


def fuse_radar_sweeps(record: KeyframeRecord, min_distance_m: float = 1.0) -> FusedPoints:
    """All radar sweeps of a record in its keyframe LIDAR_TOP frame.

    Args:
        record: the keyframe; its ``radar_sweeps`` are fused (none gives zero points).
        min_distance_m: clusters with ``|x|`` and ``|y|`` both below this in their sensor frame are
            dropped, as the devkit's multi-sweep loader does.

    Returns:
        FusedPoints with points (N, 7) ``[x, y, z, rcs, vx_comp, vy_comp, time_lag_s]`` (velocities in the
        reference frame, m/s), sweep_index (N,) into ``radar_sweeps_in_order(record)`` and
        sensor_origins (S, 3) of the radar at each of those sweeps.

    Raises:
        SensorFileError: a radar file is missing, malformed or truncated, or a kept cluster has NaN or
            infinite values; the message names the file and the sample token.
    """
    context = f"sample {record.sample_token}"
    sweeps = radar_sweeps_in_order(record)
    transforms = sweeps_to_reference(record.lidar_to_global, sweeps, context)  # (S, 4, 4)
    paths = [record.sweep_file(sweep) for sweep in sweeps]
    loaded = [load_radar_records(path, context) for path in paths]
    if any(records.dtype != loaded[0].dtype for records in loaded):
        # Files with different layouts: keep the fields the fusion reads, in one common layout.
        loaded = [rfn.require_fields(records, _COMMON_LAYOUT) for records in loaded]
    layout = loaded[0].dtype if loaded else _COMMON_LAYOUT
    # Joined as bytes: numpy's concatenate of packed record arrays is slower than reading the files.
    raw_bytes = [records.view(np.uint8) for records in loaded] or [np.zeros(0, np.uint8)]
    clusters = np.concatenate(raw_bytes).view(layout)  # (N,)
    sweep_of_point = np.repeat(np.arange(len(sweeps)), [len(records) for records in loaded])  # (N,)
    x, y = clusters["x"].astype(np.float64), clusters["y"].astype(np.float64)
    close = (np.abs(x) < min_distance_m) & (np.abs(y) < min_distance_m)
    keep = default_filter_mask(clusters) & ~close
    kept = clusters[keep]
    values = np.stack([kept[name] for name in _VALUE_FIELDS], axis=1).astype(np.float64)  # (K, 6)
    sweep_of_point = sweep_of_point[keep]
    finite = np.isfinite(values).all(axis=1)
    if not finite.all():
        bad_path = paths[int(sweep_of_point[np.argmin(finite)])]
        raise SensorFileError(
            f"radar file {bad_path} ({context}) has clusters with NaN or infinite values "
            f"in {', '.join(_VALUE_FIELDS)}"
        )
    rotations = transforms[sweep_of_point, :3, :3]  # (K, 3, 3)
    positions = np.einsum("nij,nj->ni", rotations, values[:, :3]) + transforms[sweep_of_point, :3, 3]
    # Velocities are planar in the radar frame: v_ref = R @ [vx, vy, 0].
    velocities = np.einsum("nij,nj->ni", rotations[:, :2, :2], values[:, 4:6])
    time_lags = np.array([(record.timestamp_us - sweep.timestamp_us) * 1e-6 for sweep in sweeps])
    points = np.column_stack([positions, values[:, 3], velocities, time_lags[sweep_of_point]]).astype(
        np.float32
    )
    return FusedPoints(
        points=points.reshape(-1, len(RADAR_FEATURES)),
        sweep_index=sweep_of_point.astype(np.int16),
        sensor_origins=transforms[:, :3, 3].astype(np.float32),
    )
