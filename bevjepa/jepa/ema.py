"""The EMA target encoder's update: parameters follow the online encoder with momentum (foreach ops),
BatchNorm statistics are copied and made equal on every process."""

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

    Buffers (BatchNorm running statistics) are copied from ``online``; floating-point ones are then averaged
    over processes with ``reduce_mean`` (e.g. Lightning's ``strategy.reduce``), because under DDP each rank
    updates its running statistics from its own batch while the parameters are already equal everywhere.

    Args:
        target: the EMA copy (same architecture as ``online``).
        online: the trained encoder.
        momentum: in [0, 1]; 1 freezes the target, 0 copies the online encoder.
        reduce_mean: mean of a tensor over processes; None on a single process.
    """
    target_parameters = list(target.parameters())
    online_parameters = [p.detach() for p in online.parameters()]
    if len(target_parameters) != len(online_parameters):
        raise ValueError("the target and online encoders have different parameter lists")
    torch._foreach_mul_(target_parameters, momentum)
    torch._foreach_add_(target_parameters, online_parameters, alpha=1.0 - momentum)
    float_buffers = []
    for target_buffer, online_buffer in zip(target.buffers(), online.buffers(), strict=True):
        target_buffer.copy_(online_buffer)
        if target_buffer.is_floating_point():
            float_buffers.append(target_buffer)
    if reduce_mean is not None and float_buffers:
        flat = reduce_mean(torch.cat([b.flatten() for b in float_buffers]))
        parts = flat.split([b.numel() for b in float_buffers])
        torch._foreach_copy_(
            float_buffers, [part.view_as(b) for part, b in zip(parts, float_buffers, strict=True)]
        )
