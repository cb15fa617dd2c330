"""``MaskedOccupancyPretrainModule``: masked-autoencoder pretraining of the sparse BEV encoder, the
reconstruction baseline of JEPA.

The encoder sees exactly what JEPA's context encoder sees (I-JEPA multi-block masks on the token grid, the
voxels inside masked tokens dropped before encoding); a light decoder predicts, for every masked token, the
occupancy of its cells by height computed from the input voxels themselves. Optimizer and schedule are
JEPA's, so both methods can run at the same budget."""

from collections.abc import Callable
from dataclasses import dataclass

import lightning as L
import torch

from bevjepa.batch import BevBatch
from bevjepa.encoders import SparseBEVEncoder
from bevjepa.encoders.tokens import bev_to_tokens, indices_to_mask, pool_cells_to_tokens, token_grid_shape
from bevjepa.grid import BevGrid
from bevjepa.jepa.jepa_step import concat_targets
from bevjepa.jepa.masks import OCCUPIED, MultiBlockMaskSampler, TargetTokens, drop_voxels_in_tokens
from bevjepa.jepa.module import DEFAULT_BLOCK_MASKS, TRAIN_STREAM, VALIDATION_STREAM
from bevjepa.optimization import DEFAULT_OPTIMIZER, OptimizerSettings, adamw_warmup_cosine
from bevjepa.reconstruction.decoder import OccupancyDecoder
from bevjepa.reconstruction.losses import masked_occupancy_iou, masked_occupancy_loss, masked_occupancy_rate
from bevjepa.reconstruction.occupancy_targets import occupancy_target_size, voxel_occupancy_tokens

# Clamp of the constant baseline's occupancy rate, so that its logit stays finite.
RATE_EPS = 1e-4


@dataclass
class ReconstructionOutputs:
    """What one reconstruction step produced.

    Attributes:
        loss: scalar masked-token loss.
        logits: (B, N, T) decoder logits of every token.
        targets: (B, N, T) occupancy targets of every token.
        masked: the masked target tokens, indices and weights (B, M).
        context_tokens: (B, N, D) encoder tokens of the context voxels.
        known: (B, N) bool, tokens whose voxels the encoder saw.
    """

    loss: torch.Tensor
    logits: torch.Tensor
    targets: torch.Tensor
    masked: TargetTokens
    context_tokens: torch.Tensor
    known: torch.Tensor


