"""Two CPU ranks (DDP, gloo) train one epoch of the tiny synthetic dataroot through NuScenesBEVDataModule and
write the sample tokens each rank received to ``<out>/rank<r>.json``.

    python ddp_training_order.py DATAROOT VERSION OUT_DIR
"""

import json
import sys
from pathlib import Path

import lightning as L
import torch

from bevjepa.batch import BevBatch
from bevjepa.grid import BevGrid
from datamodules.nuscenes import NuScenesBEVDataModule

SEED = 3


class TokenRecorder(L.LightningModule):
    """Records the sample tokens of every training batch; one parameter so that the optimiser steps."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(1))
        self.tokens: list[list[str]] = []

    def training_step(self, batch: BevBatch, batch_idx: int) -> torch.Tensor:
        self.tokens.append(list(batch.sample_tokens))
        return (self.weight - 1.0).square().sum()

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.1)


def small_datamodule(dataroot: str, version: str) -> NuScenesBEVDataModule:
    """Cheap samples (one sweep, no radar, futures or labels): the order is what is tested."""
    return NuScenesBEVDataModule(
        dataroot,
        version,
        grid=BevGrid(voxel_size=(0.8, 0.8, 0.4)),
        lidar_sweeps=1,
        radar=False,
        future_steps=0,
        occlusion_window=0,
        labels=False,
        batch_size=2,
        seed=SEED,
    )


def main(dataroot: str, version: str, out_dir: Path) -> None:
    torch.set_num_threads(1)
    module = TokenRecorder()
    trainer = L.Trainer(
        accelerator="cpu",
        devices=2,
        strategy="ddp",
        max_epochs=1,
        limit_val_batches=0,
        num_sanity_val_steps=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(module, small_datamodule(dataroot, version))
    (out_dir / f"rank{trainer.global_rank}.json").write_text(json.dumps(module.tokens))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], Path(sys.argv[3]))
