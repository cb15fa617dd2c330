"""Self-supervised reconstruction targets: which parts of each BEV token hold any input voxel.

A token's target is a binary vector over its ``patch x patch`` BEV cells, each cut into
``subdivision x subdivision`` sub-cells, times ``height_bins`` equal slices of the grid's z range. It is
computed from the input voxels alone (no annotation), like a low-resolution occupancy grid of the sweep.
"""

import torch
import torch.nn.functional as F

from bevjepa.batch import VoxelBatch
from bevjepa.encoders.tokens import token_grid_shape
from bevjepa.grid import BevGrid


def occupancy_target_size(patch: int, subdivision: int, height_bins: int) -> int:
    """Length of one token's target vector."""
    return (patch * subdivision) ** 2 * height_bins


def voxel_occupancy_tokens(
    voxels: VoxelBatch, grid: BevGrid, patch: int, subdivision: int, height_bins: int
) -> torch.Tensor:
    """Per token, whether each (sub-cell, height bin) holds a voxel.

    Args:
        voxels: coords (V, 4) ``[b, z, y, x]`` on ``grid``.
        grid: the voxel grid.
        patch: BEV cells per token side.
        subdivision: sub-cells per BEV cell side (must divide the encoder stride).
        height_bins: equal slices of the grid's z range (must divide its voxel layers).

    Returns:
        (B, N, T) float32 in {0, 1}, ``T = occupancy_target_size(patch, subdivision, height_bins)``; the
        entries of a token are ordered ``(height bin, sub-row, sub-column)`` within the token.
    """
    layers, rows, cols = grid.voxel_grid_shape
    stride = grid.encoder_stride
    if stride % subdivision or layers % height_bins:
        raise ValueError(
            f"subdivision {subdivision} must divide the encoder stride {stride} and height_bins {height_bins} "
            f"the {layers} voxel layers"
        )
    token_grid_shape(grid, patch)  # validates the patch
    sub_cell = stride // subdivision  # voxels per sub-cell side
    coords = voxels.coords.long()
    occupancy = torch.zeros(
        voxels.batch_size,
        height_bins,
        rows // sub_cell,
        cols // sub_cell,
        device=coords.device,
    )  # (B, Z, H * s, W * s)
    occupancy[
        coords[:, 0], coords[:, 1] * height_bins // layers, coords[:, 2] // sub_cell, coords[:, 3] // sub_cell
    ] = 1.0
    tokens = F.pixel_unshuffle(occupancy, patch * subdivision)  # (B, Z * (p * s)^2, Ht, Wt)
    return tokens.flatten(2).transpose(1, 2)  # (B, N, T)
