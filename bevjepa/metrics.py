"""Open-loop planning metrics: L2 to the logged trajectory and collisions of the ego box with GT agent boxes.

Both conventions of the literature are reported (design section 5), from the same per-step values:

- ``*_at_{h}`` (UniAD, "NoAvg"): the value at the horizon's waypoint only;
- ``*_avg_{h}`` (ST-P3 / VAD, "TemAvg"): the mean of the per-step values over all waypoints up to the horizon.

Per-step values are means over the samples whose step is valid (it exists before the end of the scene); invalid
steps count neither in L2 nor in collisions. L2 is in metres, collision rates in percent.

Trajectories are ego-origin positions (the rear axle in nuScenes) in the current LiDAR frame. The ego box is
placed ``ego_centre_ahead`` metres ahead of each waypoint along the heading, the heading being the direction
of travel since the previous waypoint (or the start); while the ego moves less than ``min_heading_step`` in
one step it keeps its previous heading. Agent boxes are ``[cx, cy, cz, dx, dy, dz, yaw]`` (``dx`` = length
along the heading, see ``bevjepa.geometry.boxes``); the ego box and an agent box collide when their BEV
rectangles overlap with a positive area (touching edges do not collide), tested exactly with separating axes.
"""

import math
from collections.abc import Mapping, Sequence

import torch
from torchmetrics import Metric

# nuScenes ego vehicle (Renault Zoe) footprint used by the planning benchmarks.
EGO_LENGTH_M = 4.084
EGO_WIDTH_M = 1.85
# The benchmarks place the ego box centre 0.5 m ahead of the trajectory point (the rear axle).
EGO_CENTRE_AHEAD_M = 0.5
# nuScenes LIDAR_TOP sits 0.943713 m ahead of the rear axle with its x axis to the right and y axis forward:
# in the current LiDAR frame the ego origin is at (0, -0.943713) and the ego heads along +y.
NUSCENES_LIDAR_EGO_ORIGIN_XY = (0.0, -0.943713)
NUSCENES_LIDAR_EGO_YAW = math.pi / 2
# Keyframes every 0.5 s: 1 s, 2 s, 3 s are future steps 2, 4, 6 (1-based).
PLANNING_HORIZONS_STEPS = {"1s": 2, "2s": 4, "3s": 6}
# Below this displacement per step (0.2 m in 0.5 s = 0.4 m/s) the direction of travel is noise.
MIN_HEADING_STEP_M = 0.2


