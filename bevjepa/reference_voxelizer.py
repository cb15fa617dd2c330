"""A plain-torch voxelizer with the same semantics as ``bevjepa.sparse.Voxelizer``, to test it against."""

import torch

from bevjepa.grid import BevGrid


def reference_voxelize(
    points: torch.Tensor, grid: BevGrid, max_points_per_voxel: int = 10, max_voxels: int = 120000
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Average the first ``max_points_per_voxel`` points of each voxel, voxels in order of first appearance.

    Args:
        points: (N, F) float32 points, x, y, z first.
        grid: the voxel grid; points outside its range are dropped.
        max_points_per_voxel: points averaged per voxel at most.
        max_voxels: voxels kept at most (the first to appear).

    Returns:
        features (V, F) float32, coords (V, 3) int32 ``[z, y, x]``, num_points (V,) int32.
    """
    nz, ny, nx = grid.voxel_grid_shape
    low = torch.tensor(grid.point_cloud_range[:3], dtype=torch.float32)
    size = torch.tensor(grid.voxel_size, dtype=torch.float32)
    cell = torch.floor((points[:, :3] - low) / size).long()  # (N, 3) [x, y, z]
    inside = (cell >= 0).all(dim=1) & (cell < torch.tensor([nx, ny, nz])).all(dim=1)
    points, cell = points[inside], cell[inside]
    linear = (cell[:, 2] * ny + cell[:, 1]) * nx + cell[:, 0]  # (N,)

    unique, inverse = torch.unique(linear, return_inverse=True)
    first_seen = torch.full((unique.numel(),), points.shape[0], dtype=torch.long)
    first_seen.scatter_reduce_(0, inverse, torch.arange(points.shape[0]), reduce="amin")
    appearance_order = torch.argsort(first_seen)[:max_voxels]  # voxel slots in order of first appearance
    slot_of_unique = torch.full((unique.numel(),), -1, dtype=torch.long)
    slot_of_unique[appearance_order] = torch.arange(appearance_order.numel())
    slot = slot_of_unique[inverse]  # (N,) -1 for voxels past max_voxels

    # Rank of each point within its voxel, in input order: stable sort by voxel slot.
    order = torch.sort(slot, stable=True).indices
    sorted_slot = slot[order]
    starts = torch.searchsorted(sorted_slot, sorted_slot, right=False)
    rank = torch.empty_like(slot)
    rank[order] = torch.arange(slot.numel()) - starts
    keep = (slot >= 0) & (rank < max_points_per_voxel)

    num_voxels = appearance_order.numel()
    sums = torch.zeros(num_voxels, points.shape[1], dtype=torch.float64)
    sums.index_add_(0, slot[keep], points[keep].double())
    counts = torch.bincount(slot[keep], minlength=num_voxels)
    features = (sums / counts.unsqueeze(1)).float()
    voxel_linear = unique[appearance_order]
    coords = torch.stack([voxel_linear // (ny * nx), (voxel_linear // nx) % ny, voxel_linear % nx], dim=1)
    return features, coords.int(), counts.int()
