"""The training order: a pure function of (seed, epoch), disjoint across ranks, and exact across a resume."""

from itertools import chain
from pathlib import Path

import lightning as L
import pytest
import torch
from lightning.pytorch.callbacks import ModelCheckpoint

from bevjepa.batch import BevBatch
from bevjepa.grid import BevGrid
from datamodules.nuscenes import NuScenesBEVDataModule
from datamodules.resumable_sampler import ResumableDistributedSampler

GRID = BevGrid(voxel_size=(0.8, 0.8, 0.4))


def test_order_is_a_function_of_seed_and_epoch_and_ranks_share_it():
    dataset = list(range(23))
    orders = {}
    for epoch in (0, 1):
        ranks = []
        for rank in range(3):
            sampler = ResumableDistributedSampler(dataset, num_replicas=3, rank=rank, seed=7)
            sampler.set_epoch(epoch)
            ranks.append(list(sampler))
        assert all(len(share) == 8 for share in ranks)  # 23 padded to 24, as DistributedSampler does
        assert set().union(*map(set, ranks)) == set(dataset)
        orders[epoch] = ranks
    assert orders[0] != orders[1]
    again = ResumableDistributedSampler(dataset, num_replicas=3, rank=1, seed=7)
    again.set_epoch(1)
    assert list(again) == orders[1][1]
    resumed = ResumableDistributedSampler(
        dataset, num_replicas=3, rank=1, seed=7, resume_epoch=1, resume_samples=5
    )
    resumed.set_epoch(1)
    assert list(resumed) == orders[1][1][5:]
    resumed.set_epoch(2)  # later epochs are whole again
    assert len(list(resumed)) == 8
    with pytest.raises(ValueError, match="cannot resume"):
        ResumableDistributedSampler(dataset, num_replicas=3, rank=1, resume_samples=9)


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


def _fit(dataroot: Path, version: str, root: Path, max_steps: int, callbacks=(), ckpt_path=None) -> list:
    datamodule = NuScenesBEVDataModule(
        str(dataroot),
        version,
        grid=GRID,
        lidar_sweeps=1,
        radar=False,
        future_steps=0,
        occlusion_window=0,
        labels=False,
        batch_size=2,
        seed=3,
    )
    module = TokenRecorder()
    trainer = L.Trainer(
        accelerator="cpu",
        max_steps=max_steps,
        limit_val_batches=0,
        num_sanity_val_steps=0,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=root,
        callbacks=list(callbacks),
    )
    trainer.fit(module, datamodule=datamodule, ckpt_path=ckpt_path)
    return module.tokens


def test_resumed_run_sees_the_samples_an_uninterrupted_run_sees(synthetic_dataroot, tmp_path: Path):
    dataroot, version = synthetic_dataroot
    # The tiny train split has 8 keyframes: 4 batches an epoch; step 6 is the middle of the second epoch.
    checkpoint = ModelCheckpoint(dirpath=tmp_path / "ckpt", every_n_train_steps=6, save_top_k=-1)
    straight = _fit(dataroot, version, tmp_path / "straight", 10, [checkpoint])
    assert len(straight) == 10
    first_epoch, second_epoch = straight[:4], straight[4:8]
    assert sorted(chain(*first_epoch)) == sorted(chain(*second_epoch)), "every keyframe once an epoch"
    assert first_epoch != second_epoch, "each epoch has its own order"
    saved = sorted((tmp_path / "ckpt").glob("*step=6*.ckpt"))
    assert len(saved) == 1
    resumed = _fit(dataroot, version, tmp_path / "resumed", 10, ckpt_path=saved[0])
    assert resumed == straight[6:]
