"""BEV maps <-> tokens: a token is a square patch of ``patch x patch`` BEV cells, numbered row-major.

Token ``n`` of a ``(Ht, Wt)`` token grid covers BEV rows ``(n // Wt) * patch ...`` and columns
``(n % Wt) * patch ...``; rows run along y and columns along x, as in ``BevGrid.bev_shape``.
"""

import torch
import torch.nn.functional as F

from bevjepa.grid import BevGrid


def token_grid_shape(grid: BevGrid, patch: int) -> tuple[int, int]:
    """``(Ht, Wt)``: tokens along y and x when each token spans ``patch x patch`` BEV cells."""
    height, width = grid.bev_shape
    if patch < 1 or height % patch or width % patch:
        raise ValueError(f"BEV map {height}x{width} cannot be cut into {patch}x{patch}-cell tokens")
    return height // patch, width // patch


def bev_to_tokens(bev: torch.Tensor, patch: int = 1) -> torch.Tensor:
    """Average each ``patch x patch`` block of a BEV map into one token.

    Args:
        bev: (B, C, H, W) map.
        patch: cells per token side.

    Returns:
        (B, N, C) tokens, ``N = (H / patch) * (W / patch)``, row-major.
    """
    if patch > 1:
        bev = F.avg_pool2d(bev, patch)  # (B, C, Ht, Wt)
    return bev.flatten(2).transpose(1, 2)  # (B, N, C)


def tokens_to_bev(tokens: torch.Tensor, token_shape: tuple[int, int]) -> torch.Tensor:
    """Inverse layout of ``bev_to_tokens`` at token resolution: (B, N, C) -> (B, C, Ht, Wt)."""
    batch, _, channels = tokens.shape
    return tokens.transpose(1, 2).reshape(batch, channels, *token_shape)


def pool_cells_to_tokens(cell_map: torch.Tensor, patch: int) -> torch.Tensor:
    """Mean of a per-cell map over each token's cells: (B, H, W) -> (B, N) float."""
    return bev_to_tokens(cell_map.unsqueeze(1).float(), patch).squeeze(-1)


def gather_tokens(tokens: torch.Tensor, indices: torch.Tensor) -> torch.Tensor:
    """The one way bevjepa picks tokens: ``tokens (B, N, C)`` at ``indices (B, M)`` -> ``(B, M, C)``."""
    return torch.gather(tokens, 1, indices.unsqueeze(-1).expand(-1, -1, tokens.shape[-1]))


def indices_to_mask(indices: torch.Tensor, num_tokens: int, keep: torch.Tensor | None = None) -> torch.Tensor:
    """Mark the tokens listed in ``indices (B, M)`` (only where ``keep (B, M)``) in a ``(B, N)`` bool mask.

    Indices may repeat (padding, overlapping blocks): a token is marked if any of its entries is kept.
    """
    kept = torch.ones_like(indices, dtype=torch.int32) if keep is None else keep.int()
    counts = torch.zeros(indices.shape[0], num_tokens, dtype=torch.int32, device=indices.device)
    return counts.scatter_add_(1, indices, kept) > 0


def voxel_token_indices(coords: torch.Tensor, grid: BevGrid, patch: int) -> torch.Tensor:
    """Flat token index (within its own sample) of each voxel.

    Args:
        coords: (V, 4) int ``[b, z, y, x]`` voxel indices on ``grid``.
        grid: the voxel grid.
        patch: BEV cells per token side.

    Returns:
        (V,) int64 token index in ``[0, Ht * Wt)``.
    """
    _, token_width = token_grid_shape(grid, patch)
    voxels_per_token = grid.encoder_stride * patch
    rows = coords[:, 2].long() // voxels_per_token
    cols = coords[:, 3].long() // voxels_per_token
    return rows * token_width + cols


def token_bev_grid(grid: BevGrid, patch: int) -> BevGrid:
    """The grid whose BEV cells are the tokens (same range, ``patch`` times the encoder stride)."""
    token_grid_shape(grid, patch)  # validates the patch
    return BevGrid(grid.point_cloud_range, grid.voxel_size, grid.encoder_stride * patch)
