"""The JEPA predictor: a small transformer over the BEV token grid that fills in target embeddings.

Its input is a full token grid: where the source embedding is known (context tokens, or the whole previous
keyframe when stepping into the future) the token is that embedding, elsewhere a learned mask token. Every
token adds a fixed 2-D sine-cosine position code, and the whole grid is conditioned on the target kind, the
time offset (keyframes after the context frame) and, for future steps, the ego action of the step, or a learned
"action not given" code: then the predictor must infer the ego's own motion from what the scene shows.

The predictor is residual: a known token's prediction is its own (layer-normalised) source embedding plus the
transformer's correction, an unknown token's is the correction alone. Stepping into the future, the source is
the previous keyframe carried along the ego's motion, so the world model starts from "the world stood still"
and learns what moves and what comes into view; under uncertainty its predictions shrink toward that carried
frame rather than toward the mean embedding.
"""

from enum import IntEnum

import torch
from torch import nn

from bevjepa.jepa.losses import layer_normalize


class TargetKind(IntEnum):
    """What the predictor is asked for."""

    MASKED_BLOCK = 0
    OCCLUDED = 1
    FUTURE = 2


def sincos_position_codes(token_shape: tuple[int, int], dim: int) -> torch.Tensor:
    """Fixed 2-D sine-cosine codes (half the channels for the row, half for the column): ``(Ht * Wt, dim)``."""
    if dim % 4:
        raise ValueError(f"the predictor width {dim} must be divisible by 4 for 2-D sine-cosine positions")
    rows, cols = token_shape
    frequencies = 1.0 / 10000 ** (torch.arange(dim // 4, dtype=torch.float64) / (dim // 4))  # (dim / 4,)

    def codes(positions: torch.Tensor) -> torch.Tensor:
        angles = positions[:, None] * frequencies[None, :]
        return torch.cat([torch.sin(angles), torch.cos(angles)], dim=1)  # (P, dim / 2)

    grid_rows, grid_cols = torch.meshgrid(
        torch.arange(rows, dtype=torch.float64), torch.arange(cols, dtype=torch.float64), indexing="ij"
    )
    return torch.cat([codes(grid_rows.flatten()), codes(grid_cols.flatten())], dim=1).float()


def pre_norm_transformer(width: int, depth: int, num_heads: int, mlp_ratio: float) -> nn.TransformerEncoder:
    """``depth`` pre-norm transformer blocks (GELU MLP of ``width * mlp_ratio``, no dropout) over (B, N, width)."""
    block = nn.TransformerEncoderLayer(
        width,
        num_heads,
        dim_feedforward=int(width * mlp_ratio),
        dropout=0.0,
        activation="gelu",
        batch_first=True,
        norm_first=True,
    )
    return nn.TransformerEncoder(block, depth, enable_nested_tensor=False)


class BEVPredictor(nn.Module):
    """Predicts target embeddings on every token of the BEV token grid.

    Args:
        token_shape: ``(Ht, Wt)`` of the token grid.
        embed_dim: D, width of the encoder embeddings it reads and predicts.
        width: the transformer's width.
        depth: transformer blocks.
        num_heads: attention heads.
        mlp_ratio: hidden width of each block's MLP relative to ``width``.
        max_time_offset: largest time offset (in keyframes) it can be conditioned on.
        action_scale: ``[dx, dy, dyaw, speed]`` magnitudes (m, m, rad, m/s) that map typical actions to ~1.
    """

    def __init__(
        self,
        token_shape: tuple[int, int],
        embed_dim: int,
        width: int = 128,
        depth: int = 4,
        num_heads: int = 4,
        mlp_ratio: float = 4.0,
        max_time_offset: int = 6,
        action_scale: tuple[float, float, float, float] = (5.0, 2.0, 0.3, 10.0),
    ) -> None:
        super().__init__()
        self.token_shape = tuple(token_shape)
        self.embed_dim = embed_dim
        self.max_time_offset = max_time_offset
        self.input_norm = nn.LayerNorm(embed_dim)
        self.input_projection = nn.Linear(embed_dim, width)
        self.mask_token = nn.Parameter(torch.zeros(width))
        self.register_buffer(
            "position_codes", sincos_position_codes(self.token_shape, width), persistent=False
        )
        self.kind_embedding = nn.Embedding(len(TargetKind), width)
        self.time_embedding = nn.Embedding(max_time_offset + 1, width)
        self.register_buffer(
            "action_scale", torch.tensor(action_scale, dtype=torch.float32), persistent=False
        )
        self.action_embedding = nn.Sequential(nn.Linear(4, width), nn.GELU(), nn.Linear(width, width))
        self.unknown_action = nn.Parameter(torch.zeros(width))  # a future step whose ego motion is not given
        self.blocks = pre_norm_transformer(width, depth, num_heads, mlp_ratio)
        self.output_norm = nn.LayerNorm(width)
        self.output_projection = nn.Linear(width, embed_dim)
        nn.init.normal_(self.mask_token, std=0.02)
        nn.init.normal_(self.kind_embedding.weight, std=0.02)
        nn.init.normal_(self.time_embedding.weight, std=0.02)
        nn.init.normal_(self.unknown_action, std=0.02)
        nn.init.normal_(self.output_projection.weight, std=0.02)  # small corrections at the start
        nn.init.zeros_(self.output_projection.bias)

    def forward(
        self,
        source: torch.Tensor,
        known: torch.Tensor,
        kind: TargetKind,
        time_offset: int,
        actions: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Predict the target embedding of every token.

        Args:
            source: (B, N, D) embeddings of the source frame (context encoder, target encoder or an earlier
                prediction); ignored where not ``known``.
            known: (B, N) bool, tokens whose source embedding the predictor may read.
            kind: the target kind.
            time_offset: keyframes between the context frame and the target (0 for blocks and occlusions).
            actions: (B, 4) ``[dx, dy, dyaw, speed]`` of the step into the target keyframe, in the frame it
                starts from; None for a future step whose ego motion is not given (the source then stands
                where it was, and the predictor has to infer how the ego moved).

        Returns:
            (B, N, D) predicted (layer-normalised) target embeddings: the layer-normalised source where known,
            plus the transformer's correction.
        """
        batch, num_tokens, _ = source.shape
        if num_tokens != self.position_codes.shape[0]:
            raise ValueError(f"predictor built for {self.position_codes.shape[0]} tokens, got {num_tokens}")
        if not 0 <= time_offset <= self.max_time_offset:
            raise ValueError(f"time offset {time_offset} outside [0, {self.max_time_offset}]")
        content = self.input_projection(self.input_norm(source))  # (B, N, W)
        tokens = torch.where(known.unsqueeze(-1), content, self.mask_token.to(content.dtype))
        condition = self.kind_embedding.weight[int(kind)] + self.time_embedding.weight[time_offset]  # (W,)
        condition = condition.expand(batch, -1)  # (B, W)
        if kind == TargetKind.FUTURE:
            if actions is None:
                condition = condition + self.unknown_action
            else:
                condition = condition + self.action_embedding(actions / self.action_scale)
        tokens = tokens + self.position_codes + condition.unsqueeze(1)  # (B, N, W)
        correction = self.output_projection(self.output_norm(self.blocks(tokens)))  # (B, N, D)
        carried = torch.where(known.unsqueeze(-1), layer_normalize(source), torch.zeros_like(source))
        return carried + correction
