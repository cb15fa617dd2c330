"""Controls -> world-model actions: the same conventions as the DataModule's logged actions."""

import math

import torch

from bevjepa.jepa.future_geometry import actions_in_step_frames, pose_from_action
from bevjepa.metrics import NUSCENES_LIDAR_EGO_ORIGIN_XY
from bevjepa.planning.kinematics import integrate_controls, world_model_actions


def test_constant_speed_straight_ahead_moves_along_lidar_y() -> None:
    controls = torch.zeros(1, 6, 2, dtype=torch.float64)
    actions, poses, trajectory = world_model_actions(integrate_controls(controls, torch.tensor([4.0])))
    steps = torch.arange(1, 7, dtype=torch.float64)
    assert torch.allclose(trajectory[0, :, 0], torch.zeros(6, dtype=torch.float64), atol=1e-9)
    assert torch.allclose(trajectory[0, :, 1], NUSCENES_LIDAR_EGO_ORIGIN_XY[1] + 2.0 * steps)
    assert torch.allclose(actions[0], torch.tensor([[0.0, 2.0, 0.0, 4.0]] * 6, dtype=torch.float64))
    assert torch.allclose(poses[0, :, 1, 3], 2.0 * steps) and torch.allclose(
        poses[0, :, 0, 0], torch.ones(6, dtype=torch.float64)
    )


def test_left_turn_goes_to_negative_lidar_x_and_actions_chain_to_the_poses() -> None:
    controls = torch.tensor([[[0.5, 0.3]] * 6], dtype=torch.float64)
    rollout = integrate_controls(controls, torch.tensor([5.0]))
    actions, poses, trajectory = world_model_actions(rollout)
    assert (trajectory[0, 1:, 0] < 0).all(), "left of a LiDAR whose x axis points right is -x"
    assert torch.allclose(actions[0, :, 2], torch.full((6,), 0.15, dtype=torch.float64), atol=1e-6)
    assert torch.allclose(
        actions[0, :, 3], 5.0 + 0.5 * (torch.arange(6, dtype=torch.float64) + 0.5) * 0.5, atol=1e-6
    )
    # Step-frame actions composed one after the other reproduce each step's ego displacement and heading.
    step = actions_in_step_frames(actions.float(), poses.float())[0]
    heading = torch.cumsum(step[:, 2], 0)
    assert torch.allclose(heading, torch.atan2(poses[0, :, 1, 0], poses[0, :, 0, 0]).float(), atol=1e-5)
    assert torch.allclose(pose_from_action(step[:1])[0, :2, 3].float(), actions[0, 0, :2].float(), atol=1e-6)


def test_braking_stops_without_reversing_and_turning_needs_speed() -> None:
    controls = torch.tensor([[[-8.0, 0.5]] * 4], dtype=torch.float64)
    rollout = integrate_controls(controls, torch.tensor([2.0]))
    assert (rollout.end_speeds >= 0).all() and rollout.end_speeds[0, -1] == 0
    assert rollout.ego_poses[0, -1, 0] < 0.3 and abs(rollout.ego_poses[0, -1, 2]) < math.radians(10)
