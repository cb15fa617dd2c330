"""A SECOND-style sparse 3D backbone: submanifold convolutions and strided sparse convolutions, stride 8 in
x-y. Its layer layout mirrors mmdetection3d's ``SparseEncoder`` (``conv_input``, ``encoder_layers``,
``conv_out``) so that its weights map one-to-one onto downstream detectors."""

from collections.abc import Sequence

import torch
from torch import nn

from bevjepa.sparse import SparseConv3d, SparseConvTensor, SparseSequential, SubMConv3d

Padding = int | Sequence[int]


def _norm(channels: int) -> nn.BatchNorm1d:
    # mmdetection3d's sparse encoders use these BatchNorm settings; keep them for weight compatibility.
    return nn.BatchNorm1d(channels, eps=1e-3, momentum=0.01)


def _z_padding(padding: Padding) -> int:
    return padding if isinstance(padding, int) else int(padding[0])


class SparseBackbone3d(nn.Module):
    """Sparse voxels ``(V, C_in)`` on ``sparse_shape`` -> dense features ``(B, C_out * D_out, H / 8, W / 8)``.

    Stage ``i`` (from the second on) opens with a stride-2 ``SparseConv3d`` and continues with submanifold
    convolutions; ``conv_out`` then halves the height once more with a (3, 1, 1) kernel.

    Args:
        in_channels: per-voxel input features.
        sparse_shape: ``(D, H, W)`` spconv spatial shape (``BevGrid.sparse_shape``).
        base_channels: width of ``conv_input``.
        encoder_channels: output widths of each stage's convolutions, one tuple per stage (4 stages -> stride 8).
        encoder_paddings: padding of each convolution, same nesting as ``encoder_channels``.
        output_channels: width of ``conv_out``.
    """

    def __init__(
        self,
        in_channels: int,
        sparse_shape: Sequence[int],
        base_channels: int = 16,
        encoder_channels: Sequence[Sequence[int]] = ((16,), (32, 32, 32), (64, 64, 64), (64, 64, 64)),
        encoder_paddings: Sequence[Sequence[Padding]] = ((1,), (1, 1, 1), (1, 1, 1), ((0, 1, 1), 1, 1)),
        output_channels: int = 128,
    ) -> None:
        super().__init__()
        if len(encoder_channels) != len(encoder_paddings) or any(
            len(c) != len(p) for c, p in zip(encoder_channels, encoder_paddings, strict=True)
        ):
            raise ValueError("encoder_channels and encoder_paddings must have the same nesting")
        self.sparse_shape = tuple(int(s) for s in sparse_shape)
        self.output_channels = output_channels
        self.conv_input = SparseSequential(
            SubMConv3d(in_channels, base_channels, 3, padding=1, bias=False, indice_key="subm1"),
            _norm(base_channels),
            nn.ReLU(inplace=True),
        )
        self.encoder_layers = SparseSequential()
        depth = self.sparse_shape[0]
        channels = base_channels
        for stage, (widths, paddings) in enumerate(zip(encoder_channels, encoder_paddings, strict=True)):
            layers = []
            for block, (width, padding) in enumerate(zip(widths, paddings, strict=True)):
                if stage > 0 and block == 0:
                    conv = SparseConv3d(
                        channels,
                        width,
                        3,
                        stride=2,
                        padding=padding,
                        bias=False,
                        indice_key=f"spconv{stage + 1}",
                    )
                    depth = (depth + 2 * _z_padding(padding) - 3) // 2 + 1
                else:
                    conv = SubMConv3d(
                        channels, width, 3, padding=padding, bias=False, indice_key=f"subm{stage + 1}"
                    )
                layers.append(SparseSequential(conv, _norm(width), nn.ReLU(inplace=True)))
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
            _norm(output_channels),
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
