"""The planning energy in embedding space: how far the predicted future is from the goal, plus what BEV heads
read from the observed and predicted tokens where the ego will drive (planning cost, collision and off-road).

Candidates are control sequences ``(B, S, H, 2)``; ``integrate_controls`` turns them into the world model's
actions, and the world model predicts each step's tokens in that step's own LiDAR frame. Step k is judged on
the BEV maps of the keyframe it starts from (the current observation for the first step, the prediction of
keyframe k-1 after that): the ego's path through step k lies ahead of that keyframe's ego, in the part of the
BEV the heads were trained to read (under the ego itself a LiDAR sees nothing, so no label exists there).
Each term is read at points along the ego's body and along its path through the step (so a fast step does not
jump over a hazard), and the largest value of a step counts.
"""

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from bevjepa.grid import BevGrid
from bevjepa.planning.goals import LatentGoal, goal_distance
from bevjepa.planning.kinematics import (
    EgoLimits,
    ego_poses_in_lidar_frame,
    integrate_controls,
    world_model_actions,
)
from bevjepa.planning.types import TokenMap
from bevjepa.planning.world_model import LatentWorldModel

# Rear axle to the body's centre and half the body length of the ego (the simulator's vehicle).
EGO_CENTRE_AHEAD_M = 1.322
EGO_HALF_LENGTH_M = 2.042
DEFAULT_EGO_LIMITS = EgoLimits()


@dataclass(frozen=True)
class EnergyWeights:
    """Weights of the energy terms.

    Attributes:
        goal: latent distance to the goal at the last step.
        cost: planning-cost head read under the ego, summed over steps.
        collision: probability that the ego's cells are occupied (occupancy head), summed over steps.
        off_road: probability that the ego's cells are not drivable (map head), summed over steps.
    """

    goal: float = 1.0
    cost: float = 1.0
    collision: float = 5.0
    off_road: float = 2.0


@dataclass
class EnergyTerms:
    """An evaluation of candidates.

    Attributes:
        total: (B, S) the weighted energy.
        terms: unweighted (B, S) terms by name (``goal``, and each BEV term that has a head).
        trajectory: (B, S, H, 2) ego positions in the LiDAR frame now.
    """

    total: torch.Tensor
    terms: dict[str, torch.Tensor]
    trajectory: torch.Tensor


def _footprint_points(poses: torch.Tensor, path_points: int, body_points: int) -> torch.Tensor:
    """Points under the ego during each step, in the LiDAR frame of the keyframe the step starts from.

    Args:
        poses: (..., H, 4, 4) each step's LiDAR frame in the LiDAR frame now.
        path_points: points along the step's path (straight from the start to the end pose).
        body_points: points along the body's length at each.

    Returns:
        (..., H, P, 2) x, y.
    """
    identity = torch.eye(4, dtype=poses.dtype, device=poses.device).expand(*poses.shape[:-3], 1, 4, 4)
    previous = torch.cat([identity, poses[..., :-1, :, :]], dim=-3)
    step = torch.linalg.inv(previous) @ poses  # (..., H, 4, 4) step k's frame in step k-1's
    centre = ego_poses_in_lidar_frame(
        poses.new_tensor([EGO_CENTRE_AHEAD_M, 0.0, 0.0])
    )  # (3,) at a step start
    end = step[..., :2, :2] @ centre[:2] + step[..., :2, 3]  # (..., H, 2)
    turn = torch.atan2(step[..., 1, 0], step[..., 0, 0])  # (..., H)
    along = torch.linspace(0, 1, path_points, dtype=poses.dtype, device=poses.device)  # (Pp,)
    path = centre[:2] + along[:, None] * (end - centre[:2])[..., None, :]  # (..., H, Pp, 2)
    heading = centre[2] + along * turn[..., None]  # (..., H, Pp)
    direction = torch.stack([torch.cos(heading), torch.sin(heading)], -1)  # (..., H, Pp, 2)
    body = torch.linspace(-1, 1, body_points, dtype=poses.dtype, device=poses.device) * (
        EGO_HALF_LENGTH_M - 0.6
    )
    points = path[..., :, None, :] + body[:, None] * direction[..., :, None, :]  # (..., H, Pp, Pb, 2)
    return points.flatten(-3, -2)


