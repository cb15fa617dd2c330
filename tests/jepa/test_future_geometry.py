"""Future keyframes related to the current frame: resampled maps and actions in the step's own frame."""

import math

import torch

from bevjepa.grid import BevGrid
from bevjepa.jepa.future_geometry import actions_in_step_frames, ego_motion_compensate, warp_to_current_frame

GRID = BevGrid(point_cloud_range=(-12.8, -12.8, -3.0, 12.8, 12.8, 3.0), voxel_size=(0.4, 0.4, 0.25))


def _pose(x: float, y: float, yaw: float) -> torch.Tensor:
    pose = torch.eye(4)
    pose[:2, :2] = torch.tensor([[math.cos(yaw), -math.sin(yaw)], [math.sin(yaw), math.cos(yaw)]])
    pose[:2, 3] = torch.tensor([x, y])
    return pose


def test_identity_pose_keeps_the_map():
    maps = torch.randn(2, 3, 8, 8)
    warped, inside = warp_to_current_frame(maps, torch.eye(4).expand(2, 4, 4), GRID)
    assert torch.equal(warped, maps) and inside.all()


def test_translation_shifts_by_whole_cells():
    maps = torch.zeros(1, 1, 8, 8)
    maps[0, 0, 4, 4] = 1.0  # a cell of frame k
    # Frame k's origin lies 2 cells (6.4 m) ahead in x: its cell (4, 4) is the current cell (4, 6).
    warped, inside = warp_to_current_frame(maps, _pose(6.4, 0.0, 0.0).unsqueeze(0), GRID)
    assert warped[0, 0, 4, 6] == 1.0 and warped.sum() == 1.0
    # Current cells left of x = -6.4 m lie behind frame k's grid.
    assert not inside[0, :, :2].any() and inside[0, :, 2:].all()


def test_rotation_by_a_quarter_turn():
    maps = torch.zeros(1, 1, 8, 8)
    maps[0, 0, 4, 6] = 1.0  # centre (8.0, 1.6) m in frame k
    warped, _ = warp_to_current_frame(maps, _pose(0.0, 0.0, math.pi / 2).unsqueeze(0), GRID)
    # Frame k faces +y of the current frame: the cell lands at (-1.6, 8.0) m, row 6 and column 3.
    assert warped[0, 0, 6, 3] == 1.0 and warped.sum() == 1.0


def test_actions_are_expressed_in_the_frame_they_start_from():
    # Step 1 turns the ego by 90 degrees; step 2 then moves 2 m along its own x, i.e. +y of the current frame.
    poses = torch.stack([_pose(1.0, 0.0, math.pi / 2), _pose(1.0, 2.0, math.pi / 2)]).unsqueeze(0)
    actions = torch.tensor([[[1.0, 0.0, math.pi / 2, 2.0], [0.0, 2.0, 0.0, 4.0]]])
    local = actions_in_step_frames(actions, poses)
    torch.testing.assert_close(local, torch.tensor([[[1.0, 0.0, math.pi / 2, 2.0], [2.0, 0.0, 0.0, 4.0]]]))


def test_ego_motion_compensation_moves_the_world_against_the_ego():
    tokens = torch.zeros(1, 64, 2)
    tokens[0, 4 * 8 + 5] = torch.tensor([1.0, 2.0])  # a static object 4.8 m ahead, 1.6 m left
    known = torch.ones(1, 64, dtype=torch.bool)
    known[0, 0] = False
    # One step 3.2 m (one token) forward: the object is now one token closer.
    moved, moved_known = ego_motion_compensate(tokens, known, torch.tensor([[3.2, 0.0, 0.0, 6.4]]), GRID)
    torch.testing.assert_close(moved[0, 4 * 8 + 4], torch.tensor([1.0, 2.0]))
    assert moved[0].abs().sum() == 3.0
    cols = torch.arange(64) % 8
    assert not moved_known[0, cols == 7].any(), "the new far edge was never seen"
    assert moved_known[0, cols < 7].all(), "the unknown token (0, 0) left the grid behind the ego"
    still, still_known = ego_motion_compensate(tokens, known, torch.zeros(1, 4), GRID)
    assert torch.equal(still, tokens) and torch.equal(still_known, known)
