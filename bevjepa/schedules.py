"""Schedules as pure functions of the global optimizer step, so a resumed run follows the same curve."""

import math


def warmup_cosine_lr_factor(step: int, warmup_steps: int, total_steps: int, min_ratio: float = 0.0) -> float:
    """Multiplier of the base learning rate: linear warm-up from ~0 to 1, then cosine decay to ``min_ratio``.

    Args:
        step: global optimizer step (0 for the first update).
        warmup_steps: steps of linear warm-up (0 for none).
        total_steps: step at which the cosine reaches ``min_ratio`` (it stays there afterwards).
        min_ratio: final multiplier.

    Returns:
        The multiplier in ``(0, 1]``.
    """
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    decay_steps = max(total_steps - warmup_steps, 1)
    progress = min((step - warmup_steps) / decay_steps, 1.0)
    return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


def ema_momentum_at(step: int, start: float, end: float, total_steps: int) -> float:
    """EMA momentum of the target encoder after optimizer step ``step``: cosine from ``start`` to ``end``.

    BYOL's schedule ``end - (end - start) * (cos(pi * step / total) + 1) / 2``, held at ``end`` after
    ``total_steps``.

    Args:
        step: global optimizer step of the update (0 for the first).
        start: momentum at step 0 (e.g. 0.996).
        end: momentum at ``total_steps`` (e.g. 1.0).
        total_steps: length of the schedule.

    Returns:
        The momentum ``m`` in ``target <- m * target + (1 - m) * online``.
    """
    progress = min(step / max(total_steps, 1), 1.0)
    return end - (end - start) * 0.5 * (1.0 + math.cos(math.pi * progress))
