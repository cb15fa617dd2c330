"""A DataModule over one real keyframe folder: the single-sweep path from sensor file to voxels and a BEV
box-occupancy target, with seeded yaw / flip augmentation so one frame yields many distinct samples."""

from pathlib import Path

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from bevjepa.batch import BevOccupancyBatch
from bevjepa.geometry.bev_raster import boxes_to_bev_mask
from bevjepa.grid import BevGrid
from bevjepa.sparse import Voxelizer, collate_voxels
from datamodules.real_frame import RealFrame, load_real_frame

POINT_FEATURES = ("x", "y", "z", "intensity")


def rotate_frame(
    points: np.ndarray, boxes: np.ndarray, yaw: float, flip_y: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Rotate points (N, >=3) and boxes (M, 7) about +z by ``yaw``, then optionally mirror y."""
    cos, sin = np.cos(yaw), np.sin(yaw)
    rotation = np.array([[cos, -sin], [sin, cos]])
    points, boxes = points.copy(), boxes.copy()
    points[:, :2] = points[:, :2] @ rotation.T
    boxes[:, :2] = boxes[:, :2] @ rotation.T
    boxes[:, 6] += yaw
    if flip_y:
        points[:, 1] *= -1
        boxes[:, 1] *= -1
        boxes[:, 6] *= -1
    return points, boxes


class RealFrameDataset(Dataset):
    """``length`` augmented views of one real frame; view 0 is the frame itself.

    Args:
        frame: the loaded frame.
        grid: voxel grid.
        length: number of views.
        seed: augmentation seed; view ``i`` uses ``numpy.random.default_rng((seed, i))``.
    """

    def __init__(self, frame: RealFrame, grid: BevGrid, length: int, seed: int) -> None:
        self.frame, self.grid, self.length, self.seed = frame, grid, length, seed
        self.voxelizer = Voxelizer(grid, num_point_features=len(POINT_FEATURES))
        self.valid_boxes = frame.boxes[[c != "ignored" for c in frame.categories]]

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        points, boxes = self.frame.points[:, :4], self.valid_boxes
        if index > 0:
            rng = np.random.default_rng((self.seed, index))
            points, boxes = rotate_frame(points, boxes, rng.uniform(-np.pi, np.pi), bool(rng.integers(2)))
        features, coords, _ = self.voxelizer(points)
        occupancy = torch.from_numpy(boxes_to_bev_mask(boxes, self.grid)).float()  # (H, W)
        return features, coords, occupancy


def collate_occupancy(samples: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]) -> BevOccupancyBatch:
    """Batch ``(features, coords, occupancy)`` samples."""
    voxels = collate_voxels([(features, coords) for features, coords, _ in samples])
    return BevOccupancyBatch(voxels=voxels, occupancy=torch.stack([occ for _, _, occ in samples]))


class RealFrameDataModule(L.LightningDataModule):
    """Serves augmented views of one real keyframe (``frame.json`` + ``.pcd.bin``) for training and the
    unaugmented frame for validation.

    Args:
        frame_dir: folder with ``frame.json`` and its LiDAR file.
        grid: voxel grid shared with the model.
        train_views: augmented views per training epoch.
        batch_size: samples per batch.
        num_workers: DataLoader workers.
        seed: augmentation seed.
    """

    def __init__(
        self,
        frame_dir: str = "../shared/data/nuscenes_real_frame",
        grid: BevGrid | None = None,
        train_views: int = 16,
        batch_size: int = 2,
        num_workers: int = 0,
        seed: int = 0,
    ) -> None:
        super().__init__()
        self.frame_dir = Path(frame_dir)
        self.grid = grid if grid is not None else BevGrid()
        self.train_views, self.batch_size, self.num_workers, self.seed = (
            train_views,
            batch_size,
            num_workers,
            seed,
        )
        self.in_channels = len(POINT_FEATURES)
        self.frame: RealFrame | None = None

    def setup(self, stage: str) -> None:
        if self.frame is None:
            self.frame = load_real_frame(self.frame_dir)

    def _loader(self, length: int, shuffle: bool) -> DataLoader:
        assert self.frame is not None, "call setup() first"
        dataset = RealFrameDataset(self.frame, self.grid, length, self.seed)
        return DataLoader(
            dataset,
            batch_size=self.batch_size,
            shuffle=shuffle,
            num_workers=self.num_workers,
            collate_fn=collate_occupancy,
            generator=torch.Generator().manual_seed(self.seed),
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train_views, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader(1, shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader(1, shuffle=False)

    def predict_dataloader(self) -> DataLoader:
        return self._loader(1, shuffle=False)
