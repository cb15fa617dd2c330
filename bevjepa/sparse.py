"""The one module that imports spconv: sparse layers, sparse tensors and point-to-voxel conversion.

Three fixes to spconv's CPU build live here, applied once on import:
- its backward asks ``torch.cuda.current_stream()`` for a stream handle and fails on a CPU-only torch; the
  handle is unused by the CPU kernels, so where CUDA is unavailable bevjepa answers 0 (the default stream);
- its CPU ``scatter_add`` races when torch runs more than one thread (sums come out wrong by whole units on a
  real LiDAR frame with 2 threads), so it runs single-threaded; gather and matmul stay parallel;
- in evaluation mode it fuses a convolution's bias into a kernel that exists only on CUDA ("cpu don't support
  act and bias"); on CPU the bias is added after the convolution instead, as spconv does in training mode.
With these, sparse convolutions match a dense ``conv3d`` forward and backward (tests/test_sparse.py).
"""

import functools
from collections.abc import Callable

import numpy as np
import spconv.pytorch as spconv
import spconv.pytorch.conv as spconv_conv
import spconv.pytorch.cppcore as spconv_cppcore
import spconv.pytorch.ops as spconv_ops
import torch
from spconv.core_cc.csrc.sparse.all import SpconvOps
from spconv.pytorch.utils import PointToVoxel

from bevjepa.batch import VoxelBatch
from bevjepa.grid import BevGrid


def _default_stream_handle() -> int:
    return 0


def _single_threaded(kernel: Callable) -> Callable:
    @functools.wraps(kernel)
    def run(*args, **kwargs):
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            return kernel(*args, **kwargs)
        finally:
            torch.set_num_threads(threads)

    return run


def _bias_after_conv_on_cpu(forward: Callable) -> Callable:
    @functools.wraps(forward)
    def run(self, input, add_input=None):
        if self.bias is None or self.training or input.features.is_cuda:
            return forward(self, input, add_input)
        out = self._conv_forward(
            False,
            input,
            self.weight,
            None,
            add_input,
            name=self.name,
            sparse_unique_name=self._sparse_unique_name,
            act_type=self.act_type,
            act_alpha=self.act_alpha,
            act_beta=self.act_beta,
        )
        return out.replace_feature(out.features + self.bias)

    return run


if not torch.cuda.is_available():
    spconv_ops.get_current_stream = _default_stream_handle
    spconv_cppcore.get_current_stream = _default_stream_handle
SpconvOps.scatter_add_cpu = staticmethod(_single_threaded(SpconvOps.scatter_add_cpu))
spconv_conv.SparseConvolution.forward = _bias_after_conv_on_cpu(spconv_conv.SparseConvolution.forward)

SparseConvTensor = spconv.SparseConvTensor
SparseSequential = spconv.SparseSequential
SubMConv3d = spconv.SubMConv3d
SparseConv3d = spconv.SparseConv3d


class Voxelizer:
    """Groups points into the voxels of a ``BevGrid`` and averages their features (spconv ``PointToVoxel``).

    Points outside the grid's range are dropped. A voxel keeps at most ``max_points_per_voxel`` points, the
    first ones in input order; at most ``max_voxels`` voxels are kept, in order of first appearance.

    Args:
        grid: the voxel grid.
        num_point_features: F, the columns of the point array (the first three are x, y, z).
        max_points_per_voxel: points averaged per voxel at most.
        max_voxels: voxels kept per sample at most.
    """

    def __init__(
        self, grid: BevGrid, num_point_features: int, max_points_per_voxel: int = 10, max_voxels: int = 120000
    ) -> None:
        self.grid = grid
        self.num_point_features = num_point_features
        self.max_points_per_voxel = max_points_per_voxel
        self.max_voxels = max_voxels
        self._point_to_voxel = PointToVoxel(
            vsize_xyz=list(grid.voxel_size),
            coors_range_xyz=list(grid.point_cloud_range),
            num_point_features=num_point_features,
            max_num_voxels=max_voxels,
            max_num_points_per_voxel=max_points_per_voxel,
            device=torch.device("cpu"),
        )

    def __call__(self, points: torch.Tensor | np.ndarray) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Voxelize one sample.

        Args:
            points: (N, F) float32 points, x, y, z first.

        Returns:
            features: (V, F) float32 mean of the voxel's points.
            coords: (V, 3) int32 ``[z, y, x]`` voxel indices.
            num_points: (V,) int32 points averaged in each voxel.
        """
        points = torch.as_tensor(points, dtype=torch.float32)
        if points.ndim != 2 or points.shape[1] != self.num_point_features:
            raise ValueError(
                f"Voxelizer expects points of shape (N, {self.num_point_features}), got {tuple(points.shape)}"
            )
        voxels, coords, num_points = self._point_to_voxel(points.contiguous())  # (V, K, F), (V, 3), (V,)
        features = voxels.sum(dim=1) / num_points.clamp(min=1).unsqueeze(1).to(voxels.dtype)
        return features, coords.int(), num_points.int()


def collate_voxels(samples: list[tuple[torch.Tensor, torch.Tensor]]) -> VoxelBatch:
    """Stack per-sample ``(features (V_i, F), coords (V_i, 3) [z, y, x])`` into one ``VoxelBatch``."""
    features = torch.cat([f for f, _ in samples], dim=0)  # (V, F)
    coords = torch.cat(
        [torch.nn.functional.pad(c, (1, 0), value=index) for index, (_, c) in enumerate(samples)], dim=0
    )  # (V, 4) [b, z, y, x]
    return VoxelBatch(features=features, coords=coords.int(), batch_size=len(samples))


def to_sparse_tensor(batch: VoxelBatch, grid: BevGrid) -> SparseConvTensor:
    """The spconv tensor of a batch on the grid's sparse shape."""
    return SparseConvTensor(
        features=batch.features,
        indices=batch.coords.int(),
        spatial_shape=list(grid.sparse_shape),
        batch_size=batch.batch_size,
    )
