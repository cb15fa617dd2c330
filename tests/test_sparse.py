"""The spconv wrapper against dense references: convolution forward and gradients, and voxelization."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from bevjepa.grid import BevGrid
from bevjepa.reference_voxelizer import reference_voxelize
from bevjepa.sparse import SparseConv3d, SparseConvTensor, SubMConv3d, Voxelizer


def _random_sparse_input(seed: int, shape=(6, 7, 8), channels=3, active=60):
    generator = torch.Generator().manual_seed(seed)
    flat = torch.randperm(int(np.prod(shape)), generator=generator)[:active]
    coords = torch.stack(torch.unravel_index(flat, shape), dim=1)  # (V, 3) [z, y, x]
    indices = torch.cat([torch.zeros(active, 1, dtype=torch.long), coords], dim=1).int()
    features = torch.randn(active, channels, generator=generator, dtype=torch.float64).float()
    return features, indices, shape


def _dense(features, indices, shape):
    dense = torch.zeros(1, features.shape[1], *shape)
    dense[0, :, indices[:, 1].long(), indices[:, 2].long(), indices[:, 3].long()] = features.t()
    return dense


@pytest.mark.parametrize("kind", ["submanifold", "strided"])
def test_sparse_conv_matches_dense_conv3d_forward_and_backward(kind):
    features, indices, shape = _random_sparse_input(seed=0)
    torch.manual_seed(0)
    if kind == "submanifold":
        conv = SubMConv3d(3, 4, 3, padding=1, bias=True, indice_key="test")
        stride = 1
    else:
        conv = SparseConv3d(3, 4, 3, stride=2, padding=1, bias=True)
        stride = 2
    sparse_input = features.clone().requires_grad_(True)
    out = conv(SparseConvTensor(sparse_input, indices, list(shape), 1))

    # spconv 2 stores weights as (C_out, kD, kH, kW, C_in).
    weight = conv.weight.detach().permute(0, 4, 1, 2, 3).clone().requires_grad_(True)
    bias = conv.bias.detach().clone().requires_grad_(True)
    dense_input = _dense(features, indices, shape).requires_grad_(True)
    dense_out = F.conv3d(dense_input, weight, bias, stride=stride, padding=1)  # (1, 4, D', H', W')

    out_idx = out.indices.long()
    reference = dense_out[0, :, out_idx[:, 1], out_idx[:, 2], out_idx[:, 3]].t()  # (V_out, 4)
    assert out.features.shape == reference.shape
    torch.testing.assert_close(out.features, reference, atol=1e-5, rtol=1e-5)

    upstream = torch.randn_like(out.features)
    (out.features * upstream).sum().backward()
    (reference * upstream).sum().backward()
    in_idx = indices.long()
    dense_input_grad = dense_input.grad[0, :, in_idx[:, 1], in_idx[:, 2], in_idx[:, 3]].t()
    torch.testing.assert_close(sparse_input.grad, dense_input_grad, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(conv.weight.grad.permute(0, 4, 1, 2, 3), weight.grad, atol=1e-4, rtol=1e-5)
    torch.testing.assert_close(conv.bias.grad, bias.grad, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("voxel_size", [(0.1, 0.1, 0.2), (0.4, 0.4, 0.2)])
def test_voxelizer_equals_reference_on_real_frame(real_frame, voxel_size):
    grid = BevGrid(voxel_size=voxel_size)
    points = torch.from_numpy(real_frame.points)
    features, coords, counts = Voxelizer(grid, num_point_features=5)(points)
    ref_features, ref_coords, ref_counts = reference_voxelize(points, grid)
    assert len(coords) > 5000
    assert torch.equal(coords, ref_coords)
    assert torch.equal(counts, ref_counts)
    torch.testing.assert_close(features, ref_features, atol=1e-5, rtol=1e-6)


def test_voxelizer_caps_points_per_voxel_and_voxels():
    grid = BevGrid(point_cloud_range=(0, 0, 0, 8, 8, 2), voxel_size=(1, 1, 1))
    points = torch.tensor(
        [
            [0.5, 0.5, 0.5, 1.0],
            [0.6, 0.5, 0.5, 3.0],
            [0.7, 0.5, 0.5, 100.0],
            [2.5, 0.5, 0.5, 7.0],
            [9.0, 0, 0, 0],
        ]
    )
    features, coords, counts = Voxelizer(grid, 4, max_points_per_voxel=2, max_voxels=1)(points)
    assert coords.tolist() == [[0, 0, 0]]
    assert counts.tolist() == [2]
    assert features[0].tolist() == pytest.approx([0.55, 0.5, 0.5, 2.0])
    ref = reference_voxelize(points, grid, max_points_per_voxel=2, max_voxels=1)
    assert torch.equal(ref[1], coords)
    torch.testing.assert_close(ref[0], features)


def test_voxelizer_rejects_wrong_width():
    with pytest.raises(ValueError, match=r"\(N, 5\)"):
        Voxelizer(BevGrid(), 5)(torch.zeros(10, 4))


def test_sparse_conv_on_real_frame_is_exact_with_several_threads(real_frame):
    """A large real input where spconv's multi-threaded CPU scatter would race without bevjepa's fix."""
    grid = BevGrid(voxel_size=(0.8, 0.8, 0.2))
    features, coords, _ = Voxelizer(grid, 4)(real_frame.points[:, :4])
    indices = torch.nn.functional.pad(coords, (1, 0)).int()
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        torch.manual_seed(0)
        conv = SubMConv3d(4, 16, 3, padding=1, bias=False, indice_key="real")
        outputs = [
            conv(SparseConvTensor(features, indices, list(grid.sparse_shape), 1)).features for _ in range(2)
        ]
    finally:
        torch.set_num_threads(threads)
    dense = _dense(features, indices, grid.sparse_shape)
    reference = F.conv3d(dense, conv.weight.detach().permute(0, 4, 1, 2, 3), padding=1)
    coords_long = coords.long()
    reference = reference[0, :, coords_long[:, 0], coords_long[:, 1], coords_long[:, 2]].t()  # (V, 16)
    for output in outputs:
        torch.testing.assert_close(output.detach(), reference, atol=1e-4, rtol=1e-5)
