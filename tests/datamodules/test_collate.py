"""Voxel stacking: one copy per sample into the batch tensors, the same batch as the encoder's collate."""

import pytest
import torch

from bevjepa.sparse import collate_voxels
from datamodules.collate import stack_voxels


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
