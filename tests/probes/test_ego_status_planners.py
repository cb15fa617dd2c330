"""Ego-status planners: constant velocity (straight, or turning at the yaw rate) and the ego-status MLP."""

import math

import torch

from bevjepa.metrics import NUSCENES_LIDAR_EGO_ORIGIN_XY, planning_l2
from bevjepa.probes.ego_status_planners import EgoStatusMLP, constant_velocity_plan

STEP_S = 0.5
TIMES = STEP_S * torch.arange(1, 7, dtype=torch.float64)  # (6,)


def test_constant_velocity_reproduces_a_straight_constant_speed_ego() -> None:
    # The ego drives at 9 m/s, slightly to the right of the LiDAR's +y (its forward) axis.
    velocity = torch.tensor([1.2, 8.9195], dtype=torch.float64)
    status = torch.tensor([[velocity[0], velocity[1], 0.0, 9.0]], dtype=torch.float64)
    logged = (
        torch.tensor(NUSCENES_LIDAR_EGO_ORIGIN_XY, dtype=torch.float64) + TIMES[:, None] * velocity
    )  # (6, 2)
    for with_yaw_rate in (False, True):
        plan = constant_velocity_plan(status, num_steps=6, step_seconds=STEP_S, with_yaw_rate=with_yaw_rate)
        assert plan.shape == (1, 6, 2)
        assert torch.allclose(plan[0], logged, atol=1e-9, rtol=0)


def test_constant_velocity_with_yaw_rate_follows_a_circle() -> None:
    # Heading +y (LiDAR frame) at 8 m/s, turning left at 0.4 rad/s: a 20 m circle centred 20 m to the left (-x).
    speed, yaw_rate, radius = 8.0, 0.4, 20.0
    start = torch.tensor(NUSCENES_LIDAR_EGO_ORIGIN_XY, dtype=torch.float64)
    centre = start + torch.tensor([-radius, 0.0], dtype=torch.float64)
    heading = math.pi / 2 + yaw_rate * TIMES  # (6,)
    logged = centre + radius * torch.stack([torch.sin(heading), -torch.cos(heading)], dim=-1)  # (6, 2)
    status = torch.tensor([[0.0, speed, yaw_rate, speed]], dtype=torch.float64)
    arc = constant_velocity_plan(status, with_yaw_rate=True)
    assert (arc[0] - logged).norm(dim=-1).max() < 1e-3
    # The straight extrapolation ends 24 m ahead, while the circle has turned 1.2 rad: 13.8 m apart.
    straight = constant_velocity_plan(status)
    assert (straight[0, -1] - logged[-1]).norm() > 5.0
    # The same right turn seen from a sample heading +x.
    status_x = torch.tensor([[speed, 0.0, -yaw_rate, speed]], dtype=torch.float64)
    right = constant_velocity_plan(status_x, with_yaw_rate=True, start_xy=(0.0, 0.0))
    heading_x = -yaw_rate * TIMES
    circle_x = torch.stack([radius * torch.sin(-heading_x), -radius * (1 - torch.cos(heading_x))], dim=-1)
    assert (right[0] - circle_x).norm(dim=-1).max() < 1e-3


def test_constant_velocity_at_rest_stays_put() -> None:
    status = torch.tensor([[0.0, 0.0, 0.3, 0.0]])  # a yaw rate at standstill (noise) moves nothing
    for with_yaw_rate in (False, True):
        plan = constant_velocity_plan(status, with_yaw_rate=with_yaw_rate)
        assert torch.equal(plan, torch.tensor(NUSCENES_LIDAR_EGO_ORIGIN_XY).expand(1, 6, 2))


def test_ego_status_mlp_shapes_gradients_and_fit() -> None:
    generator = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    planner = EgoStatusMLP(num_steps=6, hidden=64)
    # Egos heading roughly +y at 0-15 m/s with small turn rates; logged = the constant-turn-rate futures.
    speed = 15 * torch.rand(256, generator=generator)
    angle = math.pi / 2 + 0.1 * torch.randn(256, generator=generator)
    yaw_rate = 0.2 * torch.randn(256, generator=generator)
    status = torch.stack([speed * torch.cos(angle), speed * torch.sin(angle), yaw_rate, speed], dim=-1)
    logged = constant_velocity_plan(status, with_yaw_rate=True)  # (256, 6, 2)
    valid = torch.ones(256, 6, dtype=torch.bool)
    status.requires_grad_(True)
    plan = planner(status)
    assert plan.shape == (256, 6, 2)
    plan.sum().backward()
    assert status.grad is not None and status.grad.abs().sum() > 0
    status = status.detach()
    with torch.no_grad():
        initial = planning_l2(planner(status), logged, valid)["l2_avg_3s"]
    optimizer = torch.optim.Adam(planner.parameters(), lr=1e-2)
    for _ in range(300):
        optimizer.zero_grad()
        loss = (planner(status) - logged).norm(dim=-1).mean()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        trained = planning_l2(planner(status), logged, valid)["l2_avg_3s"]
    assert initial > 5.0 and trained < 0.5, (initial, trained)
