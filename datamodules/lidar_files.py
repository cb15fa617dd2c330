"""Reading nuScenes LiDAR files (``.pcd.bin``: float32 rows of x, y, z, intensity, ring index)."""

from pathlib import Path

import numpy as np

LIDAR_COLUMNS = 5  # x, y, z, intensity, ring index


class SensorFileError(RuntimeError):
    """A sensor file is missing, truncated or holds values that are not points."""


def load_lidar_points(path: str | Path, context: str = "") -> np.ndarray:
    """Load one nuScenes LiDAR sweep, refusing files that cannot be a sweep.

    Args:
        path: the ``.pcd.bin`` file.
        context: appended to error messages (e.g. the sample token), so a failure names what broke.

    Returns:
        (N, 5) float32 points ``[x, y, z, intensity, ring]`` in the sensor frame.

    Raises:
        SensorFileError: the file is missing, its size is not a whole number of 5 x float32 rows, or it
            holds NaN or infinite coordinates.
    """
    path = Path(path)
    where = f" ({context})" if context else ""
    if not path.is_file():
        raise SensorFileError(f"LiDAR file not found: {path}{where}")
    row_bytes = LIDAR_COLUMNS * 4
    size = path.stat().st_size
    if size % row_bytes:
        raise SensorFileError(
            f"LiDAR file {path}{where} is truncated or not a nuScenes .pcd.bin: {size} bytes "
            f"is not a multiple of {row_bytes} (5 float32 columns: x, y, z, intensity, ring)"
        )
    points = np.fromfile(path, dtype=np.float32).reshape(-1, LIDAR_COLUMNS)
    bad_rows = ~np.isfinite(points[:, :3]).all(axis=1)
    if bad_rows.any():
        raise SensorFileError(
            f"LiDAR file {path}{where} has {int(bad_rows.sum())} points with NaN or infinite coordinates"
        )
    return points
