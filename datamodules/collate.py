"""Stacking dataset items into a typed ``BevBatch``."""

import math

import numba
import numpy as np
import torch
from torch.utils.data import get_worker_info

from bevjepa.batch import BevBatch, FutureFrames, ProbeLabels, VoxelBatch


def _empty(shape: tuple[int, ...], dtype: torch.dtype) -> torch.Tensor:
    """An uninitialised tensor; inside a DataLoader worker it lives in shared memory, as torch's default
    collate does, so that handing the batch to the main process copies nothing."""
    if get_worker_info() is None:
        return torch.empty(shape, dtype=dtype)
    storage = torch.UntypedStorage._new_shared(math.prod(shape) * dtype.itemsize)
    return torch.empty(0, dtype=dtype).set_(storage, 0, shape)


@numba.njit(cache=True)
def _fill_coords(out: np.ndarray, start: int, index: int, coords: np.ndarray) -> None:
    """Rows ``start...`` of ``out`` (V, 4) int32 become ``[index, z, y, x]`` (a strided widening copy that
    torch does several times slower)."""
    for row in range(coords.shape[0]):
        out[start + row, 0] = index
        out[start + row, 1] = coords[row, 0]
        out[start + row, 2] = coords[row, 1]
        out[start + row, 3] = coords[row, 2]


def stack_voxels(samples: list[tuple[torch.Tensor, torch.Tensor]]) -> VoxelBatch:
    """Stack per-sample ``(features (V_i, F) float32, coords (V_i, 3) [z, y, x] int16 or int32)``.

    Each sample is copied once, straight into the batch tensors: a batch of a nuScenes-scale sample and its
    six futures moves ~100 MB, and every extra pass over fresh memory costs as much as the copy itself.
    """
    total, channels = sum(len(c) for _, c in samples), samples[0][0].shape[1]
    features = _empty((total, channels), torch.float32)  # (V, F)
    coords = _empty((total, 4), torch.int32)  # (V, 4) [b, z, y, x]
    coords_out, start = coords.numpy(), 0
    for index, (sample_features, sample_coords) in enumerate(samples):
        features[start : start + len(sample_coords)] = sample_features
        _fill_coords(coords_out, start, index, sample_coords.numpy())
        start += len(sample_coords)
    return VoxelBatch(features=features, coords=coords, batch_size=len(samples))


def _future_voxels(items: list[dict], step: int, channels: int) -> VoxelBatch:
    empty = (torch.zeros(0, channels), torch.zeros(0, 3, dtype=torch.int16))
    samples = [
        (item["future_features"][step], item["future_coords"][step])
        if item["future_features"][step] is not None
        else empty
        for item in items
    ]
    return stack_voxels(samples)


def collate_bev_batch(items: list[dict]) -> BevBatch:
    """Batch dataset items (skipped items are only counted).

    Raises:
        ValueError: every item of the batch was skipped.
    """
    skipped = [item["skipped"] for item in items if "skipped" in item]
    items = [item for item in items if "skipped" not in item]
    if not items:
        raise ValueError(f"every sample of a batch was bad: {skipped}")
    channels = items[0]["features"].shape[1]
    futures = None
    if "future_poses" in items[0]:
        steps = len(items[0]["future_features"]) if "future_features" in items[0] else 0
        futures = FutureFrames(
            voxels=[_future_voxels(items, step, channels) for step in range(steps)],
            poses=torch.stack([item["future_poses"] for item in items]),  # (B, K, 4, 4)
            actions=torch.stack([item["actions"] for item in items]),  # (B, K, 4)
            valid=torch.stack([item["future_valid"] for item in items]),  # (B, K)
        )
    labels = None
    if "occupancy" in items[0]:
        labels = ProbeLabels(
            occupancy=torch.stack([item["occupancy"].long() for item in items]),  # (B, 1 + K, H, W)
            map_rasters=torch.stack([item["map_rasters"] for item in items]),  # (B, 6, H, W)
            ego_trajectory=torch.stack([item["ego_trajectory"] for item in items]),  # (B, K, 2)
            # Copies: a cached item's boxes are views of its memory-mapped file, which would stay open
            # for as long as a caller keeps the boxes.
            future_boxes=[[boxes.clone() for boxes in item["future_boxes"]] for item in items],
            ego_status=torch.stack([item["ego_status"] for item in items]),  # (B, 4)
        )
    return BevBatch(
        sample_tokens=[item["sample_token"] for item in items],
        voxels=stack_voxels([(item["features"], item["coords"]) for item in items]),
        visibility=torch.stack([item["visibility"] for item in items]),  # (B, H, W)
        target_visibility=torch.stack([item["target_visibility"] for item in items]),  # (B, H, W)
        futures=futures,
        labels=labels,
        skipped_sample_tokens=skipped,
    )
