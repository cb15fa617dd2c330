"""The ridge planner: the ego's future waypoints regressed in closed form from the token grid (and the status)."""

import torch

from bevjepa.probes.features import SplitFeatures, SplitLabels
from bevjepa.probes.ridge_planner import ridge_planner_evaluation, ridge_plans

STEPS = 6


def _split(samples: int, speed_in_tokens: bool, generator: torch.Generator) -> SplitFeatures:
    """Straight drives at speeds of 0-10 m/s (waypoints every 0.5 s along LiDAR y). Where ``speed_in_tokens``
    one channel of one token carries the speed; otherwise the tokens are noise and only the ego status has it."""
    speed = 10 * torch.rand(samples, generator=generator)
    time = 0.5 * torch.arange(1, STEPS + 1)
    trajectory = torch.zeros(samples, STEPS, 2)
    trajectory[..., 1] = speed[:, None] * time
    tokens = torch.randn(samples, 9, 4, generator=generator)
    if speed_in_tokens:
        tokens = 0.1 * tokens
        tokens[:, 4, 2] += speed
    status = torch.stack([torch.zeros(samples), speed, torch.zeros(samples), speed], dim=1)
    labels = SplitLabels(
        sample_tokens=[f"s{i}" for i in range(samples)],
        occupancy=torch.zeros(samples, 1 + STEPS, 2, 2, dtype=torch.uint8),
        map_rasters=torch.zeros(samples, 6, 2, 2, dtype=torch.bool),
        ego_trajectory=trajectory,
        ego_status=status,
        valid=torch.ones(samples, STEPS, dtype=torch.bool),
        poses=torch.eye(4).expand(samples, STEPS, 4, 4).clone(),
        future_boxes=[[torch.zeros(0, 7) for _ in range(STEPS)] for _ in range(samples)],
    )
    return SplitFeatures(labels, {"m": tokens}, {})


def _l2(plans: torch.Tensor, split: SplitFeatures) -> float:
    return float(torch.linalg.vector_norm(plans - split.labels.ego_trajectory, dim=-1).mean())


def test_speed_shown_by_the_tokens_plans_the_drive():
    generator = torch.Generator().manual_seed(0)
    train, val = _split(120, True, generator), _split(40, True, generator)
    plans = ridge_plans(train, "m", torch.arange(120), val, with_ego_status=False, ridge=1e-3)
    mean_plan = train.labels.ego_trajectory.mean(dim=0).expand_as(plans)
    assert _l2(plans, val) < 0.1 * _l2(mean_plan, val)


def test_the_ego_status_block_carries_what_the_tokens_lack():
    generator = torch.Generator().manual_seed(1)
    train, val = _split(120, False, generator), _split(40, False, generator)
    evaluation = ridge_planner_evaluation(train, "m", torch.arange(120), val, ridge=1e-3)
    assert evaluation["plan_ridge_with_ego_status_l2_avg_3s"] < 0.1 * evaluation["plan_ridge_l2_avg_3s"]
    assert evaluation["plan_ridge_collision_avg_3s"] == 0.0  # no agents, no collisions
    assert {"plan_ridge_l2_at_1s", "plan_ridge_with_ego_status_collision_at_3s"} <= set(evaluation)


def test_incomplete_futures_stay_out_of_the_fit():
    generator = torch.Generator().manual_seed(2)
    train, val = _split(120, True, generator), _split(40, True, generator)
    train.labels.valid[::4, 3:] = False
    train.labels.ego_trajectory[::4, 3:] = 1e6  # what an unlogged step holds must not reach the fit
    plans = ridge_plans(train, "m", torch.arange(120), val, with_ego_status=False, ridge=1e-3)
    assert _l2(plans, val) < 0.5


def test_without_a_complete_training_future_the_mean_trajectory_is_planned():
    generator = torch.Generator().manual_seed(3)
    train, val = _split(4, True, generator), _split(3, True, generator)
    train.labels.valid[:, -1] = False
    plans = ridge_plans(train, "m", torch.arange(4), val, with_ego_status=True, ridge=1.0)
    expected = train.labels.ego_trajectory[:, :-1].mean(dim=0)
    torch.testing.assert_close(plans[:, :-1], expected.expand(3, -1, -1))
