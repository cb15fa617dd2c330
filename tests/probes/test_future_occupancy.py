"""Future occupancy: class maps carried from a future keyframe's frame into the current one."""

import torch

from bevjepa.grid import BevGrid
from bevjepa.probes.future_occupancy import (
    decode_future_occupancy,
    future_labels_on_covered_cells,
    warp_classes_to_current_frame,
)
from bevjepa.probes.heads import IGNORE_INDEX

GRID = BevGrid(point_cloud_range=(-12.8, -12.8, -3.0, 12.8, 12.8, 3.0), voxel_size=(0.4, 0.4, 0.25))
CELL = 3.2


def _translation(dx: float, dy: float) -> torch.Tensor:
    pose = torch.eye(4)
    pose[0, 3], pose[1, 3] = dx, dy
    return pose[None]


def test_a_translation_by_one_cell_moves_the_class_map_by_one_cell():
    classes = torch.randint(0, 4, (1, 8, 8), generator=torch.Generator().manual_seed(0))
    # Keyframe k's origin lies one cell ahead in x of the current one: its cell (r, c) is current (r, c + 1).
    warped = warp_classes_to_current_frame(classes, _translation(CELL, 0.0), GRID)
    assert torch.equal(warped[0, :, 1:], classes[0, :, :-1])
    assert (warped[0, :, 0] == IGNORE_INDEX).all()  # current cells outside keyframe k's grid
    # And one cell in -y: rows move up by one.
    warped = warp_classes_to_current_frame(classes, _translation(0.0, -CELL), GRID)
    assert torch.equal(warped[0, :-1], classes[0, 1:])
    assert (warped[0, -1] == IGNORE_INDEX).all()


def test_a_quarter_turn_rotates_the_class_map():
    classes = torch.arange(64).view(1, 8, 8) % 4
    pose = torch.eye(4)
    pose[:2, :2] = torch.tensor([[0.0, -1.0], [1.0, 0.0]])  # frame k is the current one turned by +90 degrees
    warped = warp_classes_to_current_frame(classes, pose[None], GRID)
    # Frame-k cell (r, c) at (x, y) lands on the current point (-y, x): current cell (c, 7 - r).
    rows, cols = torch.meshgrid(torch.arange(8), torch.arange(8), indexing="ij")
    assert torch.equal(warped[0], classes[0][7 - cols, rows])


def test_future_labels_ignore_uncovered_cells_and_invalid_steps():
    labels = torch.ones(2, 3, 8, 8, dtype=torch.long)
    poses = torch.cat([_translation(CELL, 0.0)] * 3)[None].repeat(2, 1, 1, 1)  # (2, 3, 4, 4)
    valid = torch.tensor([[True, True, True], [True, False, False]])
    poses[~valid] = 0  # the data's convention past the end of a scene
    kept = future_labels_on_covered_cells(labels, poses, valid, GRID)
    assert (kept[0, :, :, 0] == IGNORE_INDEX).all() and (kept[0, :, :, 1:] == 1).all()
    assert (kept[1, 1:] == IGNORE_INDEX).all()


def test_decode_future_occupancy_uses_the_head_then_warps():
    class ConstantMap(torch.nn.Module):
        def forward(self, tokens):  # (B, N, D) -> (B, 4, 8, 8): class 2 in column 3, class 0 elsewhere
            logits = torch.zeros(tokens.shape[0], 4, 8, 8)
            logits[:, 0] = 1
            logits[:, 2, :, 3] = 2
            return logits

    poses = _translation(CELL, 0.0)[:, None].repeat(1, 2, 1, 1)  # (1, 2, 4, 4)
    decoded = decode_future_occupancy(
        ConstantMap(), torch.zeros(1, 2, 16, 4), poses, torch.ones(1, 2).bool(), GRID
    )
    assert decoded.shape == (1, 2, 8, 8)
    assert (decoded[0, :, :, 4] == 2).all() and (decoded[0, :, :, 3] == 0).all()
