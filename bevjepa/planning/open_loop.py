"""Open-loop planning on logs: plan from each logged keyframe towards the logged keyframe at the horizon (its
target-encoder tokens are the goal, as in image-goal planning) and score the planned trajectory against the
logged one with the planning metrics (L2 and collisions, both conventions)."""

import torch

from bevjepa.batch import EGO_SPEED, BevBatch, VoxelBatch
from bevjepa.metrics import PLANNING_HORIZONS_STEPS, PlanningMetrics
from bevjepa.planning.energy import LatentPlanningEnergy
from bevjepa.planning.goals import keyframe_goal
from bevjepa.planning.kinematics import integrate_controls, world_model_actions
from bevjepa.planning.optimizers import CrossEntropyMethod, RandomShooting


def _to(voxels: VoxelBatch, device: torch.device) -> VoxelBatch:
    return VoxelBatch(voxels.features.to(device), voxels.coords.to(device), voxels.batch_size)


@torch.no_grad()
def plan_logged_batch(
    energy: LatentPlanningEnergy,
    optimizer: CrossEntropyMethod | RandomShooting,
    batch: BevBatch,
    generator: torch.Generator,
) -> torch.Tensor:
    """Plan every sample of a batch towards its logged keyframe at the planner's horizon.

    Args:
        energy: the latent energy (its world model encodes the keyframes).
        optimizer: the optimiser (its horizon H must not exceed the logged future steps).
        batch: keyframes with labels (ego status) and future voxels.
        generator: the random source.

    Returns:
        (B, H, 2) planned ego positions in the current LiDAR frame.
    """
    world_model = energy.world_model
    device = world_model.device
    horizon = optimizer.settings.horizon if hasattr(optimizer, "settings") else optimizer.horizon
    if batch.futures is None or len(batch.futures.voxels) < horizon or batch.labels is None:
        raise ValueError(f"open-loop planning needs labels and the voxels of {horizon} future keyframes")
    voxels = _to(batch.voxels, device)
    context, observed = world_model.context_tokens(voxels), world_model.target_tokens(voxels)
    goal = keyframe_goal(world_model.target_tokens(_to(batch.futures.voxels[horizon - 1], device)))
    speed = batch.labels.ego_status[:, EGO_SPEED].to(device)
    result = optimizer.plan(energy.bind(context, observed, speed, goal), len(speed), generator, device=device)
    _, _, trajectory = world_model_actions(integrate_controls(result.actions.double(), speed.double()))
    return trajectory.float()


def open_loop_metrics(
    energy: LatentPlanningEnergy,
    optimizer: CrossEntropyMethod | RandomShooting,
    batches,
    seed: int = 0,
) -> dict[str, float]:
    """Planning metrics of latent MPC over logged batches (only samples whose horizon keyframe exists), at
    the metric horizons (1 s, 2 s, 3 s) within the planner's horizon.

    Returns:
        ``PlanningMetrics.compute()`` as floats, plus ``samples``.
    """
    metrics, samples = None, 0
    generator = torch.Generator(energy.world_model.device).manual_seed(seed)
    for batch in batches:
        trajectory = plan_logged_batch(energy, optimizer, batch, generator).cpu()
        horizon = trajectory.shape[1]
        labels, valid = batch.labels, batch.futures.valid[:, :horizon]
        keep = valid[:, -1]
        if not keep.any():
            continue
        if metrics is None:
            horizons = {name: steps for name, steps in PLANNING_HORIZONS_STEPS.items() if steps <= horizon}
            metrics = PlanningMetrics(horizon, horizons)
        metrics.update(
            trajectory[keep],
            labels.ego_trajectory[keep, :horizon],
            valid[keep],
            [boxes[:horizon] for boxes, k in zip(labels.future_boxes, keep.tolist(), strict=True) if k],
        )
        samples += int(keep.sum())
    if metrics is None:
        return {"samples": 0}
    return {**{k: float(v) for k, v in metrics.compute().items()}, "samples": samples}
