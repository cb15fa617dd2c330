"""Future occupancy read from a world model: the occupancy head decodes the predictor's forecast tokens of
keyframe t+k (laid out in keyframe k's own LiDAR frame), and the class map is carried into the current frame,
where the future labels are.

Horizons are future keyframes at 0.5 s steps: 1 s, 2 s, 3 s are steps 2, 4, 6 (``ProbeLabels.occupancy``
index k is step k; index 0 is now).
"""

import torch

from bevjepa.grid import BevGrid
from bevjepa.jepa.future_geometry import warp_to_current_frame
from bevjepa.probes.heads import IGNORE_INDEX

STEP_SECONDS = 0.5
HORIZON_STEPS = {"1s": 2, "2s": 4, "3s": 6}


def warp_classes_to_current_frame(classes: torch.Tensor, poses: torch.Tensor, grid: BevGrid) -> torch.Tensor:
    """Carry class maps of keyframe k into the current frame (nearest cell).

    Args:
        classes: (B, H, W) int64 classes on keyframe k's BEV cells.
        poses: (B, 4, 4) transform from keyframe k's LiDAR frame to the current one.
        grid: the BEV grid of both frames.

    Returns:
        (B, H, W) int64 on the current frame's cells; ``IGNORE_INDEX`` where a cell falls outside keyframe k's
        grid.
    """
    warped, inside = warp_to_current_frame(classes[:, None].double(), poses, grid, mode="nearest")
    warped = warped[:, 0].round().long()  # (B, H, W)
    return torch.where(inside, warped, torch.full_like(warped, IGNORE_INDEX))


def covered_by_future_frame(poses: torch.Tensor, grid: BevGrid) -> torch.Tensor:
    """Current-frame cells that lie inside keyframe k's grid: (B, 4, 4) poses -> (B, H, W) bool.

    Every method's future occupancy is scored on these cells only, so that a forecast (which cannot see past
    keyframe k's grid) and a copy of the present are compared on the same cells.
    """
    height, width = grid.bev_shape
    ones = poses.new_ones(poses.shape[0], 1, height, width)
    _, inside = warp_to_current_frame(ones, poses, grid, mode="nearest")
    return inside


def identity_where_invalid(poses: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Poses (B, K, 4, 4) with the (all-zero) poses of steps past the scene's end replaced by the identity."""
    identity = torch.eye(4, dtype=poses.dtype, device=poses.device).expand_as(poses)
    return torch.where(valid[:, :, None, None], poses, identity)


def future_labels_on_covered_cells(
    future_occupancy: torch.Tensor, poses: torch.Tensor, valid: torch.Tensor, grid: BevGrid
) -> torch.Tensor:
    """Future occupancy labels with cells outside keyframe k's grid, and invalid steps, set to ignore.

    Args:
        future_occupancy: (B, K, H, W) int64 labels of steps 1..K in the current frame.
        poses: (B, K, 4, 4) step k -> current frame.
        valid: (B, K) bool, steps that exist.
        grid: the BEV grid.

    Returns:
        (B, K, H, W) int64.
    """
    steps = future_occupancy.shape[1]
    poses = identity_where_invalid(poses[:, :steps], valid[:, :steps])
    covered = torch.stack([covered_by_future_frame(poses[:, k], grid) for k in range(steps)], 1)
    keep = covered & valid[:, :steps, None, None]
    return torch.where(keep, future_occupancy, torch.full_like(future_occupancy, IGNORE_INDEX))


def decode_future_occupancy(
    head: torch.nn.Module,
    predicted_tokens: torch.Tensor,
    poses: torch.Tensor,
    valid: torch.Tensor,
    grid: BevGrid,
) -> torch.Tensor:
    """Future class maps in the current frame from predicted future tokens.

    Args:
        head: the occupancy head, (B, N, D) -> (B, C, H, W) logits.
        predicted_tokens: (B, K, N, D) forecast tokens of steps 1..K, step k in keyframe k's frame.
        poses: (B, K, 4, 4) step k -> current frame.
        valid: (B, K) bool, steps that exist (others are decoded in place, to be ignored by the labels).
        grid: the BEV grid.

    Returns:
        (B, K, H, W) int64 classes in the current frame (``IGNORE_INDEX`` outside keyframe k's grid).
    """
    steps = predicted_tokens.shape[1]
    poses = identity_where_invalid(poses[:, :steps], valid[:, :steps])
    maps = [
        warp_classes_to_current_frame(head(predicted_tokens[:, k]).argmax(dim=1), poses[:, k], grid)
        for k in range(steps)
    ]
    return torch.stack(maps, dim=1)
