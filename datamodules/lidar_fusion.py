"""Multi-sweep LiDAR: a keyframe's sweeps, ego-motion compensated into its LIDAR_TOP frame, with time lags.

Computes what the devkit's ``LidarPointCloud.from_file_multisweep(nusc, sample, 'LIDAR_TOP', 'LIDAR_TOP',
nsweeps)`` computes, in its order (keyframe sweep first, then earlier sweeps, file order within a sweep):
per sweep, points with ``|x| < d and |y| < d`` in the sensor frame are removed, the rest go
sensor -> ego(t_sweep) -> global -> ego(t_key) -> LiDAR(t_key) (in float64 like the devkit), and each point
carries the time lag ``t_key - t_sweep`` in seconds.

Speed: the loop is bound by memory traffic, so each file is read into a reused buffer that stays in the CPU
cache, and one compiled pass per sweep validates, filters and transforms its points straight into the
output, with no per-point Python and no intermediate arrays.
"""

import os
import threading
from pathlib import Path

import numba
import numpy as np

from datamodules.lidar_files import LIDAR_COLUMNS, SensorFileError, load_lidar_points
from datamodules.sample_records import FusedPoints, KeyframeRecord
from datamodules.sweep_transforms import sweeps_to_reference

LIDAR_FEATURES = ("x", "y", "z", "intensity", "time_lag_s")
_ROW_BYTES = LIDAR_COLUMNS * 4
_thread_buffers = threading.local()


def _raise_file_error(path: Path, context: str, reason: str) -> None:
    """Raise the error ``load_lidar_points`` gives for a missing, truncated or non-finite file."""
    load_lidar_points(path, context)
    raise SensorFileError(f"LiDAR file {path} ({context}): {reason}")


def _reading_buffer(num_points: int) -> tuple[np.ndarray, memoryview]:
    """Room for ``num_points`` LiDAR rows to read a sweep file into, reused by the calls of one thread (so
    it stays in the CPU cache): the rows as (M, 5) float32 and the same memory as bytes."""
    rows = getattr(_thread_buffers, "rows", None)
    if rows is None or len(rows) < num_points:
        rows = _thread_buffers.rows = np.empty((num_points, LIDAR_COLUMNS), dtype="<f4")
        _thread_buffers.bytes = memoryview(rows.reshape(-1).view(np.uint8))
    return rows, _thread_buffers.bytes


# Fused multiply-adds only (no other fast-math: NaN checks must hold): 15% faster, rounding once per term.
@numba.njit(cache=True, fastmath={"contract"})
def _fuse_sweep_kernel(raw, transform, time_lag, min_distance, sweep, points, sweep_index, count):
    """Append one sweep's kept, transformed points at ``points[count:]``.

    Branch-free: every point is written at ``count`` and ``count`` only advances for kept points. A NaN or
    infinite coordinate makes its transformed x non-finite, so one sum checks the whole sweep.

    Returns the new count, or -1 when the sweep holds a NaN or infinite coordinate.
    """
    # Scalars rather than matrix reads in the loop: the compiler cannot prove the output does not alias.
    r00, r01, r02, t0 = transform[0, 0], transform[0, 1], transform[0, 2], transform[0, 3]
    r10, r11, r12, t1 = transform[1, 0], transform[1, 1], transform[1, 2], transform[1, 3]
    r20, r21, r22, t2 = transform[2, 0], transform[2, 1], transform[2, 2], transform[2, 3]
    checksum = 0.0
    for row in range(raw.shape[0]):
        x, y = raw[row, 0], raw[row, 1]
        xd, yd, zd = np.float64(x), np.float64(y), np.float64(raw[row, 2])
        out_x = r00 * xd + r01 * yd + r02 * zd + t0
        out_y = r10 * xd + r11 * yd + r12 * zd + t1
        out_z = r20 * xd + r21 * yd + r22 * zd + t2
        checksum += out_x  # NaN or inf in x, y or z makes out_x so (IEEE: 0 * inf and 0 * NaN are NaN)
        points[count, 0] = out_x
        points[count, 1] = out_y
        points[count, 2] = out_z
        points[count, 3] = raw[row, 3]
        points[count, 4] = time_lag
        sweep_index[count] = sweep
        count += not (abs(x) < min_distance and abs(y) < min_distance)
    return count if np.isfinite(checksum) else -1


def fuse_lidar_sweeps(record: KeyframeRecord, min_distance_m: float = 1.0) -> FusedPoints:
    """All LiDAR sweeps of a record in its keyframe LIDAR_TOP frame.

    Args:
        record: the keyframe; its ``lidar_sweeps`` are fused (keyframe sweep first).
        min_distance_m: points with ``|x|`` and ``|y|`` both below this in their sensor frame are dropped
            (the devkit's ``remove_close``: the ego's own returns).

    Returns:
        FusedPoints with points (N, 5) ``[x, y, z, intensity, time_lag_s]``, sweep_index (N,) and
        sensor_origins (S, 3) of the LiDAR at each sweep.

    Raises:
        SensorFileError: a sweep file is missing, truncated or holds NaN/infinite coordinates; the message
            names the file and the sample token.
    """
    context = f"sample {record.sample_token}"
    sweeps = record.lidar_sweeps
    transforms = sweeps_to_reference(record.lidar_to_global, sweeps, context)  # (S, 4, 4)
    # Python floats, cheaper for the compiled kernel to receive than numpy scalars. The distance holds a
    # float32 value, so comparing float32 coordinates with it is numpy's comparison of the devkit's points.
    min_distance = float(np.float32(min_distance_m))
    time_lags = [(record.timestamp_us - sweep.timestamp_us) * 1e-6 for sweep in sweeps]  # float32 once stored
    paths = [record.sweep_file(sweep) for sweep in sweeps]
    descriptors: list[int] = []
    try:
        for path in paths:
            try:
                descriptors.append(os.open(path, os.O_RDONLY))
            except OSError as error:
                _raise_file_error(path, context, f"cannot be opened: {error}")
        sizes = [os.fstat(descriptor).st_size for descriptor in descriptors]
        for path, size in zip(paths, sizes, strict=True):
            if size % _ROW_BYTES:
                _raise_file_error(path, context, "is not a whole number of points")
        capacity = sum(sizes) // _ROW_BYTES
        points = np.empty((capacity, len(LIDAR_FEATURES)), dtype=np.float32)
        sweep_index = np.empty(capacity, dtype=np.int16)
        rows, row_bytes = _reading_buffer(max(sizes, default=0) // _ROW_BYTES)
        count = 0
        for number, (path, descriptor, size) in enumerate(zip(paths, descriptors, sizes, strict=True)):
            read = os.readv(descriptor, [row_bytes[:size]]) if size else 0
            if read != size:
                _raise_file_error(path, context, f"changed while being read ({read} of {size} bytes)")
            raw = rows[: size // _ROW_BYTES]  # (n, 5) sensor frame
            count = _fuse_sweep_kernel(
                raw, transforms[number], time_lags[number], min_distance, number, points, sweep_index, count
            )
            if count < 0:
                _raise_file_error(path, context, "holds NaN or infinite coordinates")
    finally:
        for descriptor in descriptors:
            os.close(descriptor)
    return FusedPoints(
        points=points[:count],
        sweep_index=sweep_index[:count],
        sensor_origins=transforms[:, :3, 3].astype(np.float32),
    )
