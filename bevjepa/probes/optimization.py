"""How every probe head trains: AdamW whose learning rate decays along a cosine to 0 over the run."""

import functools
import math
from collections.abc import Iterable

import torch


def cosine_factor(step: int, total_steps: int) -> float:
    """Learning-rate factor: cosine from 1 to 0 over ``total_steps`` optimizer steps."""
    return 0.5 * (1 + math.cos(math.pi * min(step, total_steps) / max(total_steps, 1)))


def adamw_with_cosine_decay(
    parameters: Iterable[torch.nn.Parameter], learning_rate: float, weight_decay: float, total_steps: int
) -> tuple[torch.optim.AdamW, torch.optim.lr_scheduler.LambdaLR]:
    """AdamW at peak ``learning_rate`` and its schedule (step it once per optimizer step)."""
    optimizer = torch.optim.AdamW(parameters, lr=learning_rate, weight_decay=weight_decay)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, functools.partial(cosine_factor, total_steps=total_steps)
    )
    return optimizer, schedule


def lightning_optimizers(
    parameters: Iterable[torch.nn.Parameter], learning_rate: float, weight_decay: float, total_steps: int
) -> dict:
    """``adamw_with_cosine_decay`` as a LightningModule's ``configure_optimizers`` returns it."""
    optimizer, schedule = adamw_with_cosine_decay(parameters, learning_rate, weight_decay, total_steps)
    return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}
