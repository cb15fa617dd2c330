"""Stacking dataset items into a typed ``BevBatch``."""

import torch

from bevjepa.batch import BevBatch, FutureFrames, ProbeLabels, VoxelBatch
from bevjepa.sparse import collate_voxels


def _future_voxels(items: list[dict], step: int, channels: int) -> VoxelBatch:
    empty = (torch.zeros(0, channels), torch.zeros(0, 3, dtype=torch.int32))
    samples = [
        (item["future_features"][step], item["future_coords"][step])
        if item["future_features"][step] is not None
        else empty
        for item in items
    ]
    return collate_voxels(samples)


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
    if "future_features" in items[0]:
        steps = len(items[0]["future_features"])
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
            future_boxes=[list(item["future_boxes"]) for item in items],
            ego_status=torch.stack([item["ego_status"] for item in items]),  # (B, 4)
        )
    return BevBatch(
        sample_tokens=[item["sample_token"] for item in items],
        voxels=collate_voxels([(item["features"], item["coords"]) for item in items]),
        visibility=torch.stack([item["visibility"] for item in items]),  # (B, H, W)
        target_visibility=torch.stack([item["target_visibility"] for item in items]),  # (B, H, W)
        futures=futures,
        labels=labels,
        skipped_sample_tokens=skipped,
    )
