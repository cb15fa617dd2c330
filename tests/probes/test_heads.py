"""Probe heads: token -> cell layout, output shapes, gradients, the planning cost head's scoring."""

import math

import pytest
import torch

from bevjepa.encoders.tokens import bev_to_tokens
from bevjepa.grid import BevGrid
from bevjepa.probes.heads import TokenCellHead, map_head, occupancy_head, tokens_to_cells
from bevjepa.probes.planning_head import (
    NO_TARGET,
    PlanningCostHead,
    candidates_in_lidar_frame,
    nearest_candidate,
)

GRID = BevGrid(point_cloud_range=(-12.8, -12.8, -3.0, 12.8, 12.8, 3.0), voxel_size=(0.4, 0.4, 0.25))


def test_tokens_to_cells_puts_each_token_on_its_own_cells():
    # One channel, the token index repeated on its 2 x 2 cells: pooling back gives the index per token.
    token_shape, patch = (3, 4), 2
    index = torch.arange(12, dtype=torch.float32)
    values = index[None, :, None].expand(1, 12, patch * patch)  # (1, N, 4)
    cells = tokens_to_cells(values, token_shape, patch)  # (1, 1, 6, 8)
    assert cells.shape == (1, 1, 6, 8)
    assert torch.equal(bev_to_tokens(cells, patch)[0, :, 0], index)
    # Within a token, values are row-major: cell (0, 1) of token 0 holds the second value.
    values = torch.arange(4, dtype=torch.float32).view(1, 1, 4).expand(1, 12, 4)
    cells = tokens_to_cells(values, token_shape, patch)
    assert cells[0, 0, :2, :2].tolist() == [[0.0, 1.0], [2.0, 3.0]]


def test_heads_shapes_and_gradients():
    tokens = torch.randn(2, 16, 8, requires_grad=True)
    occupancy = occupancy_head(8, (4, 4), 2)
    assert occupancy(tokens).shape == (2, 4, 8, 8)
    assert map_head(8, (4, 4), 2, hidden_dim=16)(tokens).shape == (2, 6, 8, 8)
    TokenCellHead(8, (4, 4), 2, 3, hidden_dim=5)(tokens).sum().backward()
    assert tokens.grad is not None and tokens.grad.abs().sum() > 0


def test_candidates_in_lidar_frame_turn_forward_into_plus_y():
    forward = torch.tensor([[[1.0, 0.0], [2.0, 0.0]]])  # (1, 2, 2) ego x forward
    moved = candidates_in_lidar_frame(forward, (0.0, -0.9, math.pi / 2))
    assert torch.allclose(moved, torch.tensor([[[0.0, 0.1], [0.0, 1.1]]]), atol=1e-6)


def test_nearest_candidate_uses_valid_steps_only():
    candidates = torch.tensor([[[0.0, 1.0], [0.0, 2.0]], [[0.0, 1.0], [0.0, 9.0]]])  # (2, 2, 2)
    logged = torch.tensor([[[0.0, 1.0], [0.0, 9.0]]] * 3)
    valid = torch.tensor([[True, True], [True, False], [False, False]])
    assert nearest_candidate(candidates, logged, valid).tolist() == [1, 0, NO_TARGET]


def test_planning_head_prefers_the_candidate_off_a_costly_cell():
    # Cell centres lie at -12.8 + (i + 0.5) * 3.2 m: columns 4, 5 at x = 1.6, 4.8; rows 5, 6 at y = 4.8, 8.0.
    candidates = torch.tensor([[[1.6, 4.8], [1.6, 8.0]], [[4.8, 4.8], [4.8, 8.0]]])  # (2, 2, 2)
    head = PlanningCostHead(8, (4, 4), 2, GRID, candidates)
    with torch.no_grad():
        head.cost_map.net.weight.zero_()
        head.cost_map.net.bias.zero_()
        head.cost_map.net.bias[0] = 1.0  # cell (0, 0) of every token, i.e. even rows and columns, costs 1
    scores, cost = head(torch.randn(1, 16, 8))
    assert cost.shape == (1, 1, 8, 8)
    # The first candidate ends in row 6, column 4 (costly); the second visits only odd rows or columns.
    assert torch.allclose(scores, torch.tensor([[-1.0, 0.0]]), atol=1e-5)
    assert head.plan(scores).tolist() == [candidates[1].tolist()]
    with_status = PlanningCostHead(8, (4, 4), 2, GRID, candidates, ego_status_dim=4)
    assert with_status(torch.randn(3, 16, 8), torch.randn(3, 4))[0].shape == (3, 2)


