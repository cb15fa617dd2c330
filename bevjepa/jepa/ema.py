"""The EMA target encoder's update: parameters follow the online encoder with momentum (foreach ops); the
target's own BatchNorm statistics are made equal on every process."""

from collections.abc import Callable

import torch
from torch import nn


@torch.no_grad()
def ema_update_(
    target: nn.Module,
    online: nn.Module,
    momentum: float,
    reduce_mean: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> None:
    """``target_p <- momentum * target_p + (1 - momentum) * online_p`` for every parameter, in place.

    Buffers are not taken from ``online``: the target's BatchNorm running statistics are those of its own
    forward passes (its own weights on full, unmasked frames), which is what it needs in evaluation mode.
    Under DDP every rank updates them from its own batch, so the floating-point ones are averaged over
    processes with ``reduce_mean`` (e.g. Lightning's ``strategy.reduce``) to keep the target identical
    everywhere; the parameters already are, since the online parameters are.

    Args:
        target: the EMA copy (same architecture as ``online``).
        online: the trained encoder.
        momentum: in [0, 1]; 1 freezes the target, 0 copies the online encoder's parameters.
        reduce_mean: mean of a tensor over processes; None on a single process.
    """
    target_parameters = list(target.parameters())
    online_parameters = [p.detach() for p in online.parameters()]
    if len(target_parameters) != len(online_parameters):
        raise ValueError("the target and online encoders have different parameter lists")
    torch._foreach_mul_(target_parameters, momentum)
    torch._foreach_add_(target_parameters, online_parameters, alpha=1.0 - momentum)
    float_buffers = [b for b in target.buffers() if b.is_floating_point()]
    if reduce_mean is not None and float_buffers:
        flat = reduce_mean(torch.cat([b.flatten() for b in float_buffers]))
        parts = flat.split([b.numel() for b in float_buffers])
        torch._foreach_copy_(
            float_buffers, [part.view_as(b) for part, b in zip(parts, float_buffers, strict=True)]
        )
