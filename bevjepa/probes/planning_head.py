"""The planning-cost probe: a cost map read from frozen tokens scores a fixed set of candidate ego trajectories.

Each candidate's score is a prior of the candidate minus the cost summed over its waypoints (bilinear look-up
in the cost map; a waypoint beyond the grid reads the nearest border cell); with ego status, an MLP of the
ego's current motion adds a per-candidate term. The prior is either ``scene`` (an MLP of the mean token: how
often the candidate is driven in such a scene) or ``constant`` (how often it is driven, whatever the scene).
A scene prior carries what a cost map cannot: every candidate has the same number of waypoints, so a cost that
rises or falls everywhere (a scene that calls for driving slower or faster) leaves the ranking unchanged; but
on features that carry little, its MLP fits noise, where the constant prior cannot. Training is a classification
over candidates whose target is the candidate nearest to the logged trajectory, so the softmax of the scores is
the head's belief of which candidate will be driven. The plan is chosen by one of two decisions:
``least_expected_distance`` takes the candidate whose distance to the driven one (mean over the waypoints, as the
L2 metric and the training target measure it), expected under that belief, is least: a head that spreads
its belief over neighbouring candidates picks their centre rather than whichever tops the scores by a hair
(for the mean displacement the metric reports, the Bayes choice among the candidates). ``lowest_cost`` takes
the best-scored candidate.
"""

import math
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from bevjepa.grid import BevGrid
from bevjepa.metrics import NUSCENES_LIDAR_EGO_ORIGIN_XY, NUSCENES_LIDAR_EGO_YAW
from bevjepa.probes.heads import TokenCellHead

# Pose ``(x, y, yaw)`` of the ego frame (x forward, origin at the rear axle) in the LIDAR_TOP frame of the
# nuScenes data-collection vehicle, which the synthetic vehicle copies (LiDAR x to the right, y forward).
NUSCENES_EGO_POSE_IN_LIDAR = (*NUSCENES_LIDAR_EGO_ORIGIN_XY, NUSCENES_LIDAR_EGO_YAW)
NO_TARGET = -100  # cross-entropy's ignore index: samples without any logged future step
PriorKind = Literal["scene", "constant"]
PRIOR_KINDS: tuple[PriorKind, ...] = ("scene", "constant")
PlanDecision = Literal["least_expected_distance", "lowest_cost"]
PLAN_DECISIONS: tuple[PlanDecision, ...] = ("least_expected_distance", "lowest_cost")


def candidates_in_lidar_frame(
    candidates: torch.Tensor, ego_pose_in_lidar: tuple[float, float, float]
) -> torch.Tensor:
    """Move candidate trajectories from the ego frame into the LiDAR frame.

    Args:
        candidates: (T, K, 2) waypoints in the ego frame (x forward, y left).
        ego_pose_in_lidar: ``(x, y, yaw)`` of the ego frame's origin and heading in the LiDAR frame.

    Returns:
        (T, K, 2) waypoints in the LiDAR frame.
    """
    x, y, yaw = ego_pose_in_lidar
    rotation = candidates.new_tensor([[math.cos(yaw), -math.sin(yaw)], [math.sin(yaw), math.cos(yaw)]])
    return candidates @ rotation.T + candidates.new_tensor([x, y])


