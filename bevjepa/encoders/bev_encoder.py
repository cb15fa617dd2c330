"""The BEV encoder: sparse 3D backbone, height collapse, 2D BEV blocks -> embedding map (B, C, H, W)."""

from collections.abc import Sequence
from dataclasses import replace

import torch
from torch import nn

from bevjepa.batch import VoxelBatch
from bevjepa.encoders.sparse_backbone import BlockType, Padding, SparseBackbone3d
from bevjepa.encoders.voxel_feature_select import VoxelFeatureSelect
from bevjepa.grid import BevGrid
from bevjepa.sparse import to_sparse_tensor


class SparseBEVEncoder(nn.Module):
    """Voxels on a ``BevGrid`` -> BEV embedding map on the grid's ``bev_shape``.

    Args:
        grid: the voxel grid (gives the sparse shape and the BEV size).
        in_channels: per-voxel input features.
        embed_dim: C, channels of the output embedding map.
        bev_channels: width of the 2D BEV blocks.
        bev_blocks: number of 3x3 conv blocks on the BEV map.
        base_channels, encoder_channels, encoder_paddings, sparse_output_channels, block_type: the 3D
            backbone's layout (see ``SparseBackbone3d``; ``CENTERPOINT_ENCODER_*`` for CenterPoint's).
        norm_momentum: BatchNorm running-statistics momentum of every layer (mmdetection3d: 0.01; short runs
            want a faster one so that evaluation-mode statistics are settled).
        residual_conv_bias: biases on the residual blocks' convolutions (OpenPCDet's ``VoxelResBackBone8x``).
        voxel_feature_indices, voxel_feature_scale: feed only these data channels, scaled, to the 3D backbone
            (see ``VoxelFeatureSelect``; ``None``: all ``in_channels`` as they are).
    """

    def __init__(
        self,
        grid: BevGrid,
        in_channels: int,
        embed_dim: int = 128,
        bev_channels: int = 128,
        bev_blocks: int = 2,
        base_channels: int = 16,
        encoder_channels: Sequence[Sequence[int]] = ((16,), (32, 32, 32), (64, 64, 64), (64, 64, 64)),
        encoder_paddings: Sequence[Sequence[Padding]] = ((1,), (1, 1, 1), (1, 1, 1), ((0, 1, 1), 1, 1)),
        sparse_output_channels: int = 128,
        block_type: BlockType = "conv_module",
        norm_momentum: float = 0.01,
        residual_conv_bias: bool = False,
        voxel_feature_indices: Sequence[int] | None = None,
        voxel_feature_scale: Sequence[float] | None = None,
    ) -> None:
        super().__init__()
        if grid.encoder_stride != 8:
            raise ValueError(f"SparseBEVEncoder downsamples by 8; the grid asks for {grid.encoder_stride}")
        self.grid = grid
        self.embed_dim = embed_dim
        self.voxel_feature_select = None
        if voxel_feature_indices is not None:
            self.voxel_feature_select = VoxelFeatureSelect(
                in_channels, voxel_feature_indices, voxel_feature_scale
            )
            in_channels = self.voxel_feature_select.out_channels
        elif voxel_feature_scale is not None:
            raise ValueError("voxel_feature_scale needs voxel_feature_indices")
        self.backbone_3d = SparseBackbone3d(
            in_channels=in_channels,
            sparse_shape=grid.sparse_shape,
            base_channels=base_channels,
            encoder_channels=encoder_channels,
            encoder_paddings=encoder_paddings,
            output_channels=sparse_output_channels,
            block_type=block_type,
            norm_momentum=norm_momentum,
            residual_conv_bias=residual_conv_bias,
        )
        layers: list[nn.Module] = []
        channels = self.backbone_3d.bev_channels
        for _ in range(bev_blocks):
            layers += [
                nn.Conv2d(channels, bev_channels, 3, padding=1, bias=False),
                nn.BatchNorm2d(bev_channels, eps=1e-3, momentum=norm_momentum),
                nn.ReLU(inplace=True),
            ]
            channels = bev_channels
        layers.append(nn.Conv2d(channels, embed_dim, 1))
        self.bev_blocks = nn.Sequential(*layers)

    def forward(self, voxels: VoxelBatch) -> torch.Tensor:
        """Encode a batch of voxels.

        Args:
            voxels: features (V, in_channels), coords (V, 4) ``[b, z, y, x]``.

        Returns:
            (B, embed_dim, H, W) with ``(H, W) = grid.bev_shape``.
        """
        if self.voxel_feature_select is not None:
            voxels = replace(voxels, features=self.voxel_feature_select(voxels.features))  # (V, C_sel)
        bev = self.backbone_3d(to_sparse_tensor(voxels, self.grid))  # (B, C_3d * D_out, H, W)
        return self.bev_blocks(bev)  # (B, embed_dim, H, W)
