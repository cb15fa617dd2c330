"""Everything one keyframe contributes to training and evaluation, computed from its raw sensor files.

A keyframe's *payload* has two parts, both plain tensors (what the cache stores):
- its own view, in its own LIDAR_TOP frame: fused LiDAR (+ radar) voxels and their visibility; the sample
  of a later keyframe reads these as its future frames;
- what the sample at this keyframe needs beyond that, in this keyframe's frame: the target view's
  visibility, the future steps' poses and actions, and (optionally) the probe labels.
"""

import dataclasses

import numpy as np
import torch
from nuscenes.map_expansion.map_api import NuScenesMap

from datamodules.ego_motion import dataroot_can_bus, future_motion
from datamodules.labels.annotation_boxes import future_agent_boxes, sample_boxes_lidar
from datamodules.labels.ego_status import ego_status
from datamodules.labels.map_rasters import MAP_LAYERS, map_rasters
from datamodules.labels.occupancy_labels import IGNORE, occupancy_label
from datamodules.labels.trajectories import ego_future_trajectory, future_ego_to_global
from datamodules.lidar_files import SensorFileError
from datamodules.lidar_fusion import fuse_lidar_sweeps
from datamodules.nuscenes_index import NuScenesIndex
from datamodules.radar_fusion import fuse_radar_sweeps
from datamodules.sample_options import SampleOptions
from datamodules.sample_records import FusedPoints, KeyframeRecord
from datamodules.visibility import bev_visibility, keyframe_sweep, target_view_visibility
from datamodules.voxel_fusion import SensorFusionVoxelizer


def transform_fused(fused: FusedPoints, transform: np.ndarray) -> FusedPoints:
    """Fused LiDAR points and sensor origins moved by a (4, 4) rigid transform (other columns unchanged)."""
    points = np.array(fused.points, dtype=np.float32)
    rotation, translation = transform[:3, :3], transform[:3, 3]
    points[:, :3] = points[:, :3].astype(np.float64) @ rotation.T + translation
    origins = np.asarray(fused.sensor_origins, dtype=np.float64) @ rotation.T + translation
    return FusedPoints(points, fused.sweep_index, origins.astype(np.float32))


def _keyframe_sweep_only(record: KeyframeRecord) -> KeyframeRecord:
    return dataclasses.replace(record, lidar_sweeps=record.lidar_sweeps[:1], radar_sweeps={})


