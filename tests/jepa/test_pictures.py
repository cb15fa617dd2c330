"""BEV pictures: PCA colours on a shared basis, and the four-panel figure."""

import numpy as np
import torch
from jepa_scenes import SCENE_GRID
from matplotlib.figure import Figure

from bevjepa.jepa.pictures import jepa_picture, pca_colours


def test_pca_colours_follow_the_reference_basis():
    torch.manual_seed(0)
    reference = torch.randn(200, 8) * torch.tensor([5.0, 3.0, 2.0, 0.1, 0.1, 0.1, 0.1, 0.1])
    colours = pca_colours(reference, reference)
    assert colours.shape == (200, 3) and colours.min() >= 0 and colours.max() <= 1
    # Points far along the first principal axis saturate its channel at opposite ends.
    extremes = pca_colours(torch.tensor([[100.0] + [0.0] * 7, [-100.0] + [0.0] * 7]), reference)
    assert {extremes[0, 0], extremes[1, 0]} == {0.0, 1.0}


def test_picture_has_four_panels():
    tokens = 64
    hidden = torch.zeros(tokens, dtype=torch.bool)
    hidden[10:20] = True
    figure = jepa_picture(
        SCENE_GRID,
        (8, 8),
        context=torch.randn(tokens, 16),
        target=torch.randn(tokens, 16),
        prediction=torch.randn(tokens, 16),
        error=torch.rand(tokens),
        hidden=hidden,
        title="test",
    )
    assert isinstance(figure, Figure)
    panels = [ax for ax in figure.axes if ax.get_title()]
    assert len(panels) == 4
    error_image = panels[3].images[0].get_array()
    assert np.isnan(np.asarray(error_image.filled(np.nan))).sum() == tokens - 10
