"""Live sensor frames: the simulator's latest sweeps turned into the voxels the nuScenes DataModule makes.

Closed-loop planning must see exactly what the models saw in training. So the sweeps are not re-fused by
other code: each capture is written once, in the nuScenes file format of its sensor, to a private folder
(files of sweeps that fall out of the window are deleted), its pose is computed as the dataset index computes
it from the ``ego_pose`` and ``calibrated_sensor`` records, and the DataModule's own fusion
(``fuse_lidar_sweeps``, ``fuse_radar_sweeps``) and ``SensorFusionVoxelizer`` build the voxels.

The one difference from a recorded log is the choice of radar sweeps: a log's radar key frame is the capture
nearest in time to the LiDAR keyframe (possibly a little later); live, it is the latest capture so far.
"""

import shutil
import tempfile
from collections import deque
from pathlib import Path

import numpy as np
import torch

from bevjepa.batch import VoxelBatch
from bevjepa.grid import BevGrid
from bevjepa.sim.calibration import LIDAR_TOP, RADARS, SensorMount
from bevjepa.sim.nuscenes_writer import yaw_quaternion
from bevjepa.sim.pcd_files import write_lidar_bin, write_radar_pcd
from bevjepa.sim.types import SensorCapture
from datamodules.lidar_fusion import fuse_lidar_sweeps
from datamodules.radar_fusion import fuse_radar_sweeps
from datamodules.sample_records import KeyframeRecord, SweepRecord
from datamodules.sweep_transforms import rigid_transforms
from datamodules.voxel_fusion import SensorFusionVoxelizer

_MOUNTS = {mount.channel: mount for mount in (LIDAR_TOP, *RADARS)}


def capture_sensor_to_global(capture: SensorCapture, mount: SensorMount) -> np.ndarray:
    """(4, 4) sensor -> global pose of a capture, as the dataset index computes it from the records the
    writer would store (a yaw quaternion and a ground-level translation for the ego, the mount's calibration).
    """
    ego = capture.ego
    ego_to_global = rigid_transforms(
        np.array([yaw_quaternion(ego.yaw)]),
        np.array([[float(ego.position[0]), float(ego.position[1]), 0.0]]),
    )
    sensor_to_ego = rigid_transforms(
        np.array([[float(v) for v in mount.rotation]]), np.array([[float(v) for v in mount.translation]])
    )
    return (ego_to_global @ sensor_to_ego)[0]


class LiveSensorFrames:
    """Keeps the latest sweeps of each sensor and voxelizes them at the latest LiDAR sweep.

    Args:
        grid: the voxel grid of the model.
        lidar_sweeps: LIDAR_TOP sweeps fused per frame (the latest included), as the DataModule's option.
        radar: whether radar channels are fused.
        radar_sweeps: sweeps per RADAR_* channel.
        max_voxels: voxels per sensor at most.
        location: the town's location (only recorded in the keyframe record).
    """

    def __init__(
        self,
        grid: BevGrid,
        lidar_sweeps: int = 10,
        radar: bool = True,
        radar_sweeps: int = 6,
        max_voxels: int = 150000,
        location: str = "",
    ) -> None:
        self.grid = grid
        self.radar = radar
        self.location = location
        self.voxelizer = SensorFusionVoxelizer(grid, radar, max_voxels=max_voxels)
        self._folder = Path(tempfile.mkdtemp(prefix="bevjepa-live-"))
        self._sweeps: dict[str, deque[SweepRecord]] = {LIDAR_TOP.channel: deque(maxlen=lidar_sweeps)}
        for mount in RADARS:
            self._sweeps[mount.channel] = deque(maxlen=radar_sweeps)
        self._lidar_ego: deque = deque(maxlen=lidar_sweeps)
        self._count = 0

    @property
    def channels(self) -> tuple[str, ...]:
        """Names of the voxel feature channels."""
        return self.voxelizer.channels

    def add(self, capture: SensorCapture) -> None:
        """Keep one sweep (LiDAR or radar); the oldest sweep of its channel beyond the window is dropped."""
        mount = _MOUNTS[capture.channel]
        if mount.modality == "radar" and not self.radar:
            return
        suffix = ".pcd.bin" if mount.modality == "lidar" else ".pcd"
        path = self._folder / f"{self._count:08d}_{capture.channel}_{capture.timestamp_us}{suffix}"
        self._count += 1
        if mount.modality == "lidar":
            write_lidar_bin(path, capture.data)
        else:
            write_radar_pcd(path, capture.data)
        window = self._sweeps[capture.channel]
        if len(window) == window.maxlen:
            Path(window[-1].path).unlink(missing_ok=True)
        record = SweepRecord(
            str(path), path.name, capture.timestamp_us, capture_sensor_to_global(capture, mount)
        )
        window.appendleft(record)  # newest first, as a record's ``prev`` chain
        if mount.modality == "lidar":
            self._lidar_ego.appendleft(capture.ego)

    def keyframe_record(self) -> KeyframeRecord:
        """The latest LiDAR sweep as a keyframe record with the kept sweeps (newest first).

        Raises:
            RuntimeError: no LiDAR sweep has been added.
        """
        lidar = self._sweeps[LIDAR_TOP.channel]
        if not lidar:
            raise RuntimeError("no LiDAR sweep yet: add a LIDAR_TOP capture first")
        latest = lidar[0]
        lidar_to_ego = rigid_transforms(
            np.array([[float(v) for v in LIDAR_TOP.rotation]]),
            np.array([[float(v) for v in LIDAR_TOP.translation]]),
        )[0]
        return KeyframeRecord(
            sample_token=f"live-{latest.timestamp_us}",
            scene_name="live",
            location=self.location,
            timestamp_us=latest.timestamp_us,
            lidar_to_global=latest.sensor_to_global,
            lidar_to_ego=lidar_to_ego,
            lidar_sweeps=tuple(lidar),
            radar_sweeps={mount.channel: tuple(self._sweeps[mount.channel]) for mount in RADARS},
        )

    def voxels(self) -> VoxelBatch:
        """The fused voxels of the latest frame as a batch of one (coords ``[0, z, y, x]``)."""
        record = self.keyframe_record()
        lidar = fuse_lidar_sweeps(record)
        radar = fuse_radar_sweeps(record) if self.radar else None
        features, coords = self.voxelizer(lidar, radar)  # (V, C), (V, 3) [z, y, x]
        batch_column = torch.zeros(len(coords), 1, dtype=torch.int32)
        return VoxelBatch(features, torch.cat([batch_column, coords.int()], dim=1), batch_size=1)

    def close(self) -> None:
        """Delete the sweep files."""
        shutil.rmtree(self._folder, ignore_errors=True)

    def __enter__(self) -> "LiveSensorFrames":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
