"""What the target encoder sees and where each target embedding comes from: the current keyframe and the
future keyframes (each in its own frame), encoded in one pass, and the occluded-region target assembled by
resampling the future embeddings into the current frame."""

from dataclasses import dataclass

import torch
from torch import nn

from bevjepa.batch import BevBatch, VoxelBatch
from bevjepa.grid import BevGrid
from bevjepa.jepa.future_geometry import warp_to_current_frame
from bevjepa.jepa.masks import observed_columns, occupied_columns


def stack_voxel_batches(batches: list[VoxelBatch]) -> VoxelBatch:
    """One batch holding the samples of ``batches`` in order (sample ``b`` of batch ``i`` gets index
    ``sum of earlier batch sizes + b``)."""
    offsets = torch.cumsum(torch.tensor([0] + [b.batch_size for b in batches[:-1]]), dim=0).tolist()
    coords = torch.cat(
        [
            b.coords + torch.tensor([offset, 0, 0, 0], dtype=b.coords.dtype, device=b.coords.device)
            for b, offset in zip(batches, offsets, strict=True)
        ]
    )  # (V, 4)
    features = torch.cat([b.features for b in batches])  # (V, F)
    return VoxelBatch(features=features, coords=coords, batch_size=sum(b.batch_size for b in batches))


@dataclass
class TargetViews:
    """Target-encoder embeddings of one batch.

    Attributes:
        now: (B, D, H, W) embedding of the current keyframe.
        futures: (B, K, D, H, W) embeddings of keyframes t+1 ... t+K, each in its own frame (K may be 0).
        future_observed: (B, K, H, W) bool, cells holding any voxel in each future frame.
        future_occupied: (B, K, H, W) bool, cells holding an object-height voxel column in each future frame.
    """

    now: torch.Tensor
    futures: torch.Tensor
    future_observed: torch.Tensor
    future_occupied: torch.Tensor


@torch.no_grad()
def encode_target_views(
    target_encoder: nn.Module, batch: BevBatch, steps: int, grid: BevGrid, occupied_min_height: float
) -> TargetViews:
    """Encode the current keyframe and the first ``steps`` future keyframes with the target encoder.

    Args:
        target_encoder: maps a ``VoxelBatch`` to (B', D, H, W).
        batch: the batch (its ``futures`` must hold at least ``steps`` keyframes when ``steps > 0``).
        steps: future keyframes to encode (0 for none).
        grid: the voxel grid.
        occupied_min_height: voxel-column height (m) that makes a future cell occupied.

    Returns:
        The target views.
    """
    views = [batch.voxels]
    if steps:
        if batch.futures is None or len(batch.futures.voxels) < steps:
            available = 0 if batch.futures is None else len(batch.futures.voxels)
            raise ValueError(
                f"JEPA future targets need {steps} future keyframes per sample, the batch has {available}: "
                "ask the DataModule for a longer future horizon or lower future_targets.steps"
            )
        views += batch.futures.voxels[:steps]
    embeddings = target_encoder(stack_voxel_batches(views))  # ((1 + K) * B, D, H, W)
    batch_size = batch.voxels.batch_size
    _, dims, height, width = embeddings.shape
    per_view = embeddings.view(1 + steps, batch_size, dims, height, width)
    futures = per_view[1:].transpose(0, 1)  # (B, K, D, H, W)
    future_voxels = batch.futures.voxels[:steps] if steps else []
    empty = torch.zeros(batch_size, 0, height, width, dtype=torch.bool, device=embeddings.device)
    observed = torch.stack([observed_columns(v, grid) for v in future_voxels], 1) if steps else empty
    occupied = (
        torch.stack([occupied_columns(v, grid, occupied_min_height) for v in future_voxels], 1)
        if steps
        else empty
    )
    return TargetViews(now=per_view[0], futures=futures, future_observed=observed, future_occupied=occupied)


def occluded_target_map(
    views: TargetViews, valid: torch.Tensor, poses: torch.Tensor, grid: BevGrid
) -> tuple[torch.Tensor, torch.Tensor]:
    """Target embedding of each current cell as seen from the nearest future keyframe that observed it.

    Args:
        views: target views with K >= 1 future keyframes.
        valid: (B, K) bool, future keyframes that exist.
        poses: (B, K, 4, 4) transforms from each future frame to the current frame (any value, zeros
            included, where not valid).
        grid: the voxel grid.

    Returns:
        embedding: (B, D, H, W), zeros where no future keyframe saw the cell.
        available: (B, H, W) bool, cells some valid future keyframe saw.
    """
    embedding = torch.zeros_like(views.now)
    available = torch.zeros(
        views.now.shape[0], *views.now.shape[2:], dtype=torch.bool, device=views.now.device
    )
    identity = torch.eye(4, dtype=poses.dtype, device=poses.device)
    poses = torch.where(valid[..., None, None], poses, identity)  # invalid steps carry no pose
    for step in range(views.futures.shape[1]):
        maps = torch.cat(
            [views.futures[:, step], views.future_observed[:, step, None].to(views.now.dtype)], 1
        )
        warped, inside = warp_to_current_frame(maps, poses[:, step], grid)  # (B, D + 1, H, W), (B, H, W)
        seen = (warped[:, -1] > 0.5) & inside & valid[:, step, None, None] & ~available  # (B, H, W)
        embedding = torch.where(seen.unsqueeze(1), warped[:, :-1], embedding)
        available |= seen
    return embedding, available