def nearest_candidate(candidates: torch.Tensor, logged: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Index of the candidate closest to each logged trajectory (mean distance over its valid steps).

    Args:
        candidates: (T, K, 2).
        logged: (B, K, 2) logged future positions, same frame.
        valid: (B, K) bool, steps that exist.

    Returns:
        (B,) int64, ``NO_TARGET`` where no step is valid.
    """
    distances = torch.linalg.vector_norm(candidates[None] - logged[:, None], dim=-1)  # (B, T, K)
    weights = valid[:, None].to(distances.dtype)
    mean = (distances * weights).sum(-1) / weights.sum(-1).clamp(min=1)  # (B, T)
    target = mean.argmin(dim=1)
    return torch.where(valid.any(dim=1), target, torch.full_like(target, NO_TARGET))


class ScenePrior(nn.Module):
    """(B, N, D) tokens -> (B, T) prior of each candidate: an MLP of the mean token, starting uniform."""

    def __init__(self, embed_dim: int, num_candidates: int, hidden_dim: int) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(embed_dim, hidden_dim), nn.GELU(), nn.Linear(hidden_dim, num_candidates)
        )
        nn.init.zeros_(self.net[-1].weight)  # every candidate equally likely at the start
        nn.init.zeros_(self.net[-1].bias)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.net(tokens.mean(dim=1))


class ConstantPrior(nn.Module):
    """(B, N, D) tokens -> (B, T) prior of each candidate: how often it is driven, whatever the scene."""

    def __init__(self, num_candidates: int) -> None:
        super().__init__()
        self.logits = nn.Parameter(torch.zeros(num_candidates))

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.logits.expand(tokens.shape[0], -1)


class PlanningCostHead(nn.Module):
    """Tokens (and optionally ego status) -> a BEV cost map and scores of the candidate trajectories.

    Args:
        embed_dim: D of the tokens.
        token_shape: ``(Ht, Wt)`` of the token grid.
        patch: BEV cells per token side.
        grid: the BEV grid the cost map lies on (candidate waypoints are looked up on it).
        candidates: (T, K, 2) candidate trajectories in the LiDAR frame.
        hidden_dim: hidden width of the cost-map head (0: linear).
        ego_status_dim: features of the ego status (0: the head reads the tokens only).
        ego_hidden_dim: hidden width of the ego-status MLP.
        prior: ``scene`` or ``constant`` (see the module's docstring).
        prior_hidden_dim: hidden width of the scene prior's MLP.
        decision: how ``plan`` chooses, ``least_expected_distance`` or ``lowest_cost`` (module docstring).
    """

    def __init__(
        self,
        embed_dim: int,
        token_shape: tuple[int, int],
        patch: int,
        grid: BevGrid,
        candidates: torch.Tensor,
        hidden_dim: int = 0,
        ego_status_dim: int = 0,
        ego_hidden_dim: int = 64,
        prior: PriorKind = "scene",
        prior_hidden_dim: int = 64,
        decision: PlanDecision = "least_expected_distance",
    ) -> None:
        super().__init__()
        if prior not in PRIOR_KINDS:
            raise ValueError(f"prior must be one of {PRIOR_KINDS}, got {prior!r}")
        if decision not in PLAN_DECISIONS:
            raise ValueError(f"decision must be one of {PLAN_DECISIONS}, got {decision!r}")
        self.decision = decision
        self.cost_map = TokenCellHead(embed_dim, token_shape, patch, 1, hidden_dim)
        self.register_buffer("candidates", candidates.float().clone())
        # Mean distance over the waypoints between every two candidates: (T, T).
        self.register_buffer(
            "candidate_distances",
            torch.linalg.vector_norm(self.candidates[:, None] - self.candidates[None], dim=-1).mean(-1),
            persistent=False,
        )
        self.candidate_prior = (
            ScenePrior(embed_dim, len(candidates), prior_hidden_dim)
            if prior == "scene"
            else ConstantPrior(len(candidates))
        )
        low = torch.tensor(grid.point_cloud_range[:2], dtype=torch.float32)
        high = torch.tensor(grid.point_cloud_range[3:5], dtype=torch.float32)
        # Waypoints in grid_sample's normalised coordinates ([-1, 1] over the range, x then y): (1, T, K, 2).
        self.register_buffer("sample_points", ((self.candidates - low) / (high - low) * 2 - 1)[None])
        self.ego_status_mlp = (
            nn.Sequential(
                nn.Linear(ego_status_dim, ego_hidden_dim),
                nn.GELU(),
                nn.Linear(ego_hidden_dim, len(candidates)),
            )
            if ego_status_dim
            else None
        )

    @property
    def uses_ego_status(self) -> bool:
        return self.ego_status_mlp is not None

    def forward(
        self, tokens: torch.Tensor, ego_status: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Score the candidates.

        Args:
            tokens: (B, N, D) frozen tokens.
            ego_status: (B, F) ego status, read only by a head built with ``ego_status_dim``.

        Returns:
            scores: (B, T) higher is better.
            cost: (B, 1, H, W) the cost map.
        """
        cost = self.cost_map(tokens)  # (B, 1, H, W)
        points = self.sample_points.expand(cost.shape[0], -1, -1, -1)  # (B, T, K, 2)
        waypoint_cost = F.grid_sample(
            cost, points, align_corners=False, padding_mode="border"
        )  # (B, 1, T, K)
        scores = self.candidate_prior(tokens) - waypoint_cost[:, 0].sum(dim=-1)  # (B, T)
        if self.ego_status_mlp is not None:
            if ego_status is None:
                raise ValueError("this planning head reads the ego status; none was given")
            scores = scores + self.ego_status_mlp(ego_status)
        return scores, cost

    def plan(self, scores: torch.Tensor) -> torch.Tensor:
        """The chosen candidate of each sample (by ``decision``): (B, T) scores -> (B, K, 2) trajectories."""
        if self.decision == "lowest_cost":
            return self.candidates[scores.argmax(dim=1)]
        expected_distance = scores.softmax(dim=1) @ self.candidate_distances  # (B, T)
        return self.candidates[expected_distance.argmin(dim=1)]
