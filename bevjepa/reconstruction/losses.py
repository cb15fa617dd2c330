"""Reconstruction losses and scores as pure functions of tensors, over the masked (target) tokens only."""

import torch
import torch.nn.functional as F

from bevjepa.encoders.tokens import gather_tokens
from bevjepa.jepa.losses import weighted_mean
from bevjepa.jepa.masks import TargetTokens


def masked_occupancy_loss(
    logits: torch.Tensor, targets: torch.Tensor, masked: TargetTokens, positive_weight: float = 1.0
) -> torch.Tensor:
    """Binary cross-entropy of the masked tokens' occupancy, averaged per token, weighted across tokens.

    Args:
        logits: (B, N, T) predicted occupancy logits of every token.
        targets: (B, N, T) occupancy in {0, 1}.
        masked: the target tokens, indices and weights (B, M).
        positive_weight: weight of the occupied entries' term (above 1 counters their rarity).

    Returns:
        Scalar loss.
    """
    chosen_targets = gather_tokens(targets, masked.indices)  # (B, M, T)
    error = F.binary_cross_entropy_with_logits(
        gather_tokens(logits, masked.indices),
        chosen_targets,
        pos_weight=chosen_targets.new_tensor(positive_weight),
        reduction="none",
    ).mean(dim=-1)  # (B, M)
    return weighted_mean(error, masked.weights)


def masked_occupancy_rate(targets: torch.Tensor, masked: TargetTokens) -> tuple[torch.Tensor, torch.Tensor]:
    """Weighted sum of the masked tokens' targets and the sum of their weights: their ratio is the constant
    prediction that minimises ``masked_occupancy_loss`` (with ``positive_weight`` 1).

    Args:
        targets: (B, N, T) occupancy in {0, 1}.
        masked: the target tokens, indices and weights (B, M).

    Returns:
        (T,) weighted sum of targets and () sum of weights.
    """
    weights = masked.weights.unsqueeze(-1)  # (B, M, 1)
    return (gather_tokens(targets, masked.indices) * weights).sum(dim=(0, 1)), masked.weights.sum()


def masked_occupancy_iou(
    predicted: torch.Tensor, targets: torch.Tensor, masked: TargetTokens
) -> torch.Tensor:
    """Intersection over union of the occupied entries over the masked tokens with a positive weight.

    Args:
        predicted: (B, N, T) bool predicted occupancy.
        targets: (B, N, T) occupancy in {0, 1}.
        masked: the target tokens, indices and weights (B, M).

    Returns:
        Scalar IoU (1 when neither side has an occupied entry).
    """
    counted = (masked.weights > 0).unsqueeze(-1)  # (B, M, 1)
    prediction = gather_tokens(predicted, masked.indices) & counted
    truth = (gather_tokens(targets, masked.indices) > 0.5) & counted
    union = (prediction | truth).sum()
    if union == 0:
        return torch.ones((), device=targets.device)
    return (prediction & truth).sum() / union