class MaskedOccupancyPretrainModule(L.LightningModule):
    """Pretrains a sparse BEV encoder by reconstructing the voxel occupancy of masked BEV blocks.

    Args:
        grid: the voxel grid (linked from the DataModule).
        in_channels: per-voxel features (linked from the DataModule).
        encoder: builds the encoder from ``(grid, in_channels)``.
        decoder: builds the decoder from ``(token_shape, embed_dim, target_size)``.
        token_patch: BEV cells per token side.
        block_masks: masked-block sampler (its ``empty_token_weight`` down-weights empty target tokens).
        cell_subdivision: sub-cells per BEV cell side in the occupancy target.
        height_bins: slices of the grid's z range in the occupancy target.
        positive_weight: BCE weight of occupied target entries.
        optimizer: AdamW and learning-rate schedule settings.
        seed: seed of the mask sampler (with the stream, step and sample index).
    """

    def __init__(
        self,
        grid: BevGrid,
        in_channels: int,
        encoder: Callable[[BevGrid, int], SparseBEVEncoder] = SparseBEVEncoder,
        decoder: Callable[[tuple[int, int], int, int], OccupancyDecoder] = OccupancyDecoder,
        token_patch: int = 1,
        block_masks: MultiBlockMaskSampler = DEFAULT_BLOCK_MASKS,
        cell_subdivision: int = 2,
        height_bins: int = 8,
        positive_weight: float = 1.0,
        optimizer: OptimizerSettings = DEFAULT_OPTIMIZER,
        seed: int = 0,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        # Settings live in attributes: through the CLI ``hparams`` holds their config values, not the objects.
        self.grid = grid
        self.token_patch = token_patch
        self.token_shape = token_grid_shape(grid, token_patch)
        self.block_masks = block_masks
        self.cell_subdivision = cell_subdivision
        self.height_bins = height_bins
        self.positive_weight = positive_weight
        self.optimizer_settings = optimizer
        self.seed = seed
        self.encoder = encoder(grid, in_channels)
        target_size = occupancy_target_size(token_patch, cell_subdivision, height_bins)
        self.decoder = decoder(self.token_shape, self.encoder.embed_dim, target_size)
        # Weighted running sum of the masked training targets and of their weights: the trivial baseline
        # predicts their ratio. Saved in checkpoints.
        self.register_buffer("train_occupancy_sum", torch.zeros(target_size, dtype=torch.float64))
        self.register_buffer("train_occupancy_weight", torch.zeros((), dtype=torch.float64))

    def probe_encoder(self) -> SparseBEVEncoder:
        """The encoder whose frozen features the probes read."""
        return self.encoder

    def forward(self, batch: BevBatch) -> torch.Tensor:
        """BEV embedding map of the current keyframe from all its voxels: (B, D, H, W)."""
        return self.encoder(batch.voxels)

    def reconstruct(self, batch: BevBatch, stream: int, step: int) -> ReconstructionOutputs:
        """Mask, encode the context, decode and score the masked tokens.

        Args:
            batch: the batch (only its voxels and visibility are read).
            stream: 0 trains, 1 evaluates (separate mask streams).
            step: keys the masks with the stream.

        Returns:
            The outputs.
        """
        batch_size = batch.voxels.batch_size
        num_tokens = self.token_shape[0] * self.token_shape[1]
        occupied = pool_cells_to_tokens(batch.visibility == OCCUPIED, self.token_patch)  # (B, N)
        first_index = self.global_rank * batch_size
        masked = concat_targets(
            self.block_masks.sample(
                occupied.view(batch_size, *self.token_shape), self.seed, stream, step, first_index
            )
        )
        known = ~indices_to_mask(masked.indices, num_tokens)  # (B, N)
        context = drop_voxels_in_tokens(batch.voxels, ~known, self.grid, self.token_patch)
        context_tokens = bev_to_tokens(self.encoder(context), self.token_patch)  # (B, N, D)
        logits = self.decoder(context_tokens, known)  # (B, N, T)
        targets = voxel_occupancy_tokens(
            batch.voxels, self.grid, self.token_patch, self.cell_subdivision, self.height_bins
        )  # (B, N, T)
        return ReconstructionOutputs(
            loss=masked_occupancy_loss(logits, targets, masked, self.positive_weight),
            logits=logits,
            targets=targets,
            masked=masked,
            context_tokens=context_tokens,
            known=known,
        )

    def _total_steps(self) -> int:
        total = self.optimizer_settings.total_steps
        return int(total) if total is not None else int(self.trainer.estimated_stepping_batches)

    def training_step(self, batch: BevBatch, batch_idx: int) -> torch.Tensor:
        outputs = self.reconstruct(batch, TRAIN_STREAM, self.global_step)
        occupancy_sum, weight = masked_occupancy_rate(outputs.targets, outputs.masked)
        self.train_occupancy_sum += occupancy_sum.detach().double()
        self.train_occupancy_weight += weight.detach().double()
        self.log("train/loss", outputs.loss, batch_size=batch.voxels.batch_size, prog_bar=True)
        return outputs.loss

    def train_occupancy_rate(self) -> torch.Tensor:
        """(T,) weighted mean occupancy of the masked training targets so far (0.5 before any step)."""
        if self.train_occupancy_weight == 0:
            return torch.full_like(self.train_occupancy_sum, 0.5).float()
        return (self.train_occupancy_sum / self.train_occupancy_weight).float()

    def configure_optimizers(self) -> dict:
        return adamw_warmup_cosine(self, self.optimizer_settings, self._total_steps())

    def validation_step(self, batch: BevBatch, batch_idx: int) -> None:
        self._evaluate(batch, batch_idx, "val")

    def test_step(self, batch: BevBatch, batch_idx: int) -> None:
        self._evaluate(batch, batch_idx, "test")

    def _evaluate(self, batch: BevBatch, batch_idx: int, stage: str) -> None:
        """Logs the loss, the occupied-entry IoU, and both for the constant training-mean prediction."""
        outputs = self.reconstruct(batch, VALIDATION_STREAM, batch_idx)
        rate = self.train_occupancy_rate().clamp(RATE_EPS, 1 - RATE_EPS).to(outputs.logits.device)
        baseline_logits = torch.logit(rate).expand_as(outputs.targets)  # (B, N, T)
        metrics = {
            f"{stage}/loss": outputs.loss,
            f"{stage}/occupancy_iou": masked_occupancy_iou(
                outputs.logits > 0, outputs.targets, outputs.masked
            ),
            f"{stage}/mean_baseline_loss": masked_occupancy_loss(
                baseline_logits, outputs.targets, outputs.masked, self.positive_weight
            ),
            f"{stage}/mean_baseline_occupancy_iou": masked_occupancy_iou(
                baseline_logits > 0, outputs.targets, outputs.masked
            ),
        }
        self.log_dict(metrics, batch_size=batch.voxels.batch_size, sync_dist=True)

    def predict_step(self, batch: BevBatch, batch_idx: int) -> torch.Tensor:
        """Encoder tokens of the current keyframe: (B, N, D)."""
        return bev_to_tokens(self(batch), self.token_patch)
