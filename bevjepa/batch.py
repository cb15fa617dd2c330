"""Typed batches that flow from the data modules into the models (Lightning moves them to the device)."""

from dataclasses import dataclass

import torch


@dataclass
class VoxelBatch:
    """Voxels of a batch of samples, ready for the sparse encoder.

    Attributes:
        features: (V, F) float32 per-voxel features (e.g. mean x, y, z, intensity, time lag).
        coords: (V, 4) int32 ``[batch, z, y, x]`` voxel indices (spconv's order).
        batch_size: number of samples in the batch.
    """

    features: torch.Tensor
    coords: torch.Tensor
    batch_size: int

    def __post_init__(self) -> None:
        if self.features.shape[0] != self.coords.shape[0] or self.coords.shape[-1] != 4:
            raise ValueError(
                f"VoxelBatch features {tuple(self.features.shape)} and coords {tuple(self.coords.shape)} "
                "do not describe the same voxels as (V, F) and (V, 4)"
            )


@dataclass
class BevOccupancyBatch:
    """Voxels plus a BEV occupancy target (cells under annotated boxes) for supervised training.

    Attributes:
        voxels: the input voxels.
        occupancy: (B, H, W) float32 in {0, 1}, on the grid's BEV cells.
    """

    voxels: VoxelBatch
    occupancy: torch.Tensor
