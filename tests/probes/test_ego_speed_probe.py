"""The ego-speed probe: a ridge regression from frozen tokens to the ego's speed, scored by R^2."""

import math

import torch

from bevjepa.probes.ego_speed_probe import ego_speed_r2


def _tokens_showing(speed: torch.Tensor, noise: float, generator: torch.Generator) -> torch.Tensor:
    """(S, 6, 4) tokens with the speed written into one channel of one token, plus noise everywhere."""
    tokens = noise * torch.randn(len(speed), 6, 4, generator=generator)
    tokens[:, 2, 1] += speed
    return tokens


def test_speed_written_in_the_tokens_is_read_back():
    generator = torch.Generator().manual_seed(0)
    train_speed, eval_speed = (
        10 * torch.rand(200, generator=generator),
        10 * torch.rand(50, generator=generator),
    )
    r2 = ego_speed_r2(
        _tokens_showing(train_speed, 0.1, generator),
        train_speed,
        _tokens_showing(eval_speed, 0.1, generator),
        eval_speed,
        ridge=1e-3,
    )
    assert r2 > 0.95


def test_tokens_without_the_speed_explain_nothing():
    generator = torch.Generator().manual_seed(1)
    train_speed, eval_speed = (
        10 * torch.rand(200, generator=generator),
        10 * torch.rand(50, generator=generator),
    )
    r2 = ego_speed_r2(
        torch.randn(200, 6, 4, generator=generator),
        train_speed,
        torch.randn(50, 6, 4, generator=generator),
        eval_speed,
    )
    assert -0.2 < r2 < 0.1


def test_unknown_speeds_are_left_out():
    generator = torch.Generator().manual_seed(2)
    train_speed, eval_speed = (
        10 * torch.rand(100, generator=generator),
        10 * torch.rand(30, generator=generator),
    )
    train_tokens = _tokens_showing(train_speed, 0.1, generator)
    eval_tokens = _tokens_showing(eval_speed, 0.1, generator)
    clean = ego_speed_r2(train_tokens, train_speed, eval_tokens, eval_speed, ridge=1e-3)
    train_speed[::10], eval_speed[::10] = float("nan"), float("nan")
    train_tokens[::10] = 1e6  # what an unusable sample carries must not reach the fit
    assert ego_speed_r2(train_tokens, train_speed, eval_tokens, eval_speed, ridge=1e-3) > 0.95
    assert clean > 0.95
    assert math.isnan(ego_speed_r2(train_tokens[:1], train_speed[:1], eval_tokens, eval_speed))
