"""Learning-rate and EMA-momentum schedules: pure functions of the step with known values."""

import math

import pytest

from bevjepa.schedules import ema_momentum_at, warmup_cosine_lr_factor


def test_warmup_then_cosine():
    assert warmup_cosine_lr_factor(0, 10, 110) == pytest.approx(0.1)
    assert warmup_cosine_lr_factor(9, 10, 110) == pytest.approx(1.0)
    assert warmup_cosine_lr_factor(10, 10, 110) == pytest.approx(1.0)
    assert warmup_cosine_lr_factor(60, 10, 110) == pytest.approx(0.5)
    assert warmup_cosine_lr_factor(110, 10, 110, min_ratio=0.1) == pytest.approx(0.1)
    assert warmup_cosine_lr_factor(500, 10, 110, min_ratio=0.1) == pytest.approx(0.1)
    assert warmup_cosine_lr_factor(0, 0, 100) == pytest.approx(1.0)


def test_ema_momentum_goes_from_start_to_end():
    assert ema_momentum_at(0, 0.996, 1.0, 1000) == pytest.approx(0.996)
    assert ema_momentum_at(500, 0.996, 1.0, 1000) == pytest.approx(0.998)
    assert ema_momentum_at(1000, 0.996, 1.0, 1000) == pytest.approx(1.0)
    assert ema_momentum_at(5000, 0.996, 1.0, 1000) == pytest.approx(1.0)
    quarter = 1.0 - 0.004 * 0.5 * (1 + math.cos(math.pi / 4))
    assert ema_momentum_at(250, 0.996, 1.0, 1000) == pytest.approx(quarter)
    values = [ema_momentum_at(s, 0.996, 1.0, 1000) for s in range(0, 1001, 50)]
    assert values == sorted(values)


def test_schedules_are_pure():
    # Same step, same value, whatever was asked before (no hidden state to lose at a resume).
    first = [warmup_cosine_lr_factor(s, 5, 50) for s in (7, 3, 40)]
    assert [warmup_cosine_lr_factor(s, 5, 50) for s in (7, 3, 40)] == first
    assert ema_momentum_at(17, 0.99, 1.0, 100) == ema_momentum_at(17, 0.99, 1.0, 100)
