"""Multi-sweep LiDAR: a keyframe's sweeps, ego-motion compensated into its LIDAR_TOP frame, with time lags.

Computes what the devkit's ``LidarPointCloud.from_file_multisweep(nusc, sample, 'LIDAR_TOP', 'LIDAR_TOP',
nsweeps)`` computes, in its order (keyframe sweep first, then earlier sweeps, file order within a sweep):
per sweep, points with ``|x| < d and |y| < d`` in the sensor frame are removed, the rest go
sensor -> ego(t_sweep) -> global -> ego(t_key) -> LiDAR(t_key), and each point carries the time lag
``t_key - t_sweep`` in seconds. All files are read straight into one buffer and one compiled pass
filters, validates and transforms every point, so no per-point Python and no per-sweep array churn remains.
"""

import itertools
import os
import threading
from collections.abc import Sequence
from pathlib import Path

import numba
import numpy as np

from datamodules.lidar_files import LIDAR_COLUMNS, SensorFileError, load_lidar_points
from datamodules.nuscenes_index import sweeps_to_reference
from datamodules.sample_records import FusedPoints, KeyframeRecord, SweepRecord

LIDAR_FEATURES = ("x", "y", "z", "intensity", "time_lag_s")
_ROW_BYTES = LIDAR_COLUMNS * 4


def _raise_file_error(path: Path, context: str, reason: str) -> None:
    """Raise the error ``load_lidar_points`` gives for a missing, truncated or non-finite file."""
    load_lidar_points(path, context)
    raise SensorFileError(f"LiDAR file {path} ({context}): {reason}")


_thread_buffers = threading.local()


def _reading_buffer(num_bytes: int) -> memoryview:
    """Writable bytes for reading sweep files into, reused by the calls of one thread.

    A fresh multi-megabyte array per keyframe costs a page fault per 4 KiB on first write, about as much
    time as the fusion itself; the reused one is already mapped.
    """
    buffer = getattr(_thread_buffers, "raw", None)
    if buffer is None or len(buffer) < num_bytes:
        buffer = _thread_buffers.raw = memoryview(np.empty(num_bytes, dtype=np.uint8))
    return buffer[:num_bytes]


def _read_lidar_sweeps(sweeps: Sequence[SweepRecord], context: str) -> tuple[np.ndarray, np.ndarray]:
    """Read several ``.pcd.bin`` sweeps straight into this thread's reading buffer.

    Returns:
        raw: (N, 5) float32 ``[x, y, z, intensity, ring]`` of all sweeps in their sensor frames, not checked
            for NaN; a view of the reading buffer, valid until the thread's next call.
        offsets: (S + 1,) int64; sweep ``s`` is ``raw[offsets[s]:offsets[s + 1]]``.

    Raises:
        SensorFileError: a file is missing or not a whole number of 5-float rows.
    """
    descriptors: list[int] = []
    try:
        for sweep in sweeps:
            try:
                descriptors.append(os.open(sweep.path, os.O_RDONLY))
            except OSError as error:
                _raise_file_error(sweep.path, context, f"cannot be opened: {error}")
        sizes = [os.fstat(descriptor).st_size for descriptor in descriptors]
        for sweep, size in zip(sweeps, sizes, strict=True):
            if size % _ROW_BYTES:
                _raise_file_error(sweep.path, context, "is not a whole number of points")
        ends = list(itertools.accumulate(sizes))
        raw_bytes = _reading_buffer(ends[-1] if ends else 0)
        for sweep, descriptor, size, end in zip(sweeps, descriptors, sizes, ends, strict=True):
            read = os.readv(descriptor, [raw_bytes[end - size : end]]) if size else 0
            if read != size:
                _raise_file_error(sweep.path, context, f"changed while being read ({read} of {size} bytes)")
    finally:
        for descriptor in descriptors:
            os.close(descriptor)
    offsets = np.array([0, *ends], dtype=np.int64) // _ROW_BYTES
    return np.frombuffer(raw_bytes, dtype="<f4").reshape(-1, LIDAR_COLUMNS), offsets


@numba.njit(cache=True)
def _fuse_points_kernel(raw, offsets, transforms, time_lags, min_distance, points, sweep_index):
    """Write the kept, transformed points of every sweep into ``points``/``sweep_index``.

    Returns (number written, first sweep with a NaN or infinite coordinate or -1).
    """
    count = 0
    for sweep in range(len(offsets) - 1):
        # Scalars rather than matrix reads in the loop: the compiler cannot prove the output does not alias.
        r00, r01, r02, t0 = (
            transforms[sweep, 0, 0],
            transforms[sweep, 0, 1],
            transforms[sweep, 0, 2],
            transforms[sweep, 0, 3],
        )
        r10, r11, r12, t1 = (
            transforms[sweep, 1, 0],
            transforms[sweep, 1, 1],
            transforms[sweep, 1, 2],
            transforms[sweep, 1, 3],
        )
        r20, r21, r22, t2 = (
            transforms[sweep, 2, 0],
            transforms[sweep, 2, 1],
            transforms[sweep, 2, 2],
            transforms[sweep, 2, 3],
        )
        time_lag = time_lags[sweep]
        for row in range(offsets[sweep], offsets[sweep + 1]):
            x, y, z = raw[row, 0], raw[row, 1], raw[row, 2]
            if not (np.isfinite(x) and np.isfinite(y) and np.isfinite(z)):
                return count, sweep
            if abs(x) < min_distance and abs(y) < min_distance:
                continue
            xd, yd, zd = np.float64(x), np.float64(y), np.float64(z)
            points[count, 0] = r00 * xd + r01 * yd + r02 * zd + t0
            points[count, 1] = r10 * xd + r11 * yd + r12 * zd + t1
            points[count, 2] = r20 * xd + r21 * yd + r22 * zd + t2
            points[count, 3] = raw[row, 3]
            points[count, 4] = time_lag
            sweep_index[count] = sweep
            count += 1
    return count, -1


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
    raw, offsets = _read_lidar_sweeps(sweeps, context)
    transforms = sweeps_to_reference(record.lidar_to_global, sweeps)  # (S, 4, 4)
    sweep_times_us = np.array([sweep.timestamp_us for sweep in sweeps], dtype=np.int64)
    time_lags = ((record.timestamp_us - sweep_times_us) * 1e-6).astype(np.float32)  # (S,)
    points = np.empty((len(raw), len(LIDAR_FEATURES)), dtype=np.float32)
    sweep_index = np.empty(len(raw), dtype=np.int16)
    count, bad_sweep = _fuse_points_kernel(
        raw, offsets, transforms, time_lags, np.float32(min_distance_m), points, sweep_index
    )
    if bad_sweep >= 0:
        _raise_file_error(sweeps[bad_sweep].path, context, "holds NaN or infinite coordinates")
    return FusedPoints(
        points=points[:count],
        sweep_index=sweep_index[:count],
        sensor_origins=transforms[:, :3, 3].astype(np.float32),
    )
