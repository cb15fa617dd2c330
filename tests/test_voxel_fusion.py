"""LiDAR and radar voxels merge into one voxel set with per-sensor channel blocks."""

import numpy as np
import pytest
import torch

from bevjepa.grid import BevGrid
from datamodules.sample_records import FusedPoints
from datamodules.voxel_fusion import LIDAR_CHANNELS, RADAR_CHANNELS, SensorFusionVoxelizer

GRID = BevGrid(point_cloud_range=(-8, -8, -2, 8, 8, 2), voxel_size=(1.0, 1.0, 0.5))


def _fused(points: list[list[float]]) -> FusedPoints:
    array = np.asarray(points, dtype=np.float32)
    return FusedPoints(array, np.zeros(len(array), np.int16), np.zeros((1, 3), np.float32))


def test_shared_and_separate_voxels():
    lidar = _fused([[0.2, 0.2, 0.1, 255.0, 0.0], [0.4, 0.6, 0.3, 0.0, 0.1], [3.5, 3.5, 0.1, 51.0, 0.0]])
    radar = _fused([[0.5, 0.5, 0.2, 20.0, 1.0, -2.0, 0.05], [-4.5, 2.5, 0.2, -10.0, 0.0, 0.0, 0.0]])
    fusion = SensorFusionVoxelizer(GRID, radar=True)
    features, coords = fusion(lidar, radar)
    assert fusion.channels == LIDAR_CHANNELS + RADAR_CHANNELS
    assert features.shape == (3, 10)
    by_coord = {tuple(c): f for c, f in zip(coords.tolist(), features, strict=True)}
    shared = by_coord[(4, 8, 8)]  # z = 0.1..0.3 -> layer 4; x, y in [0, 1) -> index 8
    torch.testing.assert_close(shared[:5], torch.tensor([0.3, 0.4, 0.2, 0.5, 0.05]))
    assert shared[5] == pytest.approx(np.log1p(2) / np.log1p(10))
    torch.testing.assert_close(shared[6:9], torch.tensor([2.0, 1.0, -2.0]))
    lidar_only = by_coord[(4, 11, 11)]
    assert lidar_only[3] == pytest.approx(0.2) and torch.all(lidar_only[6:] == 0)
    radar_only = by_coord[(4, 10, 3)]
    assert torch.all(radar_only[:6] == 0) and radar_only[6] == pytest.approx(-1.0)


def test_lidar_only_has_six_channels_sorted():
    lidar = _fused([[3.5, 3.5, 0.1, 0.0, 0.0], [-7.5, -7.5, -1.9, 0.0, 0.0]])
    features, coords = SensorFusionVoxelizer(GRID, radar=False)(lidar)
    assert features.shape == (2, 6)
    assert coords.tolist() == [[0, 0, 0], [4, 11, 11]]


def test_radar_required_when_on():
    with pytest.raises(ValueError, match="no radar points"):
        SensorFusionVoxelizer(GRID, radar=True)(_fused([[0.0, 0.0, 0.0, 0.0, 0.0]]))
