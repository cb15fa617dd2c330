"""Losses and collapse monitors are pure functions with known values."""

import math

import pytest
import torch

from bevjepa.jepa.losses import (
    covariance_loss,
    layer_normalize,
    regression_error,
    target_regression_loss,
    variance_loss,
    weighted_mean,
)
from bevjepa.jepa.monitors import effective_rank, embedding_monitors, mean_pairwise_cosine, per_dim_std


def test_targets_are_layer_normalised_before_regression():
    target = torch.tensor([[1.0, 3.0]])  # mean 2, std 1 -> normalised [-1, 1]
    torch.testing.assert_close(layer_normalize(target), torch.tensor([[-1.0, 1.0]]), atol=1e-4, rtol=0)
    prediction = torch.tensor([[0.0, 3.0]])  # errors 1 and 2
    assert regression_error(prediction, target, "l1").item() == pytest.approx(1.5, abs=1e-4)
    # smooth-L1 with beta 1: 0.5 * 1^2 = 0.5 and 2 - 0.5 = 1.5 -> mean 1.0
    assert regression_error(prediction, target, "smooth_l1").item() == pytest.approx(1.0, abs=1e-4)
    assert regression_error(prediction, 10 * target + 4, "l1").item() == pytest.approx(1.5, abs=1e-4)
    with pytest.raises(ValueError, match="unknown regression"):
        regression_error(prediction, target, "l2")


def test_weighted_mean_and_zero_weights():
    values = torch.tensor([[1.0, 3.0], [5.0, 7.0]])
    assert weighted_mean(values, torch.tensor([[1.0, 0.0], [0.0, 3.0]])).item() == pytest.approx(5.5)
    assert weighted_mean(values, torch.zeros(2, 2)).item() == 0.0
    prediction = torch.zeros(1, 2, 2, requires_grad=True)
    target = torch.tensor([[[1.0, 3.0], [0.0, 2.0]]])
    loss = target_regression_loss(prediction, target, torch.tensor([[1.0, 1.0]]), kind="l1")
    assert loss.item() == pytest.approx(1.0, abs=1e-4)
    loss.backward()
    assert prediction.grad.abs().sum() > 0


def test_variance_term_known_values():
    spread = torch.tensor([[1.0, 0.0], [-1.0, 0.0], [1.0, 0.0], [-1.0, 0.0]])  # var 4/3 and 0
    expected = (max(0.0, 1 - math.sqrt(4 / 3 + 1e-4)) + (1 - math.sqrt(1e-4))) / 2
    assert variance_loss(spread).item() == pytest.approx(expected, abs=1e-6)
    assert variance_loss(torch.randn(4096, 8) * 3).item() == 0.0


def test_covariance_term_known_values():
    x = torch.tensor([[1.0, 1.0], [-1.0, -1.0]])  # cov = [[2, 2], [2, 2]]: off-diagonal 2 twice
    assert covariance_loss(x).item() == pytest.approx((4 + 4) / 2)
    independent = torch.tensor([[1.0, 1.0], [1.0, -1.0], [-1.0, 1.0], [-1.0, -1.0]])
    assert covariance_loss(independent).item() == pytest.approx(0.0, abs=1e-7)


def test_monitors_known_values():
    eye = torch.eye(6)
    assert effective_rank(eye).item() == pytest.approx(6.0, rel=1e-4)
    line = torch.randn(50, 1) * torch.randn(1, 6)
    assert effective_rank(line).item() == pytest.approx(1.0, rel=1e-3)
    assert mean_pairwise_cosine(torch.ones(5, 3) * torch.rand(5, 1)).item() == pytest.approx(1.0, abs=1e-6)
    assert mean_pairwise_cosine(eye).item() == pytest.approx(0.0, abs=1e-7)
    assert mean_pairwise_cosine(torch.cat([eye, -eye])).item() == pytest.approx(-1 / 11, abs=1e-6)
    assert torch.allclose(per_dim_std(torch.ones(10, 4)), torch.zeros(4))
    healthy = embedding_monitors(torch.randn(4096, 16))
    assert healthy.std_ratio == pytest.approx(1.0, abs=0.05)
    assert healthy.effective_rank_fraction > 0.9 and abs(healthy.mean_cosine) < 0.01
    collapsed = embedding_monitors(torch.ones(100, 16) + 1e-4 * torch.randn(100, 16))
    assert collapsed.std_ratio < 0.01 and collapsed.mean_cosine > 0.999
