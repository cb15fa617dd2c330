"""Where JEPA's targets are: samplers that return token indices (and per-token weights) over the BEV grid.

Three target kinds, one sampler each:
- ``MultiBlockMaskSampler``: several rectangular blocks of 15-20 % of the BEV area (I-JEPA multi-block); the
  context is everything else, and the voxels inside the blocks are dropped before the context encoder.
- ``OccludedTokenSampler``: tokens unobserved in the context sweeps but observed in the target view.
- ``FutureTokenSampler``: every token of keyframe t+k.

Targets dominated by empty space are rejected (blocks are re-placed) and down-weighted (each target token's
weight is ``empty_token_weight`` unless one of its cells is occupied). Randomness comes from generators
seeded by ``(seed, stream, step, sample index)``, so a run is reproducible and resumable.
"""

from dataclasses import dataclass

import numpy as np
import torch

from bevjepa.batch import VoxelBatch
from bevjepa.encoders.tokens import voxel_token_indices
from bevjepa.grid import BevGrid

OCCUPIED, UNOBSERVED = 1, 2  # BevBatch visibility classes (0 is free)


def seeded_generator(*keys: int) -> torch.Generator:
    """A CPU generator whose state is a pure function of ``keys`` (e.g. seed, stream, step, sample index)."""
    state = np.random.SeedSequence([int(k) for k in keys]).generate_state(2, dtype=np.uint32)
    return torch.Generator().manual_seed(int(state[0]) << 32 | int(state[1]))


@dataclass
class TargetTokens:
    """Target tokens of one target (a block, the occluded set, a future keyframe) for a batch.

    Attributes:
        indices: (B, M) int64 token indices; padding entries repeat a valid index and weigh 0.
        weights: (B, M) float32 loss weight of each target token.
    """

    indices: torch.Tensor
    weights: torch.Tensor


def token_weights(occupied_fraction: torch.Tensor, empty_token_weight: float) -> torch.Tensor:
    """1 for tokens with any occupied cell, ``empty_token_weight`` for the others; same shape as the input."""
    occupied = (occupied_fraction > 0).float()
    return empty_token_weight + (1.0 - empty_token_weight) * occupied


