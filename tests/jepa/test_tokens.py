"""BEV <-> token helpers: layout, pooling, gathering, masks and voxel-to-token indices."""

import pytest
import torch
from jepa_scenes import SCENE_GRID

from bevjepa.encoders.tokens import (
    bev_to_tokens,
    gather_tokens,
    indices_to_mask,
    pool_cells_to_tokens,
    token_grid_shape,
    tokens_to_bev,
    voxel_token_indices,
)


def test_tokens_are_row_major_and_round_trip():
    bev = torch.arange(2 * 3 * 8 * 8, dtype=torch.float32).view(2, 3, 8, 8)
    tokens = bev_to_tokens(bev)
    assert tokens.shape == (2, 64, 3)
    assert torch.equal(tokens[1, 8 * 2 + 5], bev[1, :, 2, 5])
    assert torch.equal(tokens_to_bev(tokens, (8, 8)), bev)


def test_patch_tokens_average_their_cells():
    bev = torch.zeros(1, 1, 8, 8)
    bev[0, 0, 2:4, 6:8] = 4.0
    tokens = bev_to_tokens(bev, patch=2)  # (1, 16, 1)
    assert tokens[0, 1 * 4 + 3, 0] == 4.0 and tokens.sum() == 4.0
    assert token_grid_shape(SCENE_GRID, 2) == (4, 4)
    with pytest.raises(ValueError, match="cannot be cut"):
        token_grid_shape(SCENE_GRID, 3)
    cells = torch.zeros(1, 8, 8, dtype=torch.bool)
    cells[0, 0, 0] = True
    assert pool_cells_to_tokens(cells, 2)[0, 0] == 0.25


def test_gather_and_mask_with_repeated_indices():
    tokens = torch.randn(2, 10, 4)
    indices = torch.tensor([[3, 3, 7], [0, 9, 9]])
    gathered = gather_tokens(tokens, indices)
    assert torch.equal(gathered[0, 2], tokens[0, 7]) and torch.equal(gathered[1, 0], tokens[1, 0])
    keep = torch.tensor([[False, True, True], [True, False, False]])
    mask = indices_to_mask(indices, 10, keep)
    assert mask.sum() == 3 and mask[0, 3] and mask[0, 7] and mask[1, 0] and not mask[1, 9]


def test_voxel_token_indices_follow_the_grid():
    # Voxel columns are 0.4 m and a BEV cell spans 8 of them: voxel (y=17, x=63) lies in cell (2, 7).
    coords = torch.tensor([[0, 5, 17, 63], [1, 0, 0, 0], [0, 3, 63, 8]], dtype=torch.int32)
    assert voxel_token_indices(coords, SCENE_GRID, 1).tolist() == [2 * 8 + 7, 0, 7 * 8 + 1]
    assert voxel_token_indices(coords, SCENE_GRID, 2).tolist() == [1 * 4 + 3, 0, 3 * 4 + 0]
