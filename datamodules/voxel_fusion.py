"""LiDAR and radar on one grid: one sparse tensor per sample whose voxels carry both sensors' channels."""

import numpy as np
import torch

from bevjepa.grid import BevGrid
from bevjepa.sparse import Voxelizer
from datamodules.sample_records import FusedPoints

LIDAR_CHANNELS = ("x", "y", "z", "intensity", "time_lag", "lidar_count")
RADAR_CHANNELS = ("rcs", "vx_comp", "vy_comp", "radar_count")


class SensorFusionVoxelizer:
    """Voxelizes fused LiDAR ``[x, y, z, intensity, time_lag]`` and radar
    ``[x, y, z, rcs, vx_comp, vy_comp, time_lag]`` points on one ``BevGrid`` and merges the voxels.

    A voxel's features are the LiDAR channels (mean position, intensity scaled to [0, 1], time lag, and the
    point count as ``log1p(n) / log1p(cap)``) followed, with radar on, by the radar channels (mean RCS / 10,
    mean compensated velocity, count); a sensor that saw nothing in a voxel leaves its channels at zero.

    Args:
        grid: the voxel grid.
        radar: whether radar channels are part of the features.
        max_points_per_voxel: points averaged per voxel and sensor at most.
        max_voxels: voxels per sensor at most.
    """

    def __init__(self, grid: BevGrid, radar: bool, max_points_per_voxel: int = 10, max_voxels: int = 150000):
        self.grid = grid
        self.radar = radar
        self.max_points_per_voxel = max_points_per_voxel
        self.lidar_voxelizer = Voxelizer(grid, 5, max_points_per_voxel, max_voxels)
        self.radar_voxelizer = Voxelizer(grid, 7, max_points_per_voxel, max_voxels) if radar else None

    @property
    def channels(self) -> tuple[str, ...]:
        """Names of the feature channels, in order."""
        return LIDAR_CHANNELS + (RADAR_CHANNELS if self.radar else ())

    def _count_channel(self, counts: torch.Tensor) -> torch.Tensor:
        return (torch.log1p(counts.float()) / np.log1p(self.max_points_per_voxel)).unsqueeze(1)  # (V, 1)

    def __call__(
        self, lidar: FusedPoints, radar: FusedPoints | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Voxelize one sample.

        Args:
            lidar: fused LiDAR points (N, 5).
            radar: fused radar points (R, 7); required when radar channels are on.

        Returns:
            features: (V, len(channels)) float32.
            coords: (V, 3) int32 ``[z, y, x]``, sorted by linear index.
        """
        features, coords, counts = self.lidar_voxelizer(lidar.points)
        features = features.clone()
        features[:, 3] /= 255.0  # nuScenes intensity is 0..255
        lidar_features = torch.cat([features, self._count_channel(counts)], dim=1)  # (V_l, 6)
        if not self.radar:
            return _sorted_by_position(lidar_features, coords, self.grid)
        if radar is None:
            raise ValueError("radar channels are on but no radar points were given")
        assert self.radar_voxelizer is not None
        radar_raw, radar_coords, radar_counts = self.radar_voxelizer(radar.points)
        radar_features = torch.cat(
            [radar_raw[:, 3:4] / 10.0, radar_raw[:, 4:6], self._count_channel(radar_counts)], dim=1
        )  # (V_r, 4)
        return _merge(lidar_features, coords, radar_features, radar_coords, self.grid)


def _linear_index(coords: torch.Tensor, grid: BevGrid) -> torch.Tensor:
    _, ny, nx = grid.voxel_grid_shape
    coords = coords.long()
    return (coords[:, 0] * ny + coords[:, 1]) * nx + coords[:, 2]


def _sorted_by_position(
    features: torch.Tensor, coords: torch.Tensor, grid: BevGrid
) -> tuple[torch.Tensor, torch.Tensor]:
    order = torch.argsort(_linear_index(coords, grid))
    return features[order], coords[order]


def _merge(
    lidar_features: torch.Tensor,
    lidar_coords: torch.Tensor,
    radar_features: torch.Tensor,
    radar_coords: torch.Tensor,
    grid: BevGrid,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Union of two voxel sets; each keeps its own channel block, zeros where the other sensor is absent."""
    linear = torch.cat([_linear_index(lidar_coords, grid), _linear_index(radar_coords, grid)])
    unique, inverse = torch.unique(linear, return_inverse=True)  # sorted voxel positions
    num_lidar = len(lidar_coords)
    features = torch.zeros(len(unique), lidar_features.shape[1] + radar_features.shape[1])
    features[inverse[:num_lidar], : lidar_features.shape[1]] = lidar_features
    features[inverse[num_lidar:], lidar_features.shape[1] :] = radar_features
    coords = torch.empty(len(unique), 3, dtype=torch.int32)
    coords[inverse[:num_lidar]] = lidar_coords.int()
    coords[inverse[num_lidar:]] = radar_coords.int()
    return features, coords
