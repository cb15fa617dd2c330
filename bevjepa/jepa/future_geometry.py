"""Relating future keyframes to the current one: BEV maps resampled into the current frame, and the ego's
actions re-expressed in the frame they start from (so that a transition looks the same anywhere on a route).
"""

import torch
import torch.nn.functional as F

from bevjepa.grid import BevGrid


def yaw_of(poses: torch.Tensor) -> torch.Tensor:
    """Heading (radians) of rigid transforms ``(..., 4, 4)`` about +z: ``(...)``."""
    return torch.atan2(poses[..., 1, 0], poses[..., 0, 0])


def warp_to_current_frame(
    maps: torch.Tensor, poses: torch.Tensor, grid: BevGrid, mode: str = "nearest"
) -> tuple[torch.Tensor, torch.Tensor]:
    """Resample BEV maps laid out in another frame onto the current frame's cells.

    Args:
        maps: (B, C, H, W) on the grid's BEV cells of frame k.
        poses: (B, 4, 4) transform from frame k to the current frame.
        grid: the grid both frames use (its ``bev_shape`` is ``(H, W)``).
        mode: ``"nearest"`` (the value of the frame-k cell under each current cell) or ``"bilinear"``.

    Returns:
        warped: (B, C, H, W) on the current frame's cells (0 outside frame k).
        inside: (B, H, W) bool, current cells that fall inside frame k's grid.
    """
    batch = maps.shape[0]
    centers = grid.bev_cell_centers().to(maps.device)  # (H, W, 2) float64, x y in the current frame
    height, width, _ = centers.shape
    homogeneous = torch.cat(
        [centers, torch.zeros_like(centers[..., :1]), torch.ones_like(centers[..., :1])], dim=-1
    ).view(1, -1, 4)  # (1, H * W, 4)
    to_frame_k = torch.linalg.inv(poses.double())  # (B, 4, 4)
    in_frame_k = (homogeneous @ to_frame_k.transpose(1, 2))[..., :2]  # (B, H * W, 2)
    low = torch.tensor(grid.point_cloud_range[:2], dtype=torch.float64, device=maps.device)
    high = torch.tensor(grid.point_cloud_range[3:5], dtype=torch.float64, device=maps.device)
    normalised = (in_frame_k - low) / (high - low) * 2 - 1  # (B, H * W, 2), grid_sample's (x, y) order
    inside = (normalised.abs() < 1).all(dim=-1).view(batch, height, width)
    sample_at = normalised.view(batch, height, width, 2).to(maps.dtype)
    warped = F.grid_sample(maps, sample_at, mode=mode, padding_mode="zeros", align_corners=False)
    return warped, inside


def actions_in_step_frames(actions: torch.Tensor, poses: torch.Tensor) -> torch.Tensor:
    """Express each step's ego motion in the frame of the keyframe it starts from.

    Args:
        actions: (B, K, 4) ``[dx, dy, dyaw, speed]``, step k's motion from keyframe k-1 to k, in the current frame.
        poses: (B, K, 4, 4) transform from keyframe k's frame to the current frame (keyframe 0 is the current).

    Returns:
        (B, K, 4) ``[dx, dy, dyaw, speed]`` with ``(dx, dy)`` rotated into keyframe k-1's frame.
    """
    start_yaw = torch.cat([torch.zeros_like(poses[:, :1, 0, 0]), yaw_of(poses[:, :-1])], dim=1)  # (B, K)
    cos, sin = torch.cos(start_yaw), torch.sin(start_yaw)
    dx, dy = actions[..., 0], actions[..., 1]
    local = torch.stack([cos * dx + sin * dy, -sin * dx + cos * dy], dim=-1)  # (B, K, 2)
    return torch.cat([local, actions[..., 2:]], dim=-1)


def pose_from_action(actions: torch.Tensor) -> torch.Tensor:
    """The rigid motion of one step as a transform from the new keyframe's frame to the one it starts from.

    Args:
        actions: (B, 4) ``[dx, dy, dyaw, speed]`` in the frame the step starts from.

    Returns:
        (B, 4, 4) float64.
    """
    dx, dy, dyaw = (actions[:, i].double() for i in range(3))
    pose = torch.eye(4, dtype=torch.float64, device=actions.device).repeat(actions.shape[0], 1, 1)
    pose[:, 0, 0], pose[:, 0, 1] = torch.cos(dyaw), -torch.sin(dyaw)
    pose[:, 1, 0], pose[:, 1, 1] = torch.sin(dyaw), torch.cos(dyaw)
    pose[:, 0, 3], pose[:, 1, 3] = dx, dy
    return pose


def ego_motion_compensate(
    tokens: torch.Tensor, known: torch.Tensor, actions: torch.Tensor, token_grid: BevGrid
) -> tuple[torch.Tensor, torch.Tensor]:
    """Carry tokens of one keyframe into the next keyframe's frame along the ego's motion (bilinear).

    The world does not move with the ego: a static object's embedding lands where the step's motion puts
    it, so the predictor only has to explain what moved and what came into view.

    Args:
        tokens: (B, N, D) tokens in the frame of keyframe k-1; ignored where not ``known``.
        known: (B, N) bool, tokens that carry an embedding.
        actions: (B, 4) ``[dx, dy, dyaw, speed]`` of the step, in keyframe k-1's frame.
        token_grid: the grid whose cells are the tokens (``token_bev_grid``).

    Returns:
        tokens: (B, N, D) in keyframe k's frame.
        known: (B, N) bool, tokens of keyframe k whose source was a known token inside keyframe k-1's grid.
    """
    batch, _, dims = tokens.shape
    shape = token_grid.bev_shape
    maps = (tokens * known.unsqueeze(-1)).transpose(1, 2).reshape(batch, dims, *shape)  # (B, D, Ht, Wt)
    previous_from_next = pose_from_action(actions)
    next_from_previous = torch.linalg.inv(
        previous_from_next
    )  # poses map the other frame into the current one
    warped, inside = warp_to_current_frame(maps, next_from_previous, token_grid, mode="bilinear")
    known_maps = known.to(tokens.dtype).view(batch, 1, *shape)
    warped_known, _ = warp_to_current_frame(known_maps, next_from_previous, token_grid, mode="nearest")
    next_known = inside & (warped_known[:, 0] > 0.5)  # (B, Ht, Wt)
    return warped.flatten(2).transpose(1, 2), next_known.flatten(1)