class SampleBuilder:
    """Builds keyframe payloads from a ``NuScenesIndex``.

    Args:
        index: the dataset index (records carry ``options.lidar_sweeps`` / ``radar_sweeps`` sweeps).
        options: what to build.
    """

    def __init__(self, index: NuScenesIndex, options: SampleOptions) -> None:
        self.index = index
        self.options = options
        if max(options.grid.voxel_grid_shape) > torch.iinfo(torch.int16).max:
            raise ValueError(
                f"grid {options.grid.voxel_grid_shape} has more voxels a side than int16 coords hold"
            )
        self.voxelizer = SensorFusionVoxelizer(options.grid, options.radar, max_voxels=options.max_voxels)
        self._maps: dict[str, NuScenesMap] = {}

    @property
    def channels(self) -> tuple[str, ...]:
        """Names of the voxel feature channels."""
        return self.voxelizer.channels

    def _own_view(self, record: KeyframeRecord) -> tuple[dict, FusedPoints]:
        lidar = fuse_lidar_sweeps(record)
        radar = fuse_radar_sweeps(record) if self.options.radar else None
        features, coords = self.voxelizer(lidar, radar)
        view = {
            "features": features,  # (V, C) float32
            "coords": coords.to(torch.int16),  # (V, 3) int16 [z, y, x]: half the bytes to cache and copy
            "visibility": torch.from_numpy(bev_visibility(lidar, self.options.grid)),  # (H, W) uint8
        }
        return view, lidar

    def keyframe_view(self, record: KeyframeRecord) -> dict:
        """Only the keyframe's own view (voxels and visibility): what a sample reads of its future keyframes.

        Raises:
            SensorFileError: a sensor file is missing or corrupt.
        """
        return self._own_view(record)[0]

    def build(self, record: KeyframeRecord) -> dict:
        """The payload of one keyframe (see the module docstring).

        Raises:
            SensorFileError: a sensor or map file is missing or corrupt (the message names it and the sample).
        """
        payload, lidar = self._own_view(record)
        future_records = self.index.records_of(record.future_sample_tokens[: self.options.future_steps])
        payload.update(self._futures(record, future_records))
        # Neighbouring keyframe sweeps aligned into this frame, by sample token: the target view and the
        # future occupancy labels both need them, and each is fused once.
        aligned: dict[str, FusedPoints] = {}
        target_view = self._target_view(record, lidar, future_records, aligned)
        payload["target_visibility"] = torch.from_numpy(target_view)
        if self.options.labels:
            payload.update(self._labels(record, lidar, future_records, aligned))
        return payload

    def _futures(self, record: KeyframeRecord, future_records: list[KeyframeRecord]) -> dict:
        steps = self.options.future_steps
        motion = future_motion(self.index.nusc, record, future_records, num_steps=steps)
        return {
            "future_tokens": [r.sample_token for r in future_records] + [""] * (steps - len(future_records)),
            "future_poses": torch.from_numpy(motion.poses.astype(np.float32)),  # (K, 4, 4), zeros if invalid
            "actions": torch.from_numpy(motion.actions.astype(np.float32)),  # (K, 4)
            "future_valid": torch.from_numpy(motion.valid),  # (K,)
        }

    def _neighbour_records(self, record: KeyframeRecord, future_records: list[KeyframeRecord]) -> list:
        window = self.options.occlusion_window
        past_tokens, token = [], self.index.nusc.get("sample", record.sample_token)["prev"]
        while token and len(past_tokens) < window:
            past_tokens.append(token)
            token = self.index.nusc.get("sample", token)["prev"]
        past = self.index.records_of(past_tokens)
        later = list(future_records[:window])
        missing = record.future_sample_tokens[len(later) : window]
        return past + later + self.index.records_of(missing)

    def _aligned_keyframe_sweep(
        self, current: KeyframeRecord, other: KeyframeRecord, aligned: dict[str, FusedPoints]
    ) -> FusedPoints:
        """``other``'s keyframe sweep in ``current``'s frame, fused on first use and kept in ``aligned``."""
        if other.sample_token not in aligned:
            fused = fuse_lidar_sweeps(_keyframe_sweep_only(other))
            transform = np.linalg.inv(current.lidar_to_global) @ other.lidar_to_global
            aligned[other.sample_token] = transform_fused(fused, transform)
        return aligned[other.sample_token]

    def _target_view(
        self,
        record: KeyframeRecord,
        lidar: FusedPoints,
        future_records: list,
        aligned: dict[str, FusedPoints],
    ) -> np.ndarray:
        neighbours = self._neighbour_records(record, future_records)
        views = [lidar] + [self._aligned_keyframe_sweep(record, other, aligned) for other in neighbours]
        return target_view_visibility(views, self.options.grid)

    def _map(self, record: KeyframeRecord) -> NuScenesMap:
        if record.location not in self._maps:
            path = self.index.dataroot / "maps" / "expansion" / f"{record.location}.json"
            if not path.is_file():
                raise SensorFileError(
                    f"map expansion file not found: {path} (sample {record.sample_token}); map labels need "
                    "the nuScenes map expansion, or turn labels off"
                )
            self._maps[record.location] = NuScenesMap(str(self.index.dataroot), record.location)
        return self._maps[record.location]

    def _labels(
        self,
        record: KeyframeRecord,
        lidar: FusedPoints,
        future_records: list,
        aligned: dict[str, FusedPoints],
    ) -> dict:
        grid, nusc, steps = self.options.grid, self.index.nusc, self.options.future_steps
        height, width = grid.bev_shape
        occupancy = np.full((1 + steps, height, width), IGNORE, dtype=np.uint8)  # (1 + K, H, W)
        now = sample_boxes_lidar(nusc, record.sample_token, record.lidar_to_global)
        now_visibility = bev_visibility(keyframe_sweep(lidar), grid)
        occupancy[0] = occupancy_label(now.boxes, now.categories, now_visibility, grid)
        future_tokens = [r.sample_token for r in future_records]
        future_boxes = future_agent_boxes(nusc, future_tokens, record.lidar_to_global)
        for step, (other, boxes) in enumerate(zip(future_records, future_boxes, strict=True)):
            visibility = bev_visibility(self._aligned_keyframe_sweep(record, other, aligned), grid)
            occupancy[1 + step] = occupancy_label(boxes.boxes, boxes.categories, visibility, grid)
        trajectory = np.zeros((steps, 2), dtype=np.float32)
        if future_tokens:
            future_ego = future_ego_to_global(nusc, future_tokens)
            trajectory[: len(future_tokens)] = ego_future_trajectory(record.lidar_to_global, future_ego)
        boxes_per_step = [torch.from_numpy(b.boxes.astype(np.float32)) for b in future_boxes]
        boxes_per_step += [torch.zeros(0, 7)] * (steps - len(boxes_per_step))
        rasters = map_rasters(self._map(record), record.lidar_to_global, grid)
        assert rasters.shape[0] == len(MAP_LAYERS)
        return {
            "occupancy": torch.from_numpy(occupancy),
            "map_rasters": torch.from_numpy(rasters),
            "ego_trajectory": torch.from_numpy(trajectory),
            "future_boxes": boxes_per_step,
            "ego_status": torch.from_numpy(
                ego_status(nusc, record, dataroot_can_bus(str(nusc.dataroot)))
            ),  # (4,)
        }
