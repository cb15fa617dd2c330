"""Collating: voxels stacked with one copy per sample into the same batch as the encoder's collate, and no
batch tensor left as a view of a memory-mapped cache file."""

import pytest
import torch

from bevjepa.grid import BevGrid
from bevjepa.sparse import collate_voxels
from datamodules.collate import collate_bev_batch, stack_voxels
from datamodules.nuscenes import NuScenesBEVDataModule
from datamodules.sample_cache import SampleCache
from datamodules.sample_options import SampleOptions


@pytest.mark.parametrize("dtype", [torch.int16, torch.int32])
def test_stacked_voxels_equal_the_encoder_collate(dtype: torch.dtype):
    generator = torch.Generator().manual_seed(0)
    samples = [
        (torch.randn(count, 10, generator=generator), torch.randint(0, 1024, (count, 3), generator=generator))
        for count in (5, 0, 17)
    ]
    stacked = stack_voxels([(features, coords.to(dtype)) for features, coords in samples])
    expected = collate_voxels([(features, coords.int()) for features, coords in samples])
    assert stacked.batch_size == 3 and stacked.coords.dtype == torch.int32
    assert torch.equal(stacked.features, expected.features)
    assert torch.equal(stacked.coords, expected.coords)
    assert stacked.coords[:, 0].tolist() == [0] * 5 + [2] * 17


def test_batches_hold_no_view_of_a_cached_file(tmp_path):
    cache = SampleCache(tmp_path, SampleOptions(BevGrid(voxel_size=(0.8, 0.8, 0.4)), future_steps=2))
    payload = {
        "features": torch.ones(3, 10),
        "coords": torch.zeros(3, 3, dtype=torch.int16),
        "visibility": torch.zeros(4, 4, dtype=torch.uint8),
        "target_visibility": torch.zeros(4, 4, dtype=torch.uint8),
        "future_tokens": ["", ""],
        "future_poses": torch.zeros(2, 4, 4),
        "actions": torch.zeros(2, 4),
        "future_valid": torch.zeros(2, dtype=torch.bool),
        "occupancy": torch.zeros(3, 4, 4, dtype=torch.uint8),
        "map_rasters": torch.zeros(6, 4, 4, dtype=torch.bool),
        "ego_trajectory": torch.zeros(2, 2),
        "future_boxes": [torch.ones(2, 7), torch.zeros(0, 7)],
        "ego_status": torch.arange(4.0),
    }
    cache.save("scene", "token", payload)
    item = cache.load("scene", "token")
    item.pop("future_tokens")
    batch = collate_bev_batch([{**item, "sample_token": "token"}])
    cached = [value for value in item.values() if isinstance(value, torch.Tensor)] + list(
        item["future_boxes"]
    )
    cached_storages = {tensor.untyped_storage().data_ptr() for tensor in cached}
    batch_tensors = [batch.voxels.features, batch.voxels.coords, batch.labels.ego_status]
    for tensor in batch_tensors + batch.labels.future_boxes[0]:
        assert tensor.untyped_storage().data_ptr() not in cached_storages
    assert torch.equal(batch.labels.ego_status[0], torch.arange(4.0))
    assert torch.equal(batch.labels.future_boxes[0][0], torch.ones(2, 7))


def test_future_motion_without_future_voxels(synthetic_dataroot):
    dataroot, version = synthetic_dataroot
    data = NuScenesBEVDataModule(
        dataroot=str(dataroot),
        version=version,
        grid=BevGrid(point_cloud_range=(-25.6, -25.6, -5.0, 25.6, 25.6, 3.0), voxel_size=(0.4, 0.4, 0.5)),
        lidar_sweeps=1,
        radar=False,
        future_steps=2,
        future_voxels=False,
        labels=False,
        batch_size=2,
    )
    data.setup("validate")
    batch = next(iter(data.val_dataloader()))
    assert batch.futures is not None and batch.futures.voxels == []
    assert batch.futures.poses.shape == (2, 2, 4, 4) and batch.futures.actions.shape == (2, 2, 4)
    assert batch.futures.valid.shape == (2, 2) and batch.futures.valid.any()
    # One split may load the future keyframes' voxels all the same (the probe suite's perfect forecasts).
    split = data.splits["validate"]
    with_voxels = data.dataset(split, future_voxels=True)
    assert with_voxels is not data.dataset(split) and with_voxels is data.dataset(split, future_voxels=True)
    batch = collate_bev_batch([with_voxels[0], with_voxels[1]])
    assert len(batch.futures.voxels) == 2 and batch.futures.voxels[0].features.shape[0] > 0
