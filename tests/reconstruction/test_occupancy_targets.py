"""Occupancy targets of masked tokens: hand-placed voxels land on the expected entries."""

import pytest
import torch
from jepa_scenes import SCENE_GRID

from bevjepa.batch import VoxelBatch
from bevjepa.reconstruction.occupancy_targets import occupancy_target_size, voxel_occupancy_tokens


def _voxels(coords: list[list[int]], batch_size: int) -> VoxelBatch:
    coords = torch.tensor(coords, dtype=torch.int32)
    return VoxelBatch(torch.ones(len(coords), 4), coords, batch_size)


def test_hand_placed_voxels():
    # SCENE_GRID: 24 x 64 x 64 voxels, stride 8 -> 8 x 8 cells; patch 2 -> 4 x 4 tokens of 16 x 16 voxels.
    # Sub-cells of 4 voxels (subdivision 2): a token holds 4 x 4 sub-cells; 4 height bins of 6 layers.
    voxels = _voxels(
        [
            [
                0,
                5,
                9,
                20,
            ],  # bin 0, sub-cell (2, 5) -> token (0, 1), within it (2, 1): entry 0 * 16 + 2 * 4 + 1
            [0, 4, 10, 21],  # the same sub-cell and bin
            [1, 23, 63, 0],  # bin 3, sub-cell (15, 0) -> token (3, 0) = 12, within it (3, 0): entry 48 + 12
        ],
        batch_size=2,
    )
    targets = voxel_occupancy_tokens(voxels, SCENE_GRID, patch=2, subdivision=2, height_bins=4)
    assert targets.shape == (2, 16, occupancy_target_size(2, 2, 4)) == (2, 16, 64)
    expected = torch.zeros(2, 16, 64)
    expected[0, 1, 9] = 1.0
    expected[1, 12, 60] = 1.0
    assert torch.equal(targets, expected)


def test_one_entry_per_cell_and_bin_at_full_cells():
    coords = [
        [0, z, y, x] for z in (0, 12) for y in range(8) for x in range(8)
    ]  # the first BEV cell, 2 layers
    targets = voxel_occupancy_tokens(_voxels(coords, 1), SCENE_GRID, patch=1, subdivision=1, height_bins=2)
    assert targets.shape == (1, 64, 2)
    assert targets[0, 0].tolist() == [1.0, 1.0] and targets[0, 1:].sum() == 0


def test_subdivision_must_divide_the_stride():
    with pytest.raises(ValueError, match="subdivision 3"):
        voxel_occupancy_tokens(_voxels([[0, 0, 0, 0]], 1), SCENE_GRID, patch=1, subdivision=3, height_bins=4)
