"""BEV pictures of what JEPA learns: PCA colours of context, target and predicted embeddings, and the loss
per token, on the grid's metric extent."""

import numpy as np
import torch
from matplotlib.figure import Figure

from bevjepa.grid import BevGrid
from bevjepa.viz.bev_figure import draw_bev_map, new_bev_axes


def pca_colours(embeddings: torch.Tensor, fit_on: torch.Tensor) -> np.ndarray:
    """Map embeddings to RGB with the top 3 principal components of ``fit_on``.

    Args:
        embeddings: (N, D) to colour.
        fit_on: (M, D) whose principal axes and per-axis ranges (1st-99th percentile) define the colours.

    Returns:
        (N, 3) float in [0, 1].
    """
    reference = fit_on.detach().float().cpu()
    mean = reference.mean(dim=0)
    _, _, axes = torch.linalg.svd(reference - mean, full_matrices=False)  # (D, D) rows = principal axes
    axes = axes[:3]
    projected_reference = (reference - mean) @ axes.T  # (M, 3)
    low = torch.quantile(projected_reference, 0.01, dim=0)
    high = torch.quantile(projected_reference, 0.99, dim=0)
    projected = (embeddings.detach().float().cpu() - mean) @ axes.T  # (N, 3)
    colours = ((projected - low) / (high - low).clamp(min=1e-6)).clamp(0, 1)
    if colours.shape[1] < 3:  # fewer than 3 dimensions: pad with grey
        colours = torch.nn.functional.pad(colours, (0, 3 - colours.shape[1]), value=0.5)
    return colours.numpy()


def jepa_picture(
    grid: BevGrid,
    token_shape: tuple[int, int],
    context: torch.Tensor,
    target: torch.Tensor,
    prediction: torch.Tensor,
    error: torch.Tensor,
    hidden: torch.Tensor,
    title: str,
) -> Figure:
    """Four BEV panels of one sample: context PCA (hidden tokens black), target PCA, prediction PCA at the
    hidden tokens (same axes as the target), and the regression error of the hidden tokens.

    Args:
        grid: the voxel grid (gives the metric extent).
        token_shape: ``(Ht, Wt)``.
        context: (N, D) context-encoder embeddings.
        target: (N, D) layer-normalised target embeddings.
        prediction: (N, D) predicted embeddings (for masked blocks).
        error: (N,) regression error of every token.
        hidden: (N,) bool, tokens whose voxels the context encoder did not see.
        title: figure title.

    Returns:
        The figure (the caller saves or logs it, then closes it).
    """
    rows, cols = token_shape
    context_rgb = pca_colours(context, context[~hidden] if (~hidden).sum() > 3 else context)
    context_rgb[hidden.cpu().numpy()] = 0.0
    target_rgb = pca_colours(target, target)
    prediction_rgb = pca_colours(prediction, target)
    prediction_rgb[~hidden.cpu().numpy()] = 0.0
    figure, axes = new_bev_axes(grid, 4, panel_size=4.0)
    x_min, y_min, _, x_max, y_max, _ = grid.point_cloud_range
    panels = [
        (context_rgb, "context embeddings (PCA)"),
        (target_rgb, "target embeddings (PCA)"),
        (prediction_rgb, "predicted at hidden tokens (target PCA)"),
    ]
    for ax, (rgb, label) in zip(axes, panels, strict=False):
        ax.imshow(
            rgb.reshape(rows, cols, 3),
            origin="lower",
            extent=(x_min, x_max, y_min, y_max),
            interpolation="nearest",
        )
        ax.set_title(label)
    error_map = error.detach().float().cpu().numpy().copy()
    error_map[~hidden.cpu().numpy()] = np.nan  # only hidden tokens are regressed
    draw_bev_map(axes[3], grid, error_map.reshape(rows, cols), "magma", "regression error")
    axes[3].set_title("loss per hidden token")
    figure.suptitle(title)
    return figure
