"""Probes trained with several head seeds: each metric's mean and its spread across the seeds."""

import math

import pytest

from bevjepa.probes.report import _spread
from bevjepa.probes.suite import ProbeSettings, mean_and_spread


def test_mean_and_population_spread_per_metric():
    summary = mean_and_spread([{"l2": 1.0, "iou": 0.5}, {"l2": 3.0, "iou": 0.5}])
    assert summary == {"l2": 2.0, "l2_std": 1.0, "iou": 0.5, "iou_std": 0.0}
    assert mean_and_spread([{"l2": 4.0}]) == {"l2": 4.0, "l2_std": 0.0}
    nan = mean_and_spread([{"l2": float("nan")}, {"l2": 1.0}])
    assert math.isnan(nan["l2"]) and math.isnan(nan["l2_std"])


def test_cells_show_the_spread_only_where_seeds_differ():
    assert _spread({"l2": 2.0, "l2_std": 0.25}, "l2") == "2.00 ± 0.25"
    assert _spread({"iou": 0.5, "iou_std": 0.02}, "iou", percent=True) == "50.0 ± 2.0"
    assert _spread({"l2": 2.0, "l2_std": 0.0}, "l2") == "2.00"
    assert _spread({"l2": 2.0, "l2_std": 1e-17}, "l2") == "2.00"  # equal but for rounding: no spread shown
    assert _spread({"l2": 2.0}, "l2") == "2.00"


def test_at_least_one_head_seed():
    with pytest.raises(ValueError, match="head_seeds"):
        ProbeSettings(head_seeds=0)
