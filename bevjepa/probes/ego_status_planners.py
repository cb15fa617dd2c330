"""Planners that read only the ego status now (no scene): the baselines that open-loop planning must beat.

Ego status alone scores well on nuScenes open-loop planning (the ego mostly keeps going as it goes), so the
probe suite reports these beside every planner that reads the scene.
"""

from collections.abc import Sequence

import torch
from torch import nn

from bevjepa.batch import EGO_VELOCITY, EGO_YAW_RATE
from bevjepa.metrics import NUSCENES_LIDAR_EGO_ORIGIN_XY
from bevjepa.probes.trajectories import arc_positions


def constant_velocity_plan(
    ego_status: torch.Tensor,
    num_steps: int = 6,
    step_seconds: float = 0.5,
    with_yaw_rate: bool = False,
    start_xy: Sequence[float] = NUSCENES_LIDAR_EGO_ORIGIN_XY,
) -> torch.Tensor:
    """Extrapolate the ego's current motion: a straight line at constant velocity, or, with the yaw rate,
    a circular arc at constant speed and turn rate (the rear axle of a car on a constant steering angle).

    Args:
        ego_status: (B, 4) ``[vx, vy, yaw_rate, speed]`` of the ego origin in the trajectories' frame.
        num_steps: K waypoints.
        step_seconds: time between waypoints.
        with_yaw_rate: turn at the current yaw rate, keeping the speed ``hypot(vx, vy)``.
        start_xy: the ego origin now in that frame (the current nuScenes LIDAR_TOP frame by default).

    Returns:
        (B, K, 2) waypoints.
    """
    times = step_seconds * torch.arange(1, num_steps + 1, dtype=ego_status.dtype, device=ego_status.device)
    velocity = ego_status[:, EGO_VELOCITY]  # (B, 2)
    start = ego_status.new_tensor(start_xy)
    if not with_yaw_rate:
        return start + velocity[:, None, :] * times[None, :, None]
    speed = torch.linalg.vector_norm(velocity, dim=-1)  # (B,)
    # At rest the distance is 0 and the arc a point.
    curvature = ego_status[:, EGO_YAW_RATE] / speed.clamp(min=1e-6)
    local = arc_positions(speed[:, None] * times, curvature[:, None])  # (B, K, 2), heading along +x
    direction = velocity / speed.clamp(min=1e-6)[:, None]  # (B, 2) unit heading (zero at rest)
    cos, sin = direction[:, None, 0], direction[:, None, 1]  # (B, 1)
    x = local[..., 0] * cos - local[..., 1] * sin
    y = local[..., 0] * sin + local[..., 1] * cos
    return start + torch.stack([x, y], dim=-1)


class EgoStatusMLP(nn.Module):
    """Regress the future waypoints from the ego status alone.

    Args:
        num_steps: K waypoints.
        hidden: width of the two hidden layers.
        start_xy: the ego origin now in the trajectories' frame; the layers regress offsets from it.
    """

    def __init__(
        self,
        num_steps: int = 6,
        hidden: int = 128,
        start_xy: tuple[float, float] = NUSCENES_LIDAR_EGO_ORIGIN_XY,
    ) -> None:
        super().__init__()
        self.num_steps = num_steps
        self.layers = nn.Sequential(
            nn.Linear(4, hidden),
            nn.ReLU(),
            nn.Linear(hidden, hidden),
            nn.ReLU(),
            nn.Linear(hidden, num_steps * 2),
        )
        self.register_buffer("start_xy", torch.tensor(start_xy, dtype=torch.float32))

    def forward(self, ego_status: torch.Tensor) -> torch.Tensor:
        """(B, 4) ``[vx, vy, yaw_rate, speed]`` -> (B, K, 2) waypoints in the same frame."""
        B = ego_status.shape[0]
        return self.start_xy + self.layers(ego_status).reshape(B, self.num_steps, 2)