def waypoint_l2(pred: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
    """(B, K) Euclidean distance between predicted and logged waypoints (B, K, 2)."""
    return torch.linalg.vector_norm(pred - gt, dim=-1)


def trajectory_headings(
    trajectory: torch.Tensor,
    start_xy: Sequence[float] = NUSCENES_LIDAR_EGO_ORIGIN_XY,
    start_yaw: float = NUSCENES_LIDAR_EGO_YAW,
    min_heading_step: float = MIN_HEADING_STEP_M,
) -> torch.Tensor:
    """The ego's heading at each waypoint: the direction of travel, held while the ego (nearly) stands still.

    Args:
        trajectory: (B, K, 2) waypoints.
        start_xy: the ego origin now, in the same frame.
        start_yaw: the ego heading now.
        min_heading_step: shorter moves in one step keep the previous heading.

    Returns:
        (B, K) yaw in radians.
    """
    B, K, _ = trajectory.shape
    start = trajectory.new_tensor(start_xy).expand(B, 1, 2)
    steps = torch.diff(torch.cat([start, trajectory], dim=1), dim=1)  # (B, K, 2)
    moving = torch.linalg.vector_norm(steps, dim=-1) >= min_heading_step  # (B, K)
    headings = torch.atan2(steps[..., 1], steps[..., 0])  # (B, K)
    previous = trajectory.new_full((B,), start_yaw)
    held = []
    for k in range(K):
        previous = torch.where(moving[:, k], headings[:, k], previous)
        held.append(previous)
    return torch.stack(held, dim=1)


def _rectangle_axes(yaw: torch.Tensor) -> torch.Tensor:
    """(..., 2, 2) unit length and width axes of rectangles with the given yaw (...)."""
    cos, sin = torch.cos(yaw), torch.sin(yaw)
    return torch.stack([torch.stack([cos, sin], dim=-1), torch.stack([-sin, cos], dim=-1)], dim=-2)


def rectangles_overlap(first: torch.Tensor, second: torch.Tensor) -> torch.Tensor:
    """Whether pairs of oriented BEV rectangles overlap with a positive area (separating axis theorem).

    Args:
        first: (..., 5) ``[cx, cy, length, width, yaw]``.
        second: (..., 5) the same, broadcastable against ``first``.

    Returns:
        (...) bool.
    """
    first, second = torch.broadcast_tensors(first, second)
    axes_first, axes_second = _rectangle_axes(first[..., 4]), _rectangle_axes(second[..., 4])  # (..., 2, 2)
    half_first, half_second = first[..., 2:4] / 2, second[..., 2:4] / 2  # (..., 2)
    offset = second[..., :2] - first[..., :2]  # (..., 2)
    candidate_axes = torch.cat([axes_first, axes_second], dim=-2)  # (..., 4, 2)
    # Half-extent of a rectangle along an axis: sum over its own axes of half-size * |own axis . axis|.
    extent_first = (half_first.unsqueeze(-2) * (candidate_axes @ axes_first.transpose(-1, -2)).abs()).sum(-1)
    extent_second = (half_second.unsqueeze(-2) * (candidate_axes @ axes_second.transpose(-1, -2)).abs()).sum(
        -1
    )
    distance = (candidate_axes @ offset.unsqueeze(-1)).squeeze(-1).abs()  # (..., 4)
    return (distance < extent_first + extent_second).all(dim=-1)


def ego_boxes(
    trajectory: torch.Tensor,
    ego_length: float = EGO_LENGTH_M,
    ego_width: float = EGO_WIDTH_M,
    ego_centre_ahead: float = EGO_CENTRE_AHEAD_M,
    start_xy: Sequence[float] = NUSCENES_LIDAR_EGO_ORIGIN_XY,
    start_yaw: float = NUSCENES_LIDAR_EGO_YAW,
    min_heading_step: float = MIN_HEADING_STEP_M,
) -> torch.Tensor:
    """(B, K, 5) ``[cx, cy, length, width, yaw]`` BEV rectangles of the ego at each waypoint of (B, K, 2)."""
    yaw = trajectory_headings(trajectory, start_xy, start_yaw, min_heading_step)  # (B, K)
    forward = torch.stack([torch.cos(yaw), torch.sin(yaw)], dim=-1)  # (B, K, 2)
    centres = trajectory + ego_centre_ahead * forward
    size = trajectory.new_tensor([ego_length, ego_width]).expand(*yaw.shape, 2)
    return torch.cat([centres, size, yaw.unsqueeze(-1)], dim=-1)


def planning_collisions(
    pred: torch.Tensor,
    future_boxes: Sequence[Sequence[torch.Tensor]],
    valid: torch.Tensor,
    ego_length: float = EGO_LENGTH_M,
    ego_width: float = EGO_WIDTH_M,
    ego_centre_ahead: float = EGO_CENTRE_AHEAD_M,
    start_xy: Sequence[float] = NUSCENES_LIDAR_EGO_ORIGIN_XY,
    start_yaw: float = NUSCENES_LIDAR_EGO_YAW,
    min_heading_step: float = MIN_HEADING_STEP_M,
) -> torch.Tensor:
    """Whether the ego box at each planned waypoint overlaps a GT agent box of the same future step.

    Args:
        pred: (B, K, 2) planned ego-origin positions in the current LiDAR frame.
        future_boxes: per sample, per future step, (M, 7) agent boxes ``[cx, cy, cz, dx, dy, dz, yaw]``.
        valid: (B, K) bool, False past the end of the scene.
        ego_length, ego_width: ego footprint in metres.
        ego_centre_ahead: distance from the trajectory point forward to the ego box centre.
        start_xy, start_yaw: the ego origin and heading now (nuScenes LIDAR_TOP frame by default).
        min_heading_step: see ``trajectory_headings``.

    Returns:
        (B, K) bool, False at invalid steps.
    """
    B, K, _ = pred.shape
    if len(future_boxes) != B or any(len(steps) != K for steps in future_boxes):
        raise ValueError(
            f"future_boxes must hold {B} samples of {K} steps each, as the trajectories {tuple(pred.shape)}"
        )
    ego = ego_boxes(pred, ego_length, ego_width, ego_centre_ahead, start_xy, start_yaw, min_heading_step)
    agents = [boxes.to(pred) for steps in future_boxes for boxes in steps]  # B * K tensors (M, 7)
    counts = torch.tensor([len(boxes) for boxes in agents], device=pred.device)  # (B * K,)
    collided = torch.zeros(B * K, dtype=torch.bool, device=pred.device)
    if counts.sum() > 0:
        agent_rectangles = torch.cat(agents)[:, [0, 1, 3, 4, 6]]  # (A, 5)
        owner = torch.repeat_interleave(torch.arange(B * K, device=pred.device), counts)  # (A,)
        overlaps = rectangles_overlap(ego.reshape(B * K, 5)[owner], agent_rectangles)  # (A,)
        collided.index_put_((owner,), overlaps, accumulate=True)
    return collided.reshape(B, K) & valid.bool()


def horizon_summary(
    step_sums: torch.Tensor,
    step_counts: torch.Tensor,
    name: str,
    horizons_steps: Mapping[str, int],
    scale: float = 1.0,
) -> dict[str, torch.Tensor]:
    """Both conventions at each horizon from per-step sums over valid samples.

    Args:
        step_sums: (K,) per-step sum of a value over the valid samples.
        step_counts: (K,) per-step number of valid samples.
        name: metric name, e.g. ``l2``.
        horizons_steps: horizon name -> number of steps (1-based), e.g. ``{"1s": 2}``.
        scale: factor on the values (100 for percentages).

    Returns:
        ``{f"{name}_at_{h}": value at step h, f"{name}_avg_{h}": mean of the per-step values up to h}``; NaN
        where a step has no valid sample.
    """
    per_step = scale * step_sums.double() / step_counts.double()  # (K,)
    summary = {}
    for horizon, steps in horizons_steps.items():
        if not 1 <= steps <= per_step.shape[0]:
            raise ValueError(f"horizon {horizon} is {steps} steps, the trajectories have {per_step.shape[0]}")
        summary[f"{name}_at_{horizon}"] = per_step[steps - 1]
        summary[f"{name}_avg_{horizon}"] = per_step[:steps].mean()
    return summary


def planning_l2(
    pred: torch.Tensor,
    gt: torch.Tensor,
    valid: torch.Tensor,
    horizons_steps: Mapping[str, int] = PLANNING_HORIZONS_STEPS,
) -> dict[str, torch.Tensor]:
    """L2 (m) of one batch at each horizon in both conventions (``l2_at_{h}``, ``l2_avg_{h}``).

    Args:
        pred: (B, K, 2) planned waypoints.
        gt: (B, K, 2) logged waypoints.
        valid: (B, K) bool, False past the end of the scene.
        horizons_steps: horizon name -> number of steps.
    """
    mask = valid.bool()
    errors = torch.where(mask, waypoint_l2(pred, gt), 0.0)
    return horizon_summary(errors.sum(0), mask.sum(0), "l2", horizons_steps)


class PlanningMetrics(Metric):
    """L2 and collision rate at each horizon, both conventions, accumulated over batches.

    ``compute()`` returns ``l2_at_{h}``, ``l2_avg_{h}`` (m) and ``collision_at_{h}``, ``collision_avg_{h}`` (%)
    for every horizon.

    Args:
        num_steps: K, the future steps of every trajectory.
        horizons_steps: horizon name -> number of steps (1 s, 2 s, 3 s = 2, 4, 6 at 0.5 s).
        ego_length, ego_width, ego_centre_ahead: the ego box (see ``planning_collisions``).
        start_xy, start_yaw: the ego origin and heading now in the trajectories' frame (nuScenes LIDAR_TOP).
    """

    full_state_update = False

    def __init__(
        self,
        num_steps: int = 6,
        horizons_steps: Mapping[str, int] = PLANNING_HORIZONS_STEPS,
        ego_length: float = EGO_LENGTH_M,
        ego_width: float = EGO_WIDTH_M,
        ego_centre_ahead: float = EGO_CENTRE_AHEAD_M,
        start_xy: tuple[float, float] = NUSCENES_LIDAR_EGO_ORIGIN_XY,
        start_yaw: float = NUSCENES_LIDAR_EGO_YAW,
    ) -> None:
        super().__init__()
        self.num_steps = num_steps
        self.horizons_steps = dict(horizons_steps)
        self.ego_length, self.ego_width, self.ego_centre_ahead = ego_length, ego_width, ego_centre_ahead
        self.start_xy, self.start_yaw = start_xy, start_yaw
        self.add_state("l2_sum", torch.zeros(num_steps, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("collision_sum", torch.zeros(num_steps, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("valid_count", torch.zeros(num_steps, dtype=torch.float64), dist_reduce_fx="sum")

    def update(
        self,
        pred: torch.Tensor,
        gt: torch.Tensor,
        valid: torch.Tensor,
        future_boxes: Sequence[Sequence[torch.Tensor]],
    ) -> None:
        """Add a batch: (B, K, 2) planned and logged waypoints, (B, K) valid steps, per-step agent boxes."""
        if pred.shape[1] != self.num_steps:
            raise ValueError(
                f"PlanningMetrics expects {self.num_steps} steps, got trajectories {tuple(pred.shape)}"
            )
        mask = valid.bool()
        collided = planning_collisions(
            pred,
            future_boxes,
            mask,
            self.ego_length,
            self.ego_width,
            self.ego_centre_ahead,
            self.start_xy,
            self.start_yaw,
        )
        self.l2_sum += torch.where(mask, waypoint_l2(pred, gt), 0.0).sum(0).double()
        self.collision_sum += collided.sum(0).double()
        self.valid_count += mask.sum(0).double()

    def compute(self) -> dict[str, torch.Tensor]:
        l2 = horizon_summary(self.l2_sum, self.valid_count, "l2", self.horizons_steps)
        collision = horizon_summary(
            self.collision_sum, self.valid_count, "collision", self.horizons_steps, 100.0
        )
        return {**l2, **collision}
