"""Point-cloud files in the nuScenes on-disk formats.

LiDAR sweeps are ``.pcd.bin``: raw little-endian float32 ``(N, 5)`` rows ``[x, y, z, intensity, ring]``.
Radar sweeps are binary PCD v0.7 files with the 18 fields, sizes and types of nuScenes radar files, the
format ``nuscenes.utils.data_classes.RadarPointCloud.from_file`` parses.
"""

from pathlib import Path

import numpy as np

RADAR_FIELDS = (
    "x y z dyn_prop id rcs vx vy vx_comp vy_comp is_quality_valid ambig_state "
    "x_rms y_rms invalid_state pdh0 vx_rms vy_rms"
).split()
# Per-field numpy type, matching SIZE/TYPE of nuScenes radar headers (F4 floats, I1/I2 signed integers).
_RADAR_FIELD_TYPES = ("<f4", "<f4", "<f4", "i1", "<i2") + ("<f4",) * 5 + ("i1",) * 8
RADAR_DTYPE = np.dtype(list(zip(RADAR_FIELDS, _RADAR_FIELD_TYPES, strict=True)))  # packed: 43 bytes a point

_PCD_TYPE_LETTER = {"f": "F", "i": "I", "u": "U"}
_INTEGER_COLUMNS = [column for column, name in enumerate(RADAR_FIELDS) if RADAR_DTYPE[name].kind == "i"]
_INTEGER_FIELDS = [RADAR_FIELDS[column] for column in _INTEGER_COLUMNS]
_INTEGER_MIN = np.array([np.iinfo(RADAR_DTYPE[name]).min for name in _INTEGER_FIELDS])
_INTEGER_MAX = np.array([np.iinfo(RADAR_DTYPE[name]).max for name in _INTEGER_FIELDS])


def write_lidar_bin(path: Path, points: np.ndarray) -> None:
    """Write a LiDAR sweep as a nuScenes ``.pcd.bin`` file.

    Args:
        path: destination, ending in ``.pcd.bin``.
        points: (N, 5) ``[x, y, z, intensity, ring]`` in the sensor frame.
    """
    points = np.asarray(points)
    if points.ndim != 2 or points.shape[1] != 5:
        raise ValueError(f"LiDAR points must be (N, 5), got {points.shape} for {path}")
    path.write_bytes(np.ascontiguousarray(points, dtype="<f4").tobytes())


def read_lidar_bin(path: Path) -> np.ndarray:
    """Read a nuScenes ``.pcd.bin`` LiDAR sweep.

    Args:
        path: the file.

    Returns:
        (N, 5) float32 ``[x, y, z, intensity, ring]``.
    """
    raw = np.fromfile(path, dtype="<f4")
    if raw.size % 5:
        raise ValueError(f"{path}: {raw.size} floats is not a whole number of 5-float points")
    return raw.reshape(-1, 5)


def _radar_header(num_points: int) -> bytes:
    sizes = " ".join(str(RADAR_DTYPE[name].itemsize) for name in RADAR_FIELDS)
    types = " ".join(_PCD_TYPE_LETTER[RADAR_DTYPE[name].kind] for name in RADAR_FIELDS)
    lines = (
        "# .PCD v0.7 - Point Cloud Data file format",
        "VERSION 0.7",
        "FIELDS " + " ".join(RADAR_FIELDS),
        "SIZE " + sizes,
        "TYPE " + types,
        "COUNT " + " ".join("1" for _ in RADAR_FIELDS),
        f"WIDTH {num_points}",
        "HEIGHT 1",
        "VIEWPOINT 0 0 0 1 0 0 0",
        f"POINTS {num_points}",
        "DATA binary",
    )
    return ("\n".join(lines) + "\n").encode("ascii")


def write_radar_pcd(path: Path, points: np.ndarray) -> None:
    """Write a radar sweep as a binary nuScenes radar ``.pcd`` file.

    An empty sweep is written as one all-NaN point, which is how the devkit recognises an empty radar
    file (it refuses WIDTH 0).

    Args:
        path: destination, ending in ``.pcd``.
        points: (N, 18) values in ``RADAR_FIELDS`` order, sensor frame; the integer fields must hold
            integral values within their type's range.
    """
    points = np.asarray(points, dtype=np.float64)
    if points.ndim != 2 or points.shape[1] != len(RADAR_FIELDS):
        raise ValueError(f"radar points must be (N, {len(RADAR_FIELDS)}), got {points.shape} for {path}")
    records = np.zeros(max(len(points), 1), dtype=RADAR_DTYPE)
    if len(points) == 0:
        for name in ("x", "y", "z", "rcs", "vx", "vy", "vx_comp", "vy_comp"):
            records[name] = np.nan
    else:
        integers = points[:, _INTEGER_COLUMNS]  # (N, 10)
        if not np.all(np.isfinite(integers)) or np.any(integers != np.round(integers)):
            raise ValueError(f"radar integer fields {_INTEGER_FIELDS} must hold integers for {path}")
        outside = (integers.min(axis=0) < _INTEGER_MIN) | (integers.max(axis=0) > _INTEGER_MAX)
        if outside.any():
            names = [name for name, bad in zip(_INTEGER_FIELDS, outside, strict=True) if bad]
            raise ValueError(f"radar fields {names} out of their integer type's range for {path}")
        for column, name in enumerate(RADAR_FIELDS):
            records[name] = points[:, column]
    # The devkit's parser asserts that every field ends strictly before the end of the data, so the
    # file carries one byte after the last point.
    path.write_bytes(_radar_header(len(records)) + records.tobytes() + b"\n")


def read_radar_pcd(path: Path) -> np.ndarray:
    """Read a binary nuScenes radar ``.pcd`` file without any filtering.

    Args:
        path: the file.

    Returns:
        (N, 18) float32 in ``RADAR_FIELDS`` order; an empty sweep gives (0, 18).
    """
    data = path.read_bytes()
    header_end = data.index(b"DATA binary\n") + len(b"DATA binary\n")
    header = dict(line.split(" ", 1) for line in data[:header_end].decode("ascii").splitlines()[1:])
    if header["FIELDS"].split() != RADAR_FIELDS:
        raise ValueError(f"{path}: fields {header['FIELDS']} are not the nuScenes radar fields")
    num_points = int(header["POINTS"])
    records = np.frombuffer(data, dtype=RADAR_DTYPE, count=num_points, offset=header_end)
    points = np.stack([records[name].astype(np.float32) for name in RADAR_FIELDS], axis=1)  # (N, 18)
    if num_points and np.isnan(points[0, 0]):
        return points[:0]
    return points
