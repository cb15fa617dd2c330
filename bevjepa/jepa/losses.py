"""JEPA losses as pure functions of tensors: target regression and VICReg-style variance / covariance terms."""

from typing import Literal

import torch
import torch.nn.functional as F

RegressionKind = Literal["smooth_l1", "l1"]


def layer_normalize(embeddings: torch.Tensor) -> torch.Tensor:
    """Normalise each embedding (last dimension) to zero mean and unit variance, no affine parameters."""
    return F.layer_norm(embeddings, embeddings.shape[-1:])


def regression_error(
    prediction: torch.Tensor, target: torch.Tensor, kind: RegressionKind = "smooth_l1", beta: float = 1.0
) -> torch.Tensor:
    """Per-token error between predictions and layer-normalised targets.

    Args:
        prediction: (..., D) predicted embeddings.
        target: (..., D) target embeddings, raw (they are layer-normalised here).
        kind: ``"smooth_l1"`` (with ``beta``) or ``"l1"``.
        beta: smooth-L1 threshold between the quadratic and the linear part.

    Returns:
        (...) error averaged over the embedding dimension.
    """
    normalised = layer_normalize(target)
    if kind == "smooth_l1":
        error = F.smooth_l1_loss(prediction, normalised, reduction="none", beta=beta)
    elif kind == "l1":
        error = (prediction - normalised).abs()
    else:
        raise ValueError(f"unknown regression loss {kind!r}: use 'smooth_l1' or 'l1'")
    return error.mean(dim=-1)


def weighted_mean(values: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """``sum(values * weights) / sum(weights)``; 0 (still attached to ``values``) when all weights are 0."""
    total = weights.sum()
    return (values * weights).sum() / total.clamp(min=torch.finfo(values.dtype).tiny)


def target_regression_loss(
    prediction: torch.Tensor,
    target: torch.Tensor,
    weights: torch.Tensor,
    kind: RegressionKind = "smooth_l1",
    beta: float = 1.0,
) -> torch.Tensor:
    """Weighted mean regression error over target tokens.

    Args:
        prediction: (B, M, D) predicted embeddings.
        target: (B, M, D) target-encoder embeddings (layer-normalised inside).
        weights: (B, M) per-token weights (0 for padding).
        kind, beta: see ``regression_error``.

    Returns:
        Scalar loss.
    """
    return weighted_mean(regression_error(prediction, target, kind, beta), weights)


def variance_loss(embeddings: torch.Tensor, target_std: float = 1.0, eps: float = 1e-4) -> torch.Tensor:
    """VICReg variance term: hinge on the standard deviation of every dimension across samples.

    Args:
        embeddings: (N, D), N >= 2.
        target_std: the standard deviation below which a dimension is penalised.
        eps: added to the variance for a finite gradient at zero.

    Returns:
        ``mean_d relu(target_std - sqrt(var_d + eps))``.
    """
    std = torch.sqrt(embeddings.var(dim=0) + eps)  # (D,)
    return F.relu(target_std - std).mean()


def covariance_loss(embeddings: torch.Tensor) -> torch.Tensor:
    """VICReg covariance term: squared off-diagonal covariances, summed and divided by D.

    Args:
        embeddings: (N, D), N >= 2.

    Returns:
        ``sum_{i != j} cov_ij^2 / D``.
    """
    count, dims = embeddings.shape
    centred = embeddings - embeddings.mean(dim=0)
    covariance = centred.T @ centred / (count - 1)  # (D, D)
    off_diagonal = covariance - torch.diag(torch.diagonal(covariance))
    return off_diagonal.square().sum() / dims
