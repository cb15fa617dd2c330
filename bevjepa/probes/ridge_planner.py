"""The ridge planner: a linear readout of the ego's future trajectory from the whole frozen token grid.

Where the planning-cost head can only rank fixed candidates by a cost map and a prior, this planner regresses
the waypoints themselves, in closed form (``KernelRidge``), from every token at once: no training loop, no
head seed, so its numbers move only with the features. It is the planning counterpart of a linear probe, and
it separates what the features know about the ego's future along the route (how far: mostly the ego's speed)
from across it (where the road goes). With ego status the status is a second feature block of equal weight.

It is fitted on the training samples whose every future step was logged (a scene's last keyframes have fewer);
with none, it plans the mean logged trajectory.
"""

import torch

from bevjepa.metrics import PlanningMetrics
from bevjepa.probes.ego_status_probe import mean_trajectory
from bevjepa.probes.features import SplitFeatures
from bevjepa.probes.kernel_ridge import KernelRidge

RIDGE_PLANNERS = {"ridge": False, "ridge_with_ego_status": True}  # name -> reads the ego status


def ridge_plans(
    train: SplitFeatures,
    method: str,
    subset: torch.Tensor,
    evaluated: SplitFeatures,
    with_ego_status: bool,
    ridge: float,
) -> torch.Tensor:
    """Plans for every sample of ``evaluated`` from a ridge fitted on the training samples ``subset``.

    Args:
        train: training-split features and labels.
        method: whose tokens the planner reads.
        subset: (S,) indices of the training samples it may read.
        evaluated: the split it plans for.
        with_ego_status: read the ego status too (standardised on the training samples, then a block).
        ridge: ``KernelRidge`` regularisation.

    Returns:
        (S', K, 2) float32 planned waypoints in the LiDAR frame, as the logged trajectories.
    """
    labels = train.labels
    complete = subset[labels.valid[subset].all(dim=1)]
    if len(complete) == 0:
        fallback = mean_trajectory(labels.ego_trajectory[subset], labels.valid[subset])
        return fallback.expand(len(evaluated.labels), -1, -1).clone()
    fit_blocks = [train.tokens[method][complete]]
    eval_blocks = [evaluated.tokens[method]]
    if with_ego_status:
        status = labels.ego_status[complete]
        scale = status.std(dim=0, correction=0).clamp(min=1e-6)
        fit_blocks.append(status / scale)
        eval_blocks.append(evaluated.labels.ego_status / scale)
    trajectories = labels.ego_trajectory[complete]  # (S, K, 2)
    fitted = KernelRidge(ridge).fit(fit_blocks, trajectories.flatten(1))
    return fitted.predict(eval_blocks).float().view(-1, *trajectories.shape[1:])


def ridge_planner_evaluation(
    train: SplitFeatures, method: str, subset: torch.Tensor, evaluated: SplitFeatures, ridge: float
) -> dict[str, float]:
    """Both ridge planners scored on ``evaluated``: ``plan_{planner}_{metric}`` as ``ProbeModule`` names its
    planning metrics (L2 and collision, both conventions, each horizon)."""
    labels = evaluated.labels
    evaluation = {}
    for planner, with_ego_status in RIDGE_PLANNERS.items():
        plans = ridge_plans(train, method, subset, evaluated, with_ego_status, ridge)
        metric = PlanningMetrics(labels.future_steps)
        metric.update(plans, labels.ego_trajectory, labels.valid, labels.future_boxes)
        evaluation.update({f"plan_{planner}_{k}": float(v) for k, v in metric.compute().items()})
    return evaluation
