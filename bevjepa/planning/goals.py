"""Goals in embedding space: a goal keyframe's tokens (image-goal planning), or a route waypoint made a goal
by carrying the current observation's tokens into the frame the ego would have at the waypoint."""

from dataclasses import dataclass

import torch

from bevjepa.grid import BevGrid
from bevjepa.jepa.future_geometry import ego_motion_compensate
from bevjepa.planning.kinematics import lidar_frame_poses


@dataclass
class LatentGoal:
    """Where the plan should lead, as target-encoder tokens.

    Attributes:
        tokens: (B, N, D) layer-normalised target tokens of the goal, in the goal's own LiDAR frame.
        known: (B, N) bool, tokens the goal says something about.
        ego_pose: (B, 3) ``[x, y, yaw]`` of the goal in the ego frame now, where known (pictures, audits).
    """

    tokens: torch.Tensor
    known: torch.Tensor
    ego_pose: torch.Tensor | None = None


def keyframe_goal(goal_tokens: torch.Tensor, ego_pose: torch.Tensor | None = None) -> LatentGoal:
    """A goal keyframe's layer-normalised target tokens ``(B, N, D)`` as the goal (every token counts)."""
    known = torch.ones(goal_tokens.shape[:2], dtype=torch.bool, device=goal_tokens.device)
    return LatentGoal(goal_tokens, known, ego_pose)


def waypoint_goal(current_tokens: torch.Tensor, waypoint: torch.Tensor, token_grid: BevGrid) -> LatentGoal:
    """A route waypoint as a goal: the current scene seen from the waypoint.

    The current layer-normalised target tokens are carried along the rigid motion from the ego now to the
    waypoint pose (as the world model carries tokens between keyframes): the static world where the ego
    would see it from there. Tokens that come from outside the current view are unknown.

    Args:
        current_tokens: (B, N, D) layer-normalised target tokens now.
        waypoint: (B, 3) ``[x, y, yaw]`` of the ego at the waypoint, in the ego frame now.
        token_grid: the grid whose cells are the tokens.

    Returns:
        The goal.
    """
    pose = lidar_frame_poses(waypoint.double())  # (B, 4, 4) waypoint LiDAR frame -> LiDAR frame now
    yaw = torch.atan2(pose[:, 1, 0], pose[:, 0, 0])
    motion = torch.stack([pose[:, 0, 3], pose[:, 1, 3], yaw, torch.zeros_like(yaw)], -1)  # (B, 4)
    known = torch.ones(current_tokens.shape[:2], dtype=torch.bool, device=current_tokens.device)
    tokens, known = ego_motion_compensate(current_tokens, known, motion.to(current_tokens.dtype), token_grid)
    return LatentGoal(tokens, known, waypoint)


def goal_distance(predicted: torch.Tensor, goal: LatentGoal) -> torch.Tensor:
    """Mean squared distance per embedding dimension between predicted tokens and the goal's known tokens.

    Args:
        predicted: (B, S, N, D) predicted tokens of S candidates, in the goal's frame.
        goal: the goal of each of the B problems.

    Returns:
        (B, S).
    """
    squared = (predicted - goal.tokens[:, None]).pow(2).mean(-1)  # (B, S, N)
    weights = goal.known[:, None].to(squared.dtype)  # (B, 1, N)
    return (squared * weights).sum(-1) / weights.sum(-1).clamp(min=1)
