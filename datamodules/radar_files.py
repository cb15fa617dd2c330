"""Reading nuScenes radar files (binary PCD v0.7, one row of 18 packed fields per radar cluster).

The devkit's ``RadarPointCloud.from_file`` unpacks every field of every point with ``struct``; this reader
maps the data block onto a numpy record type built from the header in one call, and applies the devkit's
default filters as vectorised masks.
"""

import functools
import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from datamodules.lidar_files import SensorFileError

# The devkit's default filters (RadarPointCloud.default_filters) as inclusive ranges of the states a
# cluster must have to be kept: invalid_state in [0], dyn_prop in range(7), ambig_state in [3].
VALID_INVALID_STATES = (0, 0)
VALID_DYNPROP_STATES = (0, 6)
VALID_AMBIG_STATES = (3, 3)
# Fields the fusion reads; a file without them is not a nuScenes radar file.
REQUIRED_FIELDS = ("x", "y", "z", "dyn_prop", "rcs", "vx_comp", "vy_comp", "ambig_state", "invalid_state")
_PCD_TYPES = {"F": "f", "I": "i", "U": "u"}
_DATA_MARKER = b"\nDATA "


@functools.lru_cache(maxsize=1024)
def _parse_header(header: bytes) -> tuple[np.dtype, int]:
    """(packed little-endian record type, number of points) of a binary PCD header.

    Cached: the headers of one dataset differ only in their point counts.

    Raises:
        ValueError: not a binary PCD header with the fields of nuScenes radar files.
    """
    entries = {}
    for line in header.decode("ascii").splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.partition(" ")
            entries[key] = value.split()
    for key in ("FIELDS", "SIZE", "TYPE", "WIDTH", "HEIGHT", "DATA"):
        if key not in entries:
            raise ValueError(f"no {key} line")
    if entries["DATA"] != ["binary"]:
        raise ValueError(f"DATA is {' '.join(entries['DATA'])!r}, only 'binary' is supported")
    if set(entries.get("COUNT", ["1"])) != {"1"}:
        raise ValueError("fields with COUNT other than 1 are not supported")
    names, sizes, letters = entries["FIELDS"], entries["SIZE"], entries["TYPE"]
    if not len(names) == len(sizes) == len(letters):
        raise ValueError(
            f"FIELDS, SIZE and TYPE differ in length ({len(names)}, {len(sizes)}, {len(letters)})"
        )
    missing = [name for name in REQUIRED_FIELDS if name not in names]
    if missing:
        raise ValueError(f"fields {missing} are missing")
    num_points = int(entries["WIDTH"][0]) * int(entries["HEIGHT"][0])
    if "POINTS" in entries and int(entries["POINTS"][0]) != num_points:
        raise ValueError(f"POINTS {entries['POINTS'][0]} differs from WIDTH x HEIGHT = {num_points}")
    fields = [
        (name, f"<{_PCD_TYPES[letter]}{size}")
        for name, size, letter in zip(names, sizes, letters, strict=True)
    ]
    return np.dtype(fields), num_points


def load_radar_records(path: str | Path, context: str = "") -> np.ndarray:
    """Load every cluster of a nuScenes radar ``.pcd`` file, unfiltered.

    An empty sweep is stored by nuScenes as one point with NaN values (the devkit's convention); it gives
    zero records.

    Args:
        path: the file.
        context: appended to error messages (e.g. the sample token), so a failure names what broke.

    Returns:
        (N,) structured array with the file's fields (``x``, ``y``, ``z``, ``rcs``, ``vx_comp``, ...),
        in the sensor frame.

    Raises:
        SensorFileError: the file is missing, its header is not a binary PCD header with the nuScenes
            radar fields, or its data block is shorter than the header announces.
    """
    where = f" ({context})" if context else ""
    try:
        descriptor = os.open(path, os.O_RDONLY)
        try:
            data = os.read(descriptor, os.fstat(descriptor).st_size)
        finally:
            os.close(descriptor)
    except OSError as error:
        raise SensorFileError(f"radar file not found or unreadable: {path}{where}: {error}") from error
    marker = data.find(_DATA_MARKER)
    header_end = data.find(b"\n", marker + 1) + 1 if marker >= 0 else 0
    if header_end <= 0:
        raise SensorFileError(f"radar file {path}{where} has no PCD header ending in a DATA line")
    try:
        record_type, num_points = _parse_header(data[:header_end])
    except (ValueError, KeyError, UnicodeDecodeError) as error:
        raise SensorFileError(f"radar file {path}{where} has a malformed PCD header: {error}") from error
    available = len(data) - header_end
    if available < num_points * record_type.itemsize:
        raise SensorFileError(
            f"radar file {path}{where} is truncated: {num_points} points of {record_type.itemsize} bytes need "
            f"{num_points * record_type.itemsize} bytes of data, the file has {available}"
        )
    records = np.frombuffer(data, dtype=record_type, count=num_points, offset=header_end)
    first_point_is_nan = num_points and any(value != value for value in records[0].item())
    return records[:0] if first_point_is_nan else records


def default_filter_mask(records: np.ndarray | Mapping[str, np.ndarray]) -> np.ndarray:
    """Which clusters the devkit's default radar filters keep (invalid, dynamic-property and ambiguity states).

    Args:
        records: (N,) from ``load_radar_records``, or a mapping of the same field names to (N,) arrays.

    Returns:
        (N,) bool.
    """
    keep = None
    for field, (lowest, highest) in (
        ("invalid_state", VALID_INVALID_STATES),
        ("dyn_prop", VALID_DYNPROP_STATES),
        ("ambig_state", VALID_AMBIG_STATES),
    ):
        in_range = (records[field] >= lowest) & (records[field] <= highest)
        keep = in_range if keep is None else keep & in_range
    return keep
