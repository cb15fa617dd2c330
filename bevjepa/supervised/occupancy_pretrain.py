"""``SupervisedOccupancyPretrainModule``: the supervised upper bound of the probe suite. The pretraining encoder
trained end to end on the probe labels themselves (current occupancy classes and map rasters), through the
probes' own heads on layer-normalised tokens (each token mapped on its own to its ``patch x patch`` cells)."""

from collections.abc import Callable

import lightning as L
import torch
import torch.nn.functional as F
from torch import nn
from torchmetrics.classification import MulticlassJaccardIndex, MultilabelJaccardIndex

from bevjepa.batch import BevBatch
from bevjepa.encoders import SparseBEVEncoder
from bevjepa.encoders.tokens import bev_to_tokens, token_grid_shape
from bevjepa.grid import BevGrid
from bevjepa.jepa.losses import layer_normalize
from bevjepa.optimization import DEFAULT_OPTIMIZER, OptimizerSettings, adamw_warmup_cosine
from bevjepa.probes.heads import IGNORE_INDEX, MAP_LAYERS, OCCUPANCY_CLASSES, map_head, occupancy_head


class SupervisedOccupancyPretrainModule(L.LightningModule):
    """Trains a sparse BEV encoder on current occupancy classes (cross-entropy, unobserved cells ignored) and
    map-element rasters (binary cross-entropy per layer).

    Args:
        grid: the voxel grid (linked from the DataModule).
        in_channels: per-voxel features (linked from the DataModule).
        encoder: builds the encoder from ``(grid, in_channels)``.
        token_patch: BEV cells per token side (the probes' patch).
        occupancy_weight: weight of the occupancy loss.
        map_weight: weight of the map loss.
        optimizer: AdamW and learning-rate schedule settings (those of the other pretraining methods).
    """

    def __init__(
        self,
        grid: BevGrid,
        in_channels: int,
        encoder: Callable[[BevGrid, int], SparseBEVEncoder] = SparseBEVEncoder,
        token_patch: int = 1,
        occupancy_weight: float = 1.0,
        map_weight: float = 1.0,
        optimizer: OptimizerSettings = DEFAULT_OPTIMIZER,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.grid = grid
        self.token_patch = token_patch
        self.token_shape = token_grid_shape(grid, token_patch)
        self.occupancy_weight = occupancy_weight
        self.map_weight = map_weight
        self.optimizer_settings = optimizer
        self.encoder = encoder(grid, in_channels)
        self.occupancy_head = occupancy_head(self.encoder.embed_dim, self.token_shape, token_patch)
        self.map_head = map_head(self.encoder.embed_dim, self.token_shape, token_patch)
        self.occupancy_iou = nn.ModuleDict(
            {
                stage: MulticlassJaccardIndex(
                    num_classes=len(OCCUPANCY_CLASSES), ignore_index=IGNORE_INDEX, average="none"
                )
                for stage in ("val", "test")
            }
        )
        self.map_iou = nn.ModuleDict(
            {
                stage: MultilabelJaccardIndex(num_labels=len(MAP_LAYERS), average="none")
                for stage in ("val", "test")
            }
        )

    def probe_encoder(self) -> SparseBEVEncoder:
        """The encoder whose frozen features the probes read."""
        return self.encoder

    def forward(self, batch: BevBatch) -> torch.Tensor:
        """BEV embedding map of the current keyframe: (B, D, H, W)."""
        return self.encoder(batch.voxels)

    def predict_logits(self, batch: BevBatch) -> tuple[torch.Tensor, torch.Tensor]:
        """Occupancy logits (B, 4, H, W) and map logits (B, 6, H, W) on the BEV cells."""
        tokens = layer_normalize(bev_to_tokens(self(batch), self.token_patch))  # (B, N, D)
        return self.occupancy_head(tokens), self.map_head(tokens)

    def _losses(self, batch: BevBatch) -> tuple[dict[str, torch.Tensor], torch.Tensor, torch.Tensor]:
        if batch.labels is None:
            raise ValueError("supervised pretraining needs probe labels: set the DataModule's labels: true")
        occupancy_logits, map_logits = self.predict_logits(batch)
        occupancy = batch.labels.occupancy[:, 0]  # (B, H, W), now
        rasters = batch.labels.map_rasters.float()  # (B, 6, H, W)
        observed = (occupancy != IGNORE_INDEX).any()
        losses = {
            # Cross-entropy of an all-ignored batch is NaN; such a batch contributes no occupancy term.
            "occupancy": F.cross_entropy(occupancy_logits, occupancy, ignore_index=IGNORE_INDEX)
            if observed
            else occupancy_logits.sum() * 0.0,
            "map": F.binary_cross_entropy_with_logits(map_logits, rasters),
        }
        losses["total"] = self.occupancy_weight * losses["occupancy"] + self.map_weight * losses["map"]
        return losses, occupancy_logits, map_logits

    def _total_steps(self) -> int:
        total = self.optimizer_settings.total_steps
        return int(total) if total is not None else int(self.trainer.estimated_stepping_batches)

    def training_step(self, batch: BevBatch, batch_idx: int) -> torch.Tensor:
        losses, _, _ = self._losses(batch)
        batch_size = batch.voxels.batch_size
        self.log("train/loss", losses["total"], batch_size=batch_size, prog_bar=True)
        self.log_dict({f"train/{k}_loss": losses[k] for k in ("occupancy", "map")}, batch_size=batch_size)
        return losses["total"]

    def configure_optimizers(self) -> dict:
        return adamw_warmup_cosine(self, self.optimizer_settings, self._total_steps())

    def validation_step(self, batch: BevBatch, batch_idx: int) -> None:
        self._evaluate(batch, "val")

    def test_step(self, batch: BevBatch, batch_idx: int) -> None:
        self._evaluate(batch, "test")

    def _evaluate(self, batch: BevBatch, stage: str) -> None:
        losses, occupancy_logits, map_logits = self._losses(batch)
        batch_size = batch.voxels.batch_size
        self.log_dict(
            {f"{stage}/{k}_loss": v for k, v in losses.items()}, batch_size=batch_size, sync_dist=True
        )
        self.occupancy_iou[stage].update(occupancy_logits.argmax(dim=1), batch.labels.occupancy[:, 0])
        self.map_iou[stage].update(map_logits > 0, batch.labels.map_rasters.long())

    def _log_iou(self, stage: str) -> None:
        occupancy, rasters = self.occupancy_iou[stage].compute(), self.map_iou[stage].compute()
        metrics = {f"{stage}/occupancy_miou": occupancy.mean(), f"{stage}/map_miou": rasters.mean()}
        metrics.update(
            {f"{stage}/occupancy_iou_{c}": v for c, v in zip(OCCUPANCY_CLASSES, occupancy, strict=True)}
        )
        metrics.update({f"{stage}/map_iou_{c}": v for c, v in zip(MAP_LAYERS, rasters, strict=True)})
        self.log_dict(metrics)
        self.occupancy_iou[stage].reset()
        self.map_iou[stage].reset()

    def on_validation_epoch_end(self) -> None:
        self._log_iou("val")

    def on_test_epoch_end(self) -> None:
        self._log_iou("test")

    def predict_step(self, batch: BevBatch, batch_idx: int) -> torch.Tensor:
        """Encoder tokens of the current keyframe: (B, N, D)."""
        return bev_to_tokens(self(batch), self.token_patch)
