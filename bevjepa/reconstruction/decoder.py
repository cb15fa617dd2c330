"""The reconstruction decoder: a light transformer over the BEV token grid (as MAE's decoder) that reads the
encoder's visible tokens, puts a learned mask token wherever a token was hidden, and predicts per token the
logits of its occupancy target."""

import torch
from torch import nn

from bevjepa.jepa.predictor import pre_norm_transformer, sincos_position_codes


class OccupancyDecoder(nn.Module):
    """Encoder tokens with hidden ones masked -> occupancy logits of every token.

    Args:
        token_shape: ``(Ht, Wt)`` of the token grid.
        embed_dim: D, width of the encoder tokens.
        target_size: T, logits per token (``occupancy_target_size``).
        width: the transformer's width (divisible by 4: 2-D sine-cosine positions).
        depth: transformer blocks.
        num_heads: attention heads.
        mlp_ratio: hidden width of each block's MLP relative to ``width``.
    """

    def __init__(
        self,
        token_shape: tuple[int, int],
        embed_dim: int,
        target_size: int,
        width: int = 128,
        depth: int = 2,
        num_heads: int = 4,
        mlp_ratio: float = 4.0,
    ) -> None:
        super().__init__()
        self.token_shape = tuple(token_shape)
        self.input_norm = nn.LayerNorm(embed_dim)
        self.input_projection = nn.Linear(embed_dim, width)
        self.mask_token = nn.Parameter(torch.zeros(width))
        self.register_buffer(
            "position_codes", sincos_position_codes(self.token_shape, width), persistent=False
        )
        self.blocks = pre_norm_transformer(width, depth, num_heads, mlp_ratio)
        self.output_norm = nn.LayerNorm(width)
        self.output_projection = nn.Linear(width, target_size)
        nn.init.normal_(self.mask_token, std=0.02)

    def forward(self, tokens: torch.Tensor, known: torch.Tensor) -> torch.Tensor:
        """Predict occupancy logits.

        Args:
            tokens: (B, N, D) encoder tokens; ignored where not ``known``.
            known: (B, N) bool, tokens the decoder may read.

        Returns:
            (B, N, T) logits.
        """
        if tokens.shape[1] != self.position_codes.shape[0]:
            raise ValueError(
                f"decoder built for {self.position_codes.shape[0]} tokens, got {tokens.shape[1]}"
            )
        content = self.input_projection(self.input_norm(tokens))  # (B, N, W)
        content = torch.where(known.unsqueeze(-1), content, self.mask_token.to(content.dtype))
        hidden = self.blocks(content + self.position_codes)  # (B, N, W)
        return self.output_projection(self.output_norm(hidden))  # (B, N, T)
