"""From planned controls to the world model's actions: the ego's kinematics in torch, batched over candidates.

A plan is a sequence of controls ``[acceleration (m/s^2), yaw_rate (rad/s)]``, each held for one 0.5 s
keyframe step, as the simulator's ``EgoAction``. The ego is integrated like the simulator's bicycle model
(speed never negative, yaw rate limited by the steering lock at the current speed). The world model wants,
per step, ``[dx, dy, dyaw, speed]``: the ego's displacement and turn in the current LiDAR frame and its mean
speed, as the DataModule computes from logged poses, and the poses of each step's LiDAR frame.

Frames: the ego frame has x forward with its origin at the rear axle; the LiDAR frame is the LIDAR_TOP
sensor's (``LIDAR_POSE_IN_EGO``, x to the right and y forward on the nuScenes vehicle).
"""

import math
from dataclasses import dataclass

import torch

from bevjepa.sim.calibration import LIDAR_TOP

KEYFRAME_STEP_S = 0.5
# (x, y, yaw) of LIDAR_TOP in the ego frame (the mount has no roll or pitch).
LIDAR_POSE_IN_EGO = (
    LIDAR_TOP.translation[0],
    LIDAR_TOP.translation[1],
    2 * math.atan2(LIDAR_TOP.rotation[3], LIDAR_TOP.rotation[0]),
)


@dataclass(frozen=True)
class EgoLimits:
    """The vehicle limits the integration respects (the simulator's ``EgoSpec`` values).

    Attributes:
        max_acceleration, max_deceleration: m/s^2, both positive.
        wheelbase: metres.
        max_steering: front-wheel angle limit (radians).
    """

    max_acceleration: float = 3.0
    max_deceleration: float = 8.0
    wheelbase: float = 2.588
    max_steering: float = 0.6


@dataclass
class EgoRollout:
    """Where candidate controls take the ego.

    Attributes:
        ego_poses: (..., H, 3) ``[x, y, yaw]`` of the ego (rear axle) at each step's end, in the ego frame now.
        speeds: (..., H) mean speed over each step (m/s).
        end_speeds: (..., H) speed at each step's end.
    """

    ego_poses: torch.Tensor
    speeds: torch.Tensor
    end_speeds: torch.Tensor


def integrate_controls(
    controls: torch.Tensor,
    speed: torch.Tensor,
    limits: EgoLimits = EgoLimits(),
    step_s: float = KEYFRAME_STEP_S,
    substeps: int = 10,
) -> EgoRollout:
    """Integrate the bicycle model under piecewise-constant controls (midpoint rule).

    Args:
        controls: (..., H, 2) ``[acceleration, yaw_rate]`` per step.
        speed: (...) speed now (m/s), broadcastable to ``controls.shape[:-2]``.
        limits: vehicle limits.
        step_s: seconds per step.
        substeps: integration substeps per step.

    Returns:
        The rollout, starting at the ego frame's origin.
    """
    batch_shape, horizon = controls.shape[:-2], controls.shape[-2]
    dt = step_s / substeps
    max_curvature = math.tan(limits.max_steering) / limits.wheelbase
    x = controls.new_zeros(batch_shape)
    y, yaw = torch.zeros_like(x), torch.zeros_like(x)
    v = torch.as_tensor(speed, dtype=controls.dtype, device=controls.device).expand(batch_shape).clone()
    poses, mean_speeds, end_speeds = [], [], []
    for step in range(horizon):
        acceleration = controls[..., step, 0].clamp(-limits.max_deceleration, limits.max_acceleration)
        yaw_rate_command = controls[..., step, 1]
        distance = torch.zeros_like(x)
        for _ in range(substeps):
            new_v = (v + acceleration * dt).clamp(min=0.0)
            mid_v = 0.5 * (v + new_v)
            limit = mid_v * max_curvature
            yaw_rate = torch.maximum(torch.minimum(yaw_rate_command, limit), -limit)
            mid_yaw = yaw + 0.5 * yaw_rate * dt
            x = x + mid_v * dt * torch.cos(mid_yaw)
            y = y + mid_v * dt * torch.sin(mid_yaw)
            yaw = yaw + yaw_rate * dt
            distance = distance + mid_v * dt
            v = new_v
        poses.append(torch.stack([x, y, yaw], dim=-1))
        mean_speeds.append(distance / step_s)
        end_speeds.append(v)
    return EgoRollout(torch.stack(poses, -2), torch.stack(mean_speeds, -1), torch.stack(end_speeds, -1))


