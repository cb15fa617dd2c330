"""Supervised BEV box occupancy: the encoder plus a 1x1 head, trained with binary cross-entropy."""

from collections.abc import Callable

import lightning as L
import torch
import torch.nn.functional as F
from torch import nn

from bevjepa.batch import BevOccupancyBatch
from bevjepa.encoders import SparseBEVEncoder
from bevjepa.grid import BevGrid


class BoxOccupancyModule(L.LightningModule):
    """Trains a BEV encoder to mark the cells under annotated boxes.

    Args:
        grid: the voxel grid (linked from the DataModule).
        in_channels: per-voxel features (linked from the DataModule).
        encoder: builds the encoder from ``(grid, in_channels)``.
        learning_rate: AdamW learning rate.
        weight_decay: AdamW weight decay.
    """

    def __init__(
        self,
        grid: BevGrid,
        in_channels: int,
        encoder: Callable[[BevGrid, int], SparseBEVEncoder] = SparseBEVEncoder,
        learning_rate: float = 2e-3,
        weight_decay: float = 1e-4,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.encoder = encoder(grid, in_channels)
        self.head = nn.Conv2d(self.encoder.embed_dim, 1, 1)

    def forward(self, batch: BevOccupancyBatch) -> torch.Tensor:
        """Occupancy logits (B, H, W)."""
        return self.head(self.encoder(batch.voxels)).squeeze(1)

    def _step(self, batch: BevOccupancyBatch, stage: str) -> torch.Tensor:
        logits = self(batch)
        # Occupied cells are rare: weight them by the inverse of their share so the head cannot win by
        # predicting "free" everywhere.
        positive_share = batch.occupancy.mean().clamp(min=1e-3)
        loss = F.binary_cross_entropy_with_logits(
            logits, batch.occupancy, pos_weight=(1 - positive_share) / positive_share
        )
        predicted = logits > 0
        target = batch.occupancy > 0.5
        iou = (predicted & target).sum() / (predicted | target).sum().clamp(min=1)
        self.log_dict(
            {f"{stage}/loss": loss, f"{stage}/occupancy_iou": iou},
            batch_size=batch.voxels.batch_size,
            prog_bar=True,
        )
        return loss

    def training_step(self, batch: BevOccupancyBatch, batch_index: int) -> torch.Tensor:
        return self._step(batch, "train")

    def validation_step(self, batch: BevOccupancyBatch, batch_index: int) -> None:
        self._step(batch, "val")

    def test_step(self, batch: BevOccupancyBatch, batch_index: int) -> None:
        self._step(batch, "test")

    def predict_step(self, batch: BevOccupancyBatch, batch_index: int) -> torch.Tensor:
        return torch.sigmoid(self(batch))

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.AdamW(
            self.parameters(), lr=self.hparams.learning_rate, weight_decay=self.hparams.weight_decay
        )