def test_the_plan_is_the_candidate_least_distant_in_expectation_or_the_best_scored():
    # Three straight candidates side by side, 1 m apart: mean distances 1 m to a neighbour, 2 m end to end.
    candidates = torch.tensor([[[x, 4.0], [x, 8.0]] for x in (0.0, 1.0, 2.0)])  # (3, 2, 2)
    belief = torch.tensor([[0.4, 0.3, 0.3], [0.1, 0.1, 0.8]])
    # Expected distances: row 1: 0.9, 0.7, 1.1 (the centre); row 2: 1.7, 0.9, 0.3 (the confident choice).
    scores = belief.log()
    hedged = PlanningCostHead(8, (4, 4), 2, GRID, candidates)
    torch.testing.assert_close(
        hedged.candidate_distances, torch.tensor([[0.0, 1.0, 2.0], [1.0, 0.0, 1.0], [2.0, 1.0, 0.0]])
    )
    assert hedged.plan(scores).tolist() == [candidates[1].tolist(), candidates[2].tolist()]
    best_scored = PlanningCostHead(8, (4, 4), 2, GRID, candidates, decision="lowest_cost")
    assert best_scored.plan(scores).tolist() == [candidates[0].tolist(), candidates[2].tolist()]
    with pytest.raises(ValueError, match="decision must be one of"):
        PlanningCostHead(8, (4, 4), 2, GRID, candidates, decision="softest")


@pytest.mark.parametrize("prior", ["scene", "constant"])
def test_planning_head_learns_how_often_each_candidate_is_driven(prior):
    # Tokens that carry nothing: only the candidate prior can tell the candidates apart.
    candidates = torch.tensor([[[1.6, 4.8], [1.6, 8.0]], [[4.8, 4.8], [4.8, 8.0]]])  # (2, 2, 2)
    torch.manual_seed(0)
    head = PlanningCostHead(8, (4, 4), 2, GRID, candidates, prior=prior)
    optimizer = torch.optim.Adam(head.parameters(), lr=0.05)
    targets = torch.tensor([1, 1, 1, 0])  # candidate 1 driven three times in four
    for _ in range(100):
        scores, _ = head(torch.zeros(4, 16, 8))
        loss = torch.nn.functional.cross_entropy(scores, targets)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    probabilities = head(torch.zeros(1, 16, 8))[0].softmax(dim=1)[0]
    assert torch.allclose(probabilities, torch.tensor([0.25, 0.75]), atol=0.02)


def test_the_prior_reads_what_a_cost_map_cannot():
    """Two kinds of scene whose tokens are uniform over the grid, and two candidates whose waypoints sit at the
    same places within their tokens (columns 4 and 6, rows 5 and 6): the cost map gives both the same cost,
    so only the scene prior can drive one candidate in one kind of scene and the other in the other."""
    candidates = torch.tensor([[[1.6, 4.8], [1.6, 8.0]], [[8.0, 4.8], [8.0, 8.0]]])  # (2, 2, 2)
    scenes = torch.zeros(2, 16, 8)
    scenes[0, :, 0], scenes[1, :, 0] = 1.0, -1.0
    targets = torch.tensor([0, 1])
    torch.manual_seed(0)
    head = PlanningCostHead(8, (4, 4), 2, GRID, candidates)
    optimizer = torch.optim.Adam(head.parameters(), lr=0.05)
    for _ in range(100):
        loss = torch.nn.functional.cross_entropy(head(scenes)[0], targets)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    scores, cost = head(scenes)
    assert scores.argmax(dim=1).tolist() == [0, 1]
    torch.testing.assert_close(cost[:, 0, 5:7, 4], cost[:, 0, 5:7, 6])


def test_the_constant_prior_cannot_tell_uniform_scenes_apart_and_unknown_priors_fail():
    candidates = torch.tensor([[[1.6, 4.8], [1.6, 8.0]], [[8.0, 4.8], [8.0, 8.0]]])  # (2, 2, 2)
    scenes = torch.zeros(2, 16, 8)
    scenes[0, :, 0], scenes[1, :, 0] = 1.0, -1.0
    torch.manual_seed(0)
    head = PlanningCostHead(8, (4, 4), 2, GRID, candidates, prior="constant")
    optimizer = torch.optim.Adam(head.parameters(), lr=0.05)
    for _ in range(100):
        loss = torch.nn.functional.cross_entropy(head(scenes)[0], torch.tensor([0, 1]))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    scores, _ = head(scenes)
    # Whatever it learned, it prefers one candidate by the same margin in both kinds of scene.
    torch.testing.assert_close(scores[0, 0] - scores[0, 1], scores[1, 0] - scores[1, 1], atol=1e-4, rtol=0)
    with pytest.raises(ValueError, match="prior"):
        PlanningCostHead(8, (4, 4), 2, GRID, candidates, prior="learned")
