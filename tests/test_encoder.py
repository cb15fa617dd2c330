"""SparseBEVEncoder: shapes follow the grid, gradients reach every parameter, seeds make it repeatable."""

import pytest
import torch

from bevjepa.batch import VoxelBatch
from bevjepa.encoders import SparseBEVEncoder
from bevjepa.grid import BevGrid
from bevjepa.sparse import Voxelizer, collate_voxels

GRID = BevGrid(point_cloud_range=(-51.2, -51.2, -5.0, 51.2, 51.2, 3.0), voxel_size=(0.8, 0.8, 0.2))


@pytest.fixture(scope="module")
def real_voxels(real_frame):
    features, coords, _ = Voxelizer(GRID, 4)(real_frame.points[:, :4])
    flipped = real_frame.points[:, :4].copy()
    flipped[:, 1] *= -1
    features_2, coords_2, _ = Voxelizer(GRID, 4)(flipped)
    return collate_voxels([(features, coords), (features_2, coords_2)])


def _encoder(seed: int, grid: BevGrid = GRID) -> SparseBEVEncoder:
    torch.manual_seed(seed)
    return SparseBEVEncoder(grid, in_channels=4, embed_dim=32, bev_channels=32)


def test_output_shape_follows_grid(real_voxels):
    out = _encoder(0)(real_voxels)
    assert out.shape == (2, 32, *GRID.bev_shape)
    assert GRID.bev_shape == (16, 16)
    assert torch.isfinite(out).all()


def test_depth_of_collapsed_height_follows_sparse_shape():
    encoder = _encoder(0, BevGrid(voxel_size=(0.8, 0.8, 0.2)))
    # 41 -> 21 -> 11 -> 5 layers in the stages, 2 after conv_out: 128 * 2 channels reach the BEV blocks.
    assert encoder.backbone_3d.output_depth == 2
    assert encoder.backbone_3d.bev_channels == 256


def test_too_shallow_grid_is_refused():
    with pytest.raises(ValueError, match="too few height layers"):
        _encoder(0, BevGrid(point_cloud_range=(-51.2, -51.2, -1, 51.2, 51.2, 1), voxel_size=(0.8, 0.8, 0.5)))


def test_gradients_reach_every_parameter(real_voxels):
    encoder = _encoder(0)
    encoder(real_voxels).square().mean().backward()
    for name, parameter in encoder.named_parameters():
        assert parameter.grad is not None, name
        assert parameter.grad.abs().sum() > 0, name


def test_same_seed_same_output(real_voxels):
    first = _encoder(3)(real_voxels)
    second = _encoder(3)(real_voxels)
    other = _encoder(4)(real_voxels)
    assert torch.equal(first, second)
    assert not torch.allclose(first, other)


def test_batch_samples_are_independent(real_voxels):
    encoder = _encoder(0).eval()
    batched = encoder(real_voxels)
    first_only = real_voxels.coords[:, 0] == 0

    alone = encoder(VoxelBatch(real_voxels.features[first_only], real_voxels.coords[first_only], 1))
    torch.testing.assert_close(batched[:1], alone, atol=1e-5, rtol=1e-5)


@pytest.mark.gpu
def test_cuda_output_matches_cpu(real_voxels):
    encoder = _encoder(0).eval()
    on_cpu = encoder(real_voxels)
    on_gpu = encoder.cuda()(
        VoxelBatch(real_voxels.features.cuda(), real_voxels.coords.cuda(), real_voxels.batch_size)
    )
    torch.testing.assert_close(on_gpu.cpu(), on_cpu, atol=1e-3, rtol=1e-3)
