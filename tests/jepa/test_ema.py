"""The EMA update equals its formula and keeps the target's own BatchNorm statistics, reduced over processes."""

import copy

import torch
from torch import nn

from bevjepa.jepa.ema import ema_update_


def _net() -> nn.Module:
    return nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Linear(4, 2))


def test_update_equals_formula():
    torch.manual_seed(0)
    online, target = _net(), _net()
    online(torch.randn(8, 3))  # move the online running statistics
    target(torch.randn(8, 3))
    before = copy.deepcopy(target.state_dict())
    ema_update_(target, online, momentum=0.9)
    for name, parameter in target.named_parameters():
        expected = 0.9 * before[name] + 0.1 * online.state_dict()[name]
        torch.testing.assert_close(parameter, expected, atol=1e-7, rtol=0)
    for name, buffer in target.named_buffers():
        assert torch.equal(buffer, before[name]), f"{name}: the target keeps its own statistics"


def test_momentum_extremes():
    online, target = _net(), _net()
    frozen = copy.deepcopy(target.state_dict())
    ema_update_(target, online, momentum=1.0)
    for name, parameter in target.named_parameters():
        assert torch.equal(parameter, frozen[name])
    ema_update_(target, online, momentum=0.0)
    for name, parameter in target.named_parameters():
        assert torch.equal(parameter, online.state_dict()[name])


def test_float_buffers_go_through_the_reduction():
    online, target = _net(), _net()
    target(torch.randn(8, 3))
    before = copy.deepcopy(target.state_dict())
    seen = []

    def halve(tensor: torch.Tensor) -> torch.Tensor:
        seen.append(tensor.numel())
        return tensor / 2

    ema_update_(target, online, momentum=0.5, reduce_mean=halve)
    assert seen == [8]  # running mean and var of 4 channels, in one call; num_batches_tracked is not a float
    torch.testing.assert_close(target[1].running_var, before["1.running_var"] / 2)
    assert target[1].num_batches_tracked == before["1.num_batches_tracked"]