@dataclass(frozen=True)
class MultiBlockMaskSampler:
    """I-JEPA multi-block targets on the BEV token grid.

    Every block of one step has the same shape (so a block's indices form a (B, h * w) tensor); each sample
    places its blocks independently, re-drawing a placement whose share of occupied tokens is below
    ``min_occupied_fraction`` (up to ``placement_attempts`` draws, keeping the best).

    Args:
        num_blocks: target blocks per sample.
        block_scale: (min, max) share of the token grid's area covered by one block.
        aspect_ratio: (min, max) height / width of a block, drawn log-uniformly.
        min_occupied_fraction: a placement is accepted when at least this share of its tokens is occupied.
        placement_attempts: draws per block before the best placement is kept.
        empty_token_weight: loss weight of block tokens without any occupied cell.
    """

    num_blocks: int = 4
    block_scale: tuple[float, float] = (0.15, 0.2)
    aspect_ratio: tuple[float, float] = (0.75, 1.5)
    min_occupied_fraction: float = 0.1
    placement_attempts: int = 10
    empty_token_weight: float = 0.1

    def block_shape(self, token_shape: tuple[int, int], generator: torch.Generator) -> tuple[int, int]:
        """``(h, w)`` in tokens of this step's blocks."""
        rows, cols = token_shape
        low, high = self.block_scale
        scale = low + (high - low) * torch.rand((), generator=generator).item()
        log_low, log_high = np.log(self.aspect_ratio[0]), np.log(self.aspect_ratio[1])
        ratio = float(np.exp(log_low + (log_high - log_low) * torch.rand((), generator=generator).item()))
        area = scale * rows * cols
        height = int(np.clip(round(np.sqrt(area * ratio)), 1, rows))
        width = int(np.clip(round(np.sqrt(area / ratio)), 1, cols))
        return height, width

    def sample(
        self, occupied_fraction: torch.Tensor, seed: int, stream: int, step: int, first_index: int
    ) -> list[TargetTokens]:
        """Place the blocks.

        Args:
            occupied_fraction: (B, Ht, Wt) share of each token's cells that are occupied in the target view.
            seed, stream, step: randomness keys (stream separates training from validation).
            first_index: global index of the batch's first sample (rank * batch size under DDP).

        Returns:
            ``num_blocks`` targets, each with indices and weights of shape (B, h * w).
        """
        batch, rows, cols = occupied_fraction.shape
        height, width = self.block_shape((rows, cols), seeded_generator(seed, stream, step))
        occupied = (occupied_fraction > 0).float().cpu()
        # Share of occupied tokens in every (height, width) window, indexed by the window's top-left token.
        window_occupancy = torch.nn.functional.avg_pool2d(occupied.unsqueeze(1), (height, width), stride=1)[
            :, 0
        ]
        offsets = (torch.arange(height)[:, None] * cols + torch.arange(width)[None, :]).flatten()  # (h * w,)
        corners = torch.empty(self.num_blocks, batch, dtype=torch.long)
        for sample in range(batch):
            generator = seeded_generator(seed, stream, step, first_index + sample)
            for block in range(self.num_blocks):
                tops = torch.randint(0, rows - height + 1, (self.placement_attempts,), generator=generator)
                lefts = torch.randint(0, cols - width + 1, (self.placement_attempts,), generator=generator)
                scores = window_occupancy[sample, tops, lefts]  # (attempts,)
                accepted = torch.nonzero(scores >= self.min_occupied_fraction)
                choice = int(accepted[0]) if len(accepted) else int(scores.argmax())
                corners[block, sample] = tops[choice] * cols + lefts[choice]
        device = occupied_fraction.device
        flat_fraction = occupied_fraction.flatten(1)  # (B, N)
        targets = []
        for block in range(self.num_blocks):
            indices = (corners[block][:, None] + offsets[None, :]).to(device)  # (B, h * w)
            weights = token_weights(torch.gather(flat_fraction, 1, indices), self.empty_token_weight)
            targets.append(TargetTokens(indices=indices, weights=weights))
        return targets


@dataclass(frozen=True)
class OccludedTokenSampler:
    """Tokens hidden from the context sweeps but seen in the target view (neighbouring keyframes).

    A token is occluded when at least ``min_cell_fraction`` of its cells are unobserved in ``visibility``
    and observed (free or occupied) in ``target_visibility``, and a target embedding exists for it. At most
    ``max_tokens`` are drawn per sample, uniformly at random.

    Args:
        max_tokens: occluded target tokens per sample at most.
        min_cell_fraction: share of a token's cells that must be occluded.
        empty_token_weight: loss weight of occluded tokens with no occupied cell in the target view.
    """

    max_tokens: int = 64
    min_cell_fraction: float = 0.5
    empty_token_weight: float = 0.1

    def sample(
        self,
        occluded_fraction: torch.Tensor,
        occupied_fraction: torch.Tensor,
        available: torch.Tensor,
        seed: int,
        stream: int,
        step: int,
        first_index: int,
    ) -> TargetTokens:
        """Draw the occluded target tokens.

        Args:
            occluded_fraction: (B, N) share of each token's cells unobserved now and observed in the target view.
            occupied_fraction: (B, N) share of each token's cells occupied in the target view.
            available: (B, N) bool, tokens for which the target encoder has an embedding.
            seed, stream, step, first_index: randomness keys, as for ``MultiBlockMaskSampler.sample``.

        Returns:
            indices and weights (B, M) with ``M <= max_tokens`` the largest count in the batch (0 if none);
            samples with fewer tokens are padded with weight 0.
        """
        candidates = (occluded_fraction >= self.min_cell_fraction) & available  # (B, N)
        batch = candidates.shape[0]
        chosen = []
        for sample in range(batch):
            tokens = torch.nonzero(candidates[sample]).flatten().cpu()
            order = torch.randperm(
                len(tokens), generator=seeded_generator(seed, stream, step, first_index + sample)
            )
            chosen.append(tokens[order[: self.max_tokens]])
        count = max((len(c) for c in chosen), default=0)
        device = occluded_fraction.device
        indices = torch.zeros(batch, count, dtype=torch.long)
        present = torch.zeros(batch, count, dtype=torch.bool)
        for sample, tokens in enumerate(chosen):
            indices[sample, : len(tokens)] = tokens
            present[sample, : len(tokens)] = True
        indices, present = indices.to(device), present.to(device)
        weights = token_weights(torch.gather(occupied_fraction, 1, indices), self.empty_token_weight)
        return TargetTokens(indices=indices, weights=weights * present)


