"""The energy-term spread recorder: what it records is each term's std across the candidates of a problem."""

import math

import pytest
import torch
from tiny_world_model import GRID, tiny_world_model

from bevjepa.encoders.tokens import token_grid_shape
from bevjepa.planning.energy import EnergyWeights, LatentPlanningEnergy
from bevjepa.planning.energy_spread import TermSpreadRecorder, spread_table, summarise_spreads
from bevjepa.planning.goals import keyframe_goal


def test_recorder_keeps_each_problems_term_spread_and_the_summary_weights_it() -> None:
    torch.manual_seed(0)
    energy = LatentPlanningEnergy(tiny_world_model(max_time_offset=2), EnergyWeights(goal=3.0))
    recorder = TermSpreadRecorder(energy)
    tokens = math.prod(token_grid_shape(GRID, 2))
    context, observed = torch.randn(2, tokens, 16), torch.randn(2, tokens, 16)
    goal = keyframe_goal(torch.randn(2, tokens, 16))
    controls = torch.randn(2, 5, 2, 2)
    for _ in range(2):  # two optimiser iterations of one plan
        terms = recorder.evaluate(context, observed, torch.tensor([2.0, 5.0]), goal, controls)
    expected = energy.evaluate(context, observed, torch.tensor([2.0, 5.0]), goal, controls)
    torch.testing.assert_close(terms.total, expected.total)
    assert len(recorder.spreads) == 4 and set(recorder.spreads[0]) == {"goal"}
    assert recorder.spreads[1]["goal"] == pytest.approx(float(expected.terms["goal"][1].std()))
    first_problem = recorder.spreads[0::2]  # a plan solves one problem: its two iterations
    summary = summarise_spreads(first_problem, recorder.weights, iterations=2)
    assert summary["moments"] == 1
    goal_spread = summary["iteration_1"]["goal"]
    assert goal_spread["weighted_median"] == pytest.approx(3.0 * goal_spread["median"])
    assert "| 2 | goal |" in spread_table(summary)
