"""``NuScenesBEVDataModule``: nuScenes-format data (real or synthetic) as typed BEV batches."""

import logging
import warnings
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.utilities.warnings import PossibleUserWarning
from torch.utils.data import DataLoader

from bevjepa.batch import BevBatch
from bevjepa.grid import BevGrid
from datamodules.collate import collate_bev_batch
from datamodules.nuscenes_dataset import NuScenesBEVDataset, OnBadSample
from datamodules.nuscenes_index import NuScenesIndex, open_nuscenes
from datamodules.resumable_sampler import ResumableDistributedSampler
from datamodules.sample_builder import SampleBuilder
from datamodules.sample_cache import SampleCache
from datamodules.sample_options import SampleOptions

log = logging.getLogger(__name__)


class NuScenesBEVDataModule(L.LightningDataModule):
    """Fused, ego-motion-compensated LiDAR (+ radar) voxels with visibility, futures, actions and labels.

    Args:
        dataroot: the nuScenes-format dataroot.
        version: its table folder, e.g. ``v1.0-trainval``, ``v1.0-mini`` or a synthetic ``v1.0-demo``.
        train_split, val_split, test_split: split names (official nuScenes splits for real versions, the
            names in ``bevjepa_splits.json`` for synthetic data).
        grid: the voxel grid, shared with the model.
        lidar_sweeps: LIDAR_TOP sweeps per keyframe (10 = 0.5 s at 20 Hz).
        radar: fuse the five radars' points into the voxels.
        radar_sweeps: sweeps per radar.
        future_steps: future keyframes per sample (6 = 3 s at 2 Hz); 0 for none.
        future_voxels: whether batches carry the future keyframes' voxels (JEPA future targets need them).
        occlusion_window: keyframes before and after that form the occluded-region target view.
        labels: build probe labels (never needed for pretraining).
        cache_dir: read preprocessed samples from here (``tools/create_data.py``); missing ones are built.
        batch_size, num_workers: DataLoader settings.
        on_bad_sample: ``raise`` (stop, naming the sample and file) or ``skip`` (log and count).
        seed: seeds the training order, a pure function of (seed, epoch) split across ranks; a run resumed
            from a checkpoint goes on with the samples the interrupted run had not reached.
    """

    def __init__(
        self,
        dataroot: str = "data/synthetic_demo",
        version: str = "v1.0-demo",
        train_split: str = "train",
        val_split: str = "val",
        test_split: str = "val",
        grid: BevGrid | None = None,
        lidar_sweeps: int = 10,
        radar: bool = True,
        radar_sweeps: int = 6,
        future_steps: int = 6,
        future_voxels: bool = True,
        occlusion_window: int = 2,
        labels: bool = True,
        cache_dir: str | None = None,
        batch_size: int = 4,
        num_workers: int = 0,
        on_bad_sample: OnBadSample = "raise",
        seed: int = 0,
    ) -> None:
        super().__init__()
        self.dataroot, self.version = Path(dataroot), version
        self.splits = {"fit": train_split, "validate": val_split, "test": test_split}
        self.grid = grid if grid is not None else BevGrid()
        self.options = SampleOptions(
            grid=self.grid,
            lidar_sweeps=lidar_sweeps,
            radar=radar,
            radar_sweeps=radar_sweeps,
            future_steps=future_steps,
            occlusion_window=occlusion_window,
            labels=labels,
        )
        self.future_voxels = future_voxels and future_steps > 0
        self.cache_dir = cache_dir
        self.batch_size, self.num_workers = batch_size, num_workers
        self.on_bad_sample: OnBadSample = on_bad_sample
        self.seed = seed
        self.skipped_samples = 0
        # Where training is in its order: samples of this rank consumed in ``epoch`` (saved in checkpoints).
        self.train_position = {"epoch": 0, "samples": 0}
        self._builder: SampleBuilder | None = None
        self._datasets: dict[tuple[str, bool], NuScenesBEVDataset] = {}

    @property
    def in_channels(self) -> int:
        """Features per voxel (LiDAR channels, plus radar channels with radar on)."""
        return 6 + (4 if self.options.radar else 0)

    @property
    def builder(self) -> SampleBuilder:
        """The sample builder (opens the dataset on first use)."""
        if self._builder is None:
            nusc = open_nuscenes(self.dataroot, self.version)
            index = NuScenesIndex(
                nusc,
                lidar_sweeps=self.options.lidar_sweeps,
                radar_sweeps=self.options.radar_sweeps,
                radar=self.options.radar,
                future_steps=self.options.future_steps,
            )
            self._builder = SampleBuilder(index, self.options)
            assert len(self._builder.channels) == self.in_channels
        return self._builder

    def dataset(self, split: str, future_voxels: bool | None = None) -> NuScenesBEVDataset:
        """The dataset of a split name (built once); ``future_voxels`` overrides the module's choice for it."""
        future_voxels = (
            self.future_voxels if future_voxels is None else future_voxels and self.options.future_steps > 0
        )
        key = (split, future_voxels)
        if key not in self._datasets:
            cache = SampleCache(self.cache_dir, self.options) if self.cache_dir else None
            records = self.builder.index.records(split)
            if not records:
                raise ValueError(f"split {split!r} of {self.version} in {self.dataroot} has no samples")
            self._datasets[key] = NuScenesBEVDataset(
                self.builder, records, cache, future_voxels, self.on_bad_sample
            )
        return self._datasets[key]

    def setup(self, stage: str) -> None:
        if stage == "fit":
            self.dataset(self.splits["fit"])
            self.dataset(self.splits["validate"])
        elif stage in ("validate", "test"):
            self.dataset(self.splits[stage])
        elif stage == "predict":
            self.dataset(self.splits["test"])

    def _loader(self, split: str, sampler: torch.utils.data.Sampler | None = None) -> DataLoader:
        return DataLoader(
            self.dataset(split),
            batch_size=self.batch_size,
            sampler=sampler,
            num_workers=self.num_workers,
            collate_fn=collate_bev_batch,
            persistent_workers=self.num_workers > 0,
        )

    def train_dataloader(self) -> DataLoader:
        dataset = self.dataset(self.splits["fit"])
        trainer = self.trainer
        sampler = ResumableDistributedSampler(
            dataset,
            num_replicas=trainer.world_size if trainer is not None else 1,
            rank=trainer.global_rank if trainer is not None else 0,
            seed=self.seed,
            resume_epoch=self.train_position["epoch"],
            resume_samples=self.train_position["samples"],
        )
        # Lightning warns that a mid-epoch resume is unreliable unless the DataLoader itself is stateful; this
        # DataModule restores the position in its own state (``train_position``), so the resume is exact.
        warnings.filterwarnings(
            "ignore",
            "You're resuming from a checkpoint that ended before the epoch ended",
            PossibleUserWarning,
        )
        return self._loader(self.splits["fit"], sampler)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.splits["validate"])

    def test_dataloader(self) -> DataLoader:
        return self._loader(self.splits["test"])

    def predict_dataloader(self) -> DataLoader:
        return self._loader(self.splits["test"])

    def state_dict(self) -> dict:
        return {"train_position": dict(self.train_position)}

    def load_state_dict(self, state_dict: dict) -> None:
        self.train_position = dict(state_dict["train_position"])

    def on_after_batch_transfer(self, batch: BevBatch, dataloader_idx: int) -> BevBatch:
        trainer = self.trainer
        if trainer is not None and trainer.training:  # called once per batch the training step receives
            if self.train_position["epoch"] != trainer.current_epoch:
                self.train_position = {"epoch": trainer.current_epoch, "samples": 0}
            self.train_position["samples"] += len(batch.sample_tokens) + len(batch.skipped_sample_tokens)
        if batch.skipped_sample_tokens:
            self.skipped_samples += len(batch.skipped_sample_tokens)
            log.warning(
                "skipped %d bad samples so far (this batch: %s)",
                self.skipped_samples,
                batch.skipped_sample_tokens,
            )
        return batch
