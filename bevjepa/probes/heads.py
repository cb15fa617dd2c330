"""Probe heads that read frozen tokens and paint BEV cells: occupancy classes, map-element layers, cost maps.

A token covers ``patch x patch`` BEV cells; the head maps each token on its own (no mixing between tokens, so
what a probe reads out is what the token holds) to ``patch * patch * C`` values and lays them out on the
token's cells. Tokens are first standardised per dimension (a BatchNorm without affine parameters, as MAE's
linear probe does): layer-normalised tokens of a frozen encoder can differ from each other by little in
absolute terms, and a fixed per-dimension scale lets a linear probe read those differences whatever their size.
"""

import torch
from torch import nn

OCCUPANCY_CLASSES = ("free", "vehicle", "vulnerable_road_user", "static_obstacle")
IGNORE_INDEX = 255
MAP_LAYERS = ("drivable_area", "ped_crossing", "walkway", "stop_line", "carpark_area", "divider")


def tokens_to_cells(values: torch.Tensor, token_shape: tuple[int, int], patch: int) -> torch.Tensor:
    """Lay per-token cell values out on the BEV map.

    Args:
        values: (B, N, patch * patch * C), each token's ``(patch, patch, C)`` block, row-major within the token.
        token_shape: ``(Ht, Wt)`` with ``N = Ht * Wt``.
        patch: cells per token side.

    Returns:
        (B, C, Ht * patch, Wt * patch).
    """
    batch, _, size = values.shape
    rows, cols = token_shape
    channels = size // (patch * patch)
    blocks = values.view(batch, rows, cols, patch, patch, channels)  # (B, Ht, Wt, p, p, C)
    return blocks.permute(0, 5, 1, 3, 2, 4).reshape(batch, channels, rows * patch, cols * patch)


class TokenCellHead(nn.Module):
    """Tokens -> per-cell outputs: a per-token linear map (``hidden_dim`` 0) or a one-hidden-layer MLP.

    Args:
        embed_dim: D of the tokens.
        token_shape: ``(Ht, Wt)`` of the token grid.
        patch: BEV cells per token side.
        out_channels: C, values per cell (class logits, layer logits, a cost).
        hidden_dim: width of the hidden layer; 0 for a linear probe.
    """

    def __init__(
        self, embed_dim: int, token_shape: tuple[int, int], patch: int, out_channels: int, hidden_dim: int = 0
    ) -> None:
        super().__init__()
        self.token_shape = tuple(token_shape)
        self.patch = patch
        self.out_channels = out_channels
        self.standardize = nn.BatchNorm1d(embed_dim, affine=False, eps=1e-6)
        outputs = patch * patch * out_channels
        if hidden_dim:
            self.net = nn.Sequential(
                nn.Linear(embed_dim, hidden_dim), nn.GELU(), nn.Linear(hidden_dim, outputs)
            )
        else:
            self.net = nn.Linear(embed_dim, outputs)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """(B, N, D) tokens -> (B, C, H, W) per-cell outputs."""
        standardized = self.standardize(tokens.flatten(0, 1)).view_as(tokens)  # (B, N, D)
        return tokens_to_cells(self.net(standardized), self.token_shape, self.patch)


def occupancy_head(
    embed_dim: int, token_shape: tuple[int, int], patch: int, hidden_dim: int = 0
) -> TokenCellHead:
    """Occupancy head: logits (B, 4, H, W) over ``OCCUPANCY_CLASSES`` (train with cross-entropy, ignore 255)."""
    return TokenCellHead(embed_dim, token_shape, patch, len(OCCUPANCY_CLASSES), hidden_dim)


def map_head(embed_dim: int, token_shape: tuple[int, int], patch: int, hidden_dim: int = 0) -> TokenCellHead:
    """Map-element head: logits (B, 6, H, W) over ``MAP_LAYERS`` (multi-label, train with BCE)."""
    return TokenCellHead(embed_dim, token_shape, patch, len(MAP_LAYERS), hidden_dim)
