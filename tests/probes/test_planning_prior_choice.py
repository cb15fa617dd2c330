"""The planning-cost prior is chosen per method on contiguous folds of the training split."""

import math

import pytest
import torch

from bevjepa.probes import suite
from bevjepa.probes.planning_probe import PlanningProbeModule
from bevjepa.probes.suite import ProbeSettings, choose_planning_prior, longest_horizon_l2, training_folds


def test_folds_are_contiguous_blocks_that_cover_the_split_once():
    pairs = training_folds(10, 3)
    assert [held.tolist() for _, held in pairs] == [[0, 1, 2, 3], [4, 5, 6], [7, 8, 9]]
    for fit, held in pairs:
        assert sorted(fit.tolist() + held.tolist()) == list(range(10))
    assert len(training_folds(2, 3)) == 2  # a block without samples is no fold


def test_the_longest_scored_horizon_counts():
    evaluation = {"plan_cost_l2_avg_1s": 1.0, "plan_cost_l2_avg_2s": 2.0, "plan_cost_l2_avg_3s": float("nan")}
    assert longest_horizon_l2(evaluation) == 2.0
    assert longest_horizon_l2({**evaluation, "plan_cost_l2_avg_3s": 3.5}) == 3.5
    assert math.isnan(longest_horizon_l2({}))


class _Features:
    """Stands in for SplitFeatures: only its length is read when training and scoring are stubbed."""

    labels = tuple(range(9))


def _stub_training(monkeypatch, fold_l2: dict[str, list[float]]) -> list[tuple[str, list[int]]]:
    """Training returns the prior's name; scoring looks up ``fold_l2[prior][fold]``. Returns the calls made."""
    calls = []

    def train_probe(train, method, subset, grid, token_patch, settings, prior, module_class):
        assert module_class is PlanningProbeModule  # the choice trains the scene-only head alone
        calls.append((prior, subset.tolist()))
        return prior

    def evaluate(prior, features, method, settings, indices):
        fold = indices.tolist()[0] // 3
        return {"plan_cost_l2_avg_3s": fold_l2[prior][fold]}

    monkeypatch.setattr(suite, "train_probe", train_probe)
    monkeypatch.setattr(suite, "evaluate", evaluate)
    return calls


def test_the_prior_with_the_lower_fold_l2_is_chosen(monkeypatch):
    calls = _stub_training(monkeypatch, {"scene": [4.0, 5.0, 6.0], "constant": [3.0, 6.0, 4.5]})
    chosen, scores = choose_planning_prior(_Features(), "jepa", None, 2, ProbeSettings())
    assert chosen == "constant" and scores == {"scene": 5.0, "constant": 4.5}
    assert len(calls) == 6 and all(len(subset) == 6 for _, subset in calls)  # 2 priors x 3 folds of 6 + 3


def test_unscored_folds_fall_back_to_the_first_prior(monkeypatch):
    nan = float("nan")
    _stub_training(monkeypatch, {"scene": [nan, nan, nan], "constant": [nan, nan, nan]})
    chosen, scores = choose_planning_prior(_Features(), "jepa", None, 2, ProbeSettings())
    assert chosen == "scene" and all(math.isnan(v) for v in scores.values())


def test_a_single_prior_is_used_without_training(monkeypatch):
    calls = _stub_training(monkeypatch, {})
    settings = ProbeSettings(planning_priors=("constant",))
    assert choose_planning_prior(_Features(), "jepa", None, 2, settings) == ("constant", {})
    assert calls == []


def test_settings_reject_unknown_priors_decisions_and_too_few_folds():
    with pytest.raises(ValueError, match="planning_priors"):
        ProbeSettings(planning_priors=("learned",))
    with pytest.raises(ValueError, match="2 folds"):
        ProbeSettings(selection_folds=1)
    assert ProbeSettings(planning_priors=("scene",), selection_folds=1).selection_folds == 1
    with pytest.raises(ValueError, match="planning_decision"):
        ProbeSettings(planning_decision="argmax")
    assert torch.equal(training_folds(3, 3)[0][1], torch.tensor([0]))
