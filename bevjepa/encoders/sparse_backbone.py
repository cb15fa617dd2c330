"""A SECOND / CenterPoint-style sparse 3D backbone: submanifold convolutions (or residual blocks of them) and
strided sparse convolutions, stride 8 in x-y. Its layer layout mirrors mmdetection3d's ``SparseEncoder``
(``conv_input``, ``encoder_layers``, ``conv_out``; ``block_type`` ``conv_module`` or ``basicblock``) so that
its weights map one-to-one onto downstream detectors."""

from collections.abc import Sequence
from typing import Literal

import torch
from torch import nn

from bevjepa.encoders.sparse_basic_block import SparseBasicBlock, sparse_batch_norm
from bevjepa.sparse import SparseConv3d, SparseConvTensor, SparseSequential, SubMConv3d

Padding = int | Sequence[int]
BlockType = Literal["conv_module", "basicblock"]

# CenterPoint's nuScenes encoder (mmdetection3d ``centerpoint_voxel01_second_secfpn_nus``): residual blocks,
# each stage but the last closed by a strided convolution whose padding is the stage's last entry.
CENTERPOINT_ENCODER_CHANNELS = ((16, 16, 32), (32, 32, 64), (64, 64, 128), (128, 128))
CENTERPOINT_ENCODER_PADDINGS = ((0, 0, 1), (0, 0, 1), (0, 0, (0, 1, 1)), (1, 1))


def _z_padding(padding: Padding) -> int:
    return padding if isinstance(padding, int) else int(padding[0])


def _downsample(
    in_channels: int, out_channels: int, padding: Padding, stage: int, norm_momentum: float
) -> SparseSequential:
    """Stride-2 sparse convolution + BatchNorm + ReLU (mmdetection3d ``make_sparse_convmodule``)."""
    conv = SparseConv3d(
        in_channels, out_channels, 3, stride=2, padding=padding, bias=False, indice_key=f"spconv{stage + 1}"
    )
    return SparseSequential(conv, sparse_batch_norm(out_channels, norm_momentum), nn.ReLU(inplace=True))