def _se2(poses: torch.Tensor) -> torch.Tensor:
    """(..., 3) ``[x, y, yaw]`` -> (..., 3, 3) homogeneous transforms."""
    cos, sin = torch.cos(poses[..., 2]), torch.sin(poses[..., 2])
    zeros, ones = torch.zeros_like(cos), torch.ones_like(cos)
    rows = [
        torch.stack([cos, -sin, poses[..., 0]], -1),
        torch.stack([sin, cos, poses[..., 1]], -1),
        torch.stack([zeros, zeros, ones], -1),
    ]
    return torch.stack(rows, -2)


def _pose_of(matrices: torch.Tensor) -> torch.Tensor:
    """(..., 3, 3) -> (..., 3) ``[x, y, yaw]``."""
    yaw = torch.atan2(matrices[..., 1, 0], matrices[..., 0, 0])
    return torch.stack([matrices[..., 0, 2], matrices[..., 1, 2], yaw], -1)


def ego_poses_in_lidar_frame(ego_poses: torch.Tensor) -> torch.Tensor:
    """Ego poses ``(..., 3)`` in the ego frame now -> the same poses in the LiDAR frame now."""
    mount = _se2(ego_poses.new_tensor(LIDAR_POSE_IN_EGO))
    return _pose_of(torch.linalg.inv(mount) @ _se2(ego_poses))


def lidar_frame_poses(ego_poses: torch.Tensor) -> torch.Tensor:
    """Poses of the LiDAR frames that go with ego poses ``(..., 3)`` (ego frame now), as (..., 4, 4)
    transforms into the LiDAR frame now (what the DataModule's ``FutureFrames.poses`` holds)."""
    mount = _se2(ego_poses.new_tensor(LIDAR_POSE_IN_EGO))
    planar = torch.linalg.inv(mount) @ _se2(ego_poses) @ mount  # (..., 3, 3)
    poses = torch.zeros(*ego_poses.shape[:-1], 4, 4, dtype=ego_poses.dtype, device=ego_poses.device)
    poses[..., :2, :2] = planar[..., :2, :2]
    poses[..., :2, 3] = planar[..., :2, 2]
    poses[..., 2, 2] = poses[..., 3, 3] = 1.0
    return poses


def world_model_actions(rollout: EgoRollout) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The world model's inputs for a rollout.

    Args:
        rollout: (..., H) steps.

    Returns:
        actions: (..., H, 4) ``[dx, dy, dyaw, speed]`` in the LiDAR frame now (the DataModule's ``actions``).
        poses: (..., H, 4, 4) each step's LiDAR frame in the LiDAR frame now.
        trajectory: (..., H, 2) ego (rear-axle) positions in the LiDAR frame now (the planning metrics' input).
    """
    start = rollout.ego_poses.new_zeros(*rollout.ego_poses.shape[:-2], 1, 3)
    in_lidar = ego_poses_in_lidar_frame(torch.cat([start, rollout.ego_poses], dim=-2))  # (..., H + 1, 3)
    displacement = in_lidar[..., 1:, :2] - in_lidar[..., :-1, :2]
    turn = rollout.ego_poses[..., 2] - torch.cat([start[..., 2], rollout.ego_poses[..., :-1, 2]], -1)
    turn = torch.atan2(torch.sin(turn), torch.cos(turn))
    actions = torch.cat([displacement, turn[..., None], rollout.speeds[..., None]], dim=-1)
    return actions, lidar_frame_poses(rollout.ego_poses), in_lidar[..., 1:, :2]
