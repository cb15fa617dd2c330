"""One exported nuScenes keyframe: a LIDAR_TOP ``.pcd.bin`` with a ``frame.json`` of calibration and boxes.

The folder layout (``frame.json`` keys ``lidar_file``, ``lidar2ego``, ``ego2global`` and ``instances`` with
``category``, ``bbox_3d`` in the LiDAR frame, ``num_lidar_pts``) lets tests and examples run bevjepa's
single-sweep path on real sensor data without a full dataroot.
"""

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from datamodules.lidar_files import SensorFileError, load_lidar_points


@dataclass
class RealFrame:
    """A real keyframe in its LiDAR frame.

    Attributes:
        points: (N, 5) float32 ``[x, y, z, intensity, ring]``.
        boxes: (M, 7) float64 ``[cx, cy, cz, dx, dy, dz, yaw]``.
        categories: M category names (nuScenes detection classes or ``ignored``).
        num_lidar_pts: (M,) nuScenes' own count of LiDAR points in each box.
        lidar_to_ego: (4, 4) transform; ego_to_global: (4, 4) transform.
        sample_token: the nuScenes sample this frame came from.
    """

    points: np.ndarray
    boxes: np.ndarray
    categories: list[str]
    num_lidar_pts: np.ndarray
    lidar_to_ego: np.ndarray
    ego_to_global: np.ndarray
    sample_token: str


def load_real_frame(folder: str | Path) -> RealFrame:
    """Read a real-frame folder (``frame.json`` + its LiDAR file).

    Raises:
        SensorFileError: ``frame.json`` or the LiDAR file is missing or malformed.
    """
    folder = Path(folder)
    meta_path = folder / "frame.json"
    if not meta_path.is_file():
        raise SensorFileError(f"No frame.json in {folder}: not a real-frame folder")
    try:
        meta = json.loads(meta_path.read_text())
        instances = meta["instances"]
        boxes = np.array([inst["bbox_3d"] for inst in instances], dtype=np.float64).reshape(-1, 7)
        frame = RealFrame(
            points=np.empty((0, 5), np.float32),
            boxes=boxes,
            categories=[inst["category"] for inst in instances],
            num_lidar_pts=np.array([inst["num_lidar_pts"] for inst in instances], dtype=np.int64),
            lidar_to_ego=np.array(meta["lidar2ego"], dtype=np.float64).reshape(4, 4),
            ego_to_global=np.array(meta["ego2global"], dtype=np.float64).reshape(4, 4),
            sample_token=meta.get("sample_token", ""),
        )
        lidar_file = meta["lidar_file"]
    except (KeyError, TypeError, ValueError) as error:
        raise SensorFileError(f"{meta_path} is malformed: {error!r}") from error
    frame.points = load_lidar_points(folder / lidar_file, context=f"sample {frame.sample_token}")
    return frame