class SparseBackbone3d(nn.Module):
    """Sparse voxels ``(V, C_in)`` on ``sparse_shape`` -> dense features ``(B, C_out * D_out, H / 8, W / 8)``.

    With ``block_type="conv_module"`` (SECOND) stage ``i`` (from the second on) opens with a stride-2
    ``SparseConv3d`` and continues with submanifold convolutions. With ``"basicblock"`` (CenterPoint) a stage
    is a run of residual ``SparseBasicBlock``s of its input width closed, in every stage but the last, by a
    stride-2 ``SparseConv3d`` to the stage's last width (whose padding is the stage's last padding; the other
    paddings are unused, as in mmdetection3d). ``conv_out`` then halves the height once more with a (3, 1, 1)
    kernel.

    Args:
        in_channels: per-voxel input features.
        sparse_shape: ``(D, H, W)`` spconv spatial shape (``BevGrid.sparse_shape``).
        base_channels: width of ``conv_input``.
        encoder_channels: output widths of each stage's convolutions, one tuple per stage (4 stages -> stride 8).
        encoder_paddings: padding of each convolution, same nesting as ``encoder_channels``.
        output_channels: width of ``conv_out``.
        block_type: ``"conv_module"`` (SECOND, ``VoxelBackBone8x``) or ``"basicblock"`` (CenterPoint,
            ``VoxelResBackBone8x``).
        norm_momentum: BatchNorm running-statistics momentum (mmdetection3d: 0.01).
        residual_conv_bias: biases on the residual blocks' convolutions (``"basicblock"`` only): OpenPCDet's
            ``VoxelResBackBone8x`` has them, mmdetection3d's ``SparseEncoder`` does not.
    """

    def __init__(
        self,
        in_channels: int,
        sparse_shape: Sequence[int],
        base_channels: int = 16,
        encoder_channels: Sequence[Sequence[int]] = ((16,), (32, 32, 32), (64, 64, 64), (64, 64, 64)),
        encoder_paddings: Sequence[Sequence[Padding]] = ((1,), (1, 1, 1), (1, 1, 1), ((0, 1, 1), 1, 1)),
        output_channels: int = 128,
        block_type: BlockType = "conv_module",
        norm_momentum: float = 0.01,
        residual_conv_bias: bool = False,
    ) -> None:
        super().__init__()
        if residual_conv_bias and block_type != "basicblock":
            raise ValueError("residual_conv_bias applies to block_type='basicblock' only")
        if len(encoder_channels) != len(encoder_paddings) or any(
            len(c) != len(p) for c, p in zip(encoder_channels, encoder_paddings, strict=True)
        ):
            raise ValueError("encoder_channels and encoder_paddings must have the same nesting")
        self.sparse_shape = tuple(int(s) for s in sparse_shape)
        self.output_channels = output_channels
        self.conv_input = SparseSequential(
            SubMConv3d(in_channels, base_channels, 3, padding=1, bias=False, indice_key="subm1"),
            sparse_batch_norm(base_channels, norm_momentum),
            nn.ReLU(inplace=True),
        )
        self.encoder_layers = SparseSequential()
        depth = self.sparse_shape[0]
        channels = base_channels
        last_stage = len(encoder_channels) - 1
        for stage, (widths, paddings) in enumerate(zip(encoder_channels, encoder_paddings, strict=True)):
            layers: list[nn.Module] = []
            for block, (width, padding) in enumerate(zip(widths, paddings, strict=True)):
                if block_type == "basicblock":
                    downsamples = block == len(widths) - 1 and stage != last_stage
                else:
                    downsamples = stage > 0 and block == 0
                if downsamples:
                    layers.append(_downsample(channels, width, padding, stage, norm_momentum))
                    depth = (depth + 2 * _z_padding(padding) - 3) // 2 + 1
                elif block_type == "basicblock":
                    if width != channels:
                        raise ValueError(
                            f"basicblock stage {stage + 1} keeps its input width {channels}; got {width}"
                        )
                    layers.append(
                        SparseBasicBlock(width, f"subm{stage + 1}", norm_momentum, residual_conv_bias)
                    )
                else:
                    conv = SubMConv3d(
                        channels, width, 3, padding=padding, bias=False, indice_key=f"subm{stage + 1}"
                    )
                    layers.append(
                        SparseSequential(conv, sparse_batch_norm(width, norm_momentum), nn.ReLU(inplace=True))
                    )
                channels = width
            self.encoder_layers.add_module(f"encoder_layer{stage + 1}", SparseSequential(*layers))
        self.conv_out = SparseSequential(
            SparseConv3d(
                channels,
                output_channels,
                (3, 1, 1),
                stride=(2, 1, 1),
                padding=0,
                bias=False,
                indice_key="spconv_down2",
            ),
            sparse_batch_norm(output_channels, norm_momentum),
            nn.ReLU(inplace=True),
        )
        self.output_depth = (depth - 3) // 2 + 1
        if self.output_depth < 1:
            raise ValueError(
                f"sparse_shape {self.sparse_shape} has too few height layers for {len(encoder_channels)} stages: "
                "use a finer z voxel size or a taller point-cloud range"
            )

    @property
    def bev_channels(self) -> int:
        """Channels of the collapsed BEV map: ``output_channels * output_depth``."""
        return self.output_channels * self.output_depth

    def forward(self, voxels: SparseConvTensor) -> torch.Tensor:
        """Encode sparse voxels and collapse the height axis into channels.

        Args:
            voxels: features (V, C_in), indices (V, 4) ``[b, z, y, x]`` on ``sparse_shape``.

        Returns:
            (B, C_out * D_out, H / 8, W / 8) dense BEV features.
        """
        x = self.conv_input(voxels)
        x = self.encoder_layers(x)
        x = self.conv_out(x)
        dense = x.dense()  # (B, C_out, D_out, H / 8, W / 8)
        batch, channels, depth, height, width = dense.shape
        return dense.view(batch, channels * depth, height, width)