def read_under_ego(maps: torch.Tensor, points: torch.Tensor, grid: BevGrid) -> torch.Tensor:
    """Largest value of BEV maps at points (bilinear; outside the grid counts as the border value).

    Args:
        maps: (M, H, W) on the grid's cells.
        points: (M, P, 2) metric x, y.
        grid: the BEV grid.

    Returns:
        (M,).
    """
    low = points.new_tensor(grid.point_cloud_range[:2])
    high = points.new_tensor(grid.point_cloud_range[3:5])
    normalised = ((points - low) / (high - low) * 2 - 1).to(maps.dtype)  # grid_sample's (x, y) order
    values = F.grid_sample(
        maps[:, None], normalised[:, None], align_corners=False, padding_mode="border"
    )  # (M, 1, 1, P)
    return values.flatten(1).amax(dim=1)


class LatentPlanningEnergy:
    """Energy of candidate control sequences under a latent world model.

    Args:
        world_model: the pretrained world model.
        weights: term weights.
        cost_map: tokens -> planning cost per BEV cell (the planning-cost head), or None.
        collision_map: tokens -> probability that a cell is occupied (from the occupancy head), or None.
        off_road_map: tokens -> probability that a cell is not drivable (from the map head), or None.
        limits: vehicle limits of the kinematics.
        path_points: footprint points along each step's path.
        body_points: footprint points along the body.
    """

    def __init__(
        self,
        world_model: LatentWorldModel,
        weights: EnergyWeights = EnergyWeights(),
        cost_map: TokenMap | None = None,
        collision_map: TokenMap | None = None,
        off_road_map: TokenMap | None = None,
        limits: EgoLimits = DEFAULT_EGO_LIMITS,
        path_points: int = 3,
        body_points: int = 3,
    ) -> None:
        self.world_model = world_model
        self.weights = weights
        self.maps = {
            name: head
            for name, head in (("cost", cost_map), ("collision", collision_map), ("off_road", off_road_map))
            if head is not None
        }
        self.limits = limits
        self.path_points = path_points
        self.body_points = body_points

    @torch.no_grad()
    def evaluate(
        self,
        context: torch.Tensor,
        observed: torch.Tensor,
        speed: torch.Tensor,
        goal: LatentGoal,
        controls: torch.Tensor,
    ) -> EnergyTerms:
        """Energy of candidates.

        Args:
            context: (B, N, D) context tokens now (the rollout's start).
            observed: (B, N, D) layer-normalised target tokens now (the heads read them for the first step).
            speed: (B,) ego speed now.
            goal: the goals.
            controls: (B, S, H, 2) ``[acceleration, yaw_rate]`` candidates.

        Returns:
            The energy and its terms.
        """
        rollout = integrate_controls(controls.double(), speed.double()[:, None], self.limits)
        actions, poses, trajectory = world_model_actions(rollout)
        predicted = self.world_model.rollout(context, actions.float(), poses.float())  # (B, S, H, N, D)
        terms = {"goal": goal_distance(predicted[:, :, -1], goal)}
        total = self.weights.goal * terms["goal"]
        if self.maps:
            batch, samples, horizon = controls.shape[:3]
            points = _footprint_points(poses, self.path_points, self.body_points).float()  # (B, S, H, P, 2)
            grid = self.world_model.grid
            for name, head in self.maps.items():
                now = head(observed)  # (B, H_bev, W_bev)
                first = read_under_ego(
                    now.repeat_interleave(samples, dim=0), points[:, :, 0].flatten(0, 1), grid
                ).view(batch, samples, 1)
                later = read_under_ego(
                    head(predicted[:, :, :-1].flatten(0, 2)), points[:, :, 1:].flatten(0, 2), grid
                ).view(batch, samples, horizon - 1)
                terms[name] = torch.cat([first, later], dim=-1).sum(-1)
                total = total + getattr(self.weights, name) * terms[name]
        return EnergyTerms(total, terms, trajectory.float())

    def bind(self, context: torch.Tensor, observed: torch.Tensor, speed: torch.Tensor, goal: LatentGoal):
        """The energy as an optimiser's callable: (B, S, H, 2) controls -> (B, S)."""

        def energy(controls: torch.Tensor) -> torch.Tensor:
            return self.evaluate(context, observed, speed, goal, controls).total

        return energy
