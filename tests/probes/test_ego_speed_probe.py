"""The ego-speed probe: a ridge regression from frozen tokens to the ego's speed, scored by R^2."""

import math

import torch

from bevjepa.probes.ego_speed_probe import ego_speed_r2


def _split(samples: int, shows_speed: bool, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """(S, 6, 4) tokens and (S,) speeds; where ``shows_speed`` one channel of one token carries the speed
    under a little noise, otherwise the tokens are noise alone."""
    speed = 10 * torch.rand(samples, generator=generator)
    if not shows_speed:
        return torch.randn(samples, 6, 4, generator=generator), speed
    tokens = 0.1 * torch.randn(samples, 6, 4, generator=generator)
    tokens[:, 2, 1] += speed
    return tokens, speed


def test_speed_written_in_the_tokens_is_read_back():
    generator = torch.Generator().manual_seed(0)
    assert ego_speed_r2(*_split(200, True, generator), *_split(50, True, generator), ridge=1e-3) > 0.95


def test_tokens_without_the_speed_explain_nothing():
    # Over 200 seeds of this set-up R^2 lies in [-0.17, 0.04]: no better than a constant.
    generator = torch.Generator().manual_seed(1)
    assert -0.25 < ego_speed_r2(*_split(400, False, generator), *_split(200, False, generator)) < 0.1


def test_unknown_speeds_are_left_out():
    generator = torch.Generator().manual_seed(2)
    (train_tokens, train_speed), (eval_tokens, eval_speed) = (
        _split(100, True, generator),
        _split(30, True, generator),
    )
    train_speed[::10], eval_speed[::10] = float("nan"), float("nan")
    train_tokens[::10] = 1e6  # what an unusable sample carries must not reach the fit
    assert ego_speed_r2(train_tokens, train_speed, eval_tokens, eval_speed, ridge=1e-3) > 0.95
    assert math.isnan(ego_speed_r2(train_tokens[:1], train_speed[:1], eval_tokens, eval_speed))
