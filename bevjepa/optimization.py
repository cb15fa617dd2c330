"""The pretraining optimizer shared by every pretraining method, so that methods compare at equal settings:
AdamW (weight matrices decayed; biases, norms and learned tokens not) with linear warm-up and cosine decay, the
learning rate a pure function of the global step."""

import functools
from dataclasses import dataclass

import torch
from torch import nn

from bevjepa.schedules import warmup_cosine_lr_factor


@dataclass(frozen=True)
class OptimizerSettings:
    """AdamW with linear warm-up and cosine decay (a pure function of the global step).

    Attributes:
        learning_rate: peak learning rate.
        weight_decay: AdamW decay of weight matrices (biases, norms and the mask token are not decayed).
        betas: AdamW betas.
        warmup_steps: linear warm-up steps.
        min_lr_ratio: final learning rate / peak.
        total_steps: schedule length (learning rate and EMA momentum); None: the trainer's estimate.
    """

    learning_rate: float = 1e-3
    weight_decay: float = 0.05
    betas: tuple[float, float] = (0.9, 0.95)
    warmup_steps: int = 100
    min_lr_ratio: float = 0.01
    total_steps: int | None = None


DEFAULT_OPTIMIZER = OptimizerSettings()


def adamw_warmup_cosine(module: nn.Module, settings: OptimizerSettings, total_steps: int) -> dict:
    """AdamW over ``module``'s trainable parameters with a per-step warm-up + cosine schedule.

    Args:
        module: the parameters' owner (frozen parameters are left out).
        settings: learning rate, decay, betas and schedule shape.
        total_steps: schedule length in optimizer steps.

    Returns:
        What ``LightningModule.configure_optimizers`` returns: the optimizer and its step-interval scheduler.
    """
    trainable = [p for p in module.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(
        [
            {"params": [p for p in trainable if p.ndim >= 2], "weight_decay": settings.weight_decay},
            {"params": [p for p in trainable if p.ndim < 2], "weight_decay": 0.0},
        ],
        lr=settings.learning_rate,
        betas=settings.betas,
    )
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        functools.partial(
            warmup_cosine_lr_factor,
            warmup_steps=settings.warmup_steps,
            total_steps=total_steps,
            min_ratio=settings.min_lr_ratio,
        ),
    )
    return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}