@dataclass(frozen=True)
class FutureTokenSampler:
    """Every token of the future keyframes t+1 ... t+``steps`` (0.5 s apart), weighted by occupancy.

    Args:
        steps: future keyframes predicted (teacher forcing for each, rollout through all of them).
        empty_token_weight: loss weight of future tokens without any object-height voxel column.
    """

    steps: int = 2
    empty_token_weight: float = 0.1

    def sample(self, occupied_fraction: torch.Tensor, valid: torch.Tensor) -> list[TargetTokens]:
        """Args: occupied_fraction (B, K, N) in each future frame; valid (B, K) bool.

        Returns: one target per future step, indices (B, N) = all tokens, weights 0 where the step is invalid.
        """
        batch, steps, num_tokens = occupied_fraction.shape
        indices = torch.arange(num_tokens, device=occupied_fraction.device).expand(batch, num_tokens)
        return [
            TargetTokens(
                indices=indices,
                weights=token_weights(occupied_fraction[:, k], self.empty_token_weight) * valid[:, k, None],
            )
            for k in range(steps)
        ]


def drop_voxels_in_tokens(voxels: VoxelBatch, hidden: torch.Tensor, grid: BevGrid, patch: int) -> VoxelBatch:
    """The voxels whose token is not hidden: what the context encoder may see.

    Args:
        voxels: features (V, F), coords (V, 4) ``[b, z, y, x]``.
        hidden: (B, N) bool, tokens whose voxels must not reach the context encoder.
        grid: the voxel grid.
        patch: BEV cells per token side.

    Returns:
        The kept voxels (V', F), (V', 4), same batch size.
    """
    tokens = voxel_token_indices(voxels.coords, grid, patch)  # (V,)
    keep = ~hidden[voxels.coords[:, 0].long(), tokens]
    return VoxelBatch(
        features=voxels.features[keep], coords=voxels.coords[keep], batch_size=voxels.batch_size
    )


def occupied_columns(voxels: VoxelBatch, grid: BevGrid, min_height: float) -> torch.Tensor:
    """Cells holding an object: the voxel column spans at least ``min_height`` metres (ground spans less).

    Args:
        voxels: coords (V, 4) ``[b, z, y, x]``.
        grid: the voxel grid.
        min_height: metres from the lowest to the top of the highest voxel in the cell.

    Returns:
        (B, H, W) bool on the grid's BEV cells.
    """
    height, width = grid.bev_shape
    coords = voxels.coords.long()
    cells = (
        coords[:, 0] * height * width
        + (coords[:, 2] // grid.encoder_stride) * width
        + coords[:, 3] // grid.encoder_stride
    )  # (V,)
    size = voxels.batch_size * height * width
    top = torch.full((size,), -1, dtype=torch.long, device=coords.device).scatter_reduce(
        0, cells, coords[:, 1], reduce="amax"
    )
    bottom = torch.full((size,), 1 << 30, dtype=torch.long, device=coords.device).scatter_reduce(
        0, cells, coords[:, 1], reduce="amin"
    )
    span = (top - bottom + 1).clamp(min=0).float() * grid.voxel_size[2]
    return (span >= min_height - 1e-6).view(voxels.batch_size, height, width)


def observed_columns(voxels: VoxelBatch, grid: BevGrid) -> torch.Tensor:
    """Cells holding any voxel: (B, H, W) bool."""
    height, width = grid.bev_shape
    coords = voxels.coords.long()
    observed = torch.zeros(voxels.batch_size, height, width, dtype=torch.bool, device=coords.device)
    observed[coords[:, 0], coords[:, 2] // grid.encoder_stride, coords[:, 3] // grid.encoder_stride] = True
    return observed
