"""Plain spconv modules built to the detectors' sparse-encoder layouts, written from the frameworks' documented
architectures (not from bevjepa's backbone): mmdetection3d's CenterPoint ``SparseEncoder`` (stages that end
with their downsampling) and OpenPCDet's ``VoxelResBackBone8x`` / ``VoxelBackBone8x`` (stages ``conv1..4``
that begin with it, residual convolutions with biases). Loading an export into these and comparing their
output with bevjepa's encoder checks the export without installing the frameworks."""

from collections.abc import Sequence

import torch
from torch import nn

from bevjepa.sparse import SparseConv3d, SparseConvTensor, SparseSequential, SubMConv3d


def _norm(channels: int) -> nn.BatchNorm1d:
    return nn.BatchNorm1d(channels, eps=1e-3, momentum=0.01)


def _conv_module(
    cin: int, cout: int, stride: int = 1, padding: int | tuple[int, ...] = 1
) -> SparseSequential:
    conv = (
        SparseConv3d(cin, cout, 3, stride=stride, padding=padding, bias=False)
        if stride > 1
        else SubMConv3d(cin, cout, 3, padding=1, bias=False)
    )
    return SparseSequential(conv, _norm(cout), nn.ReLU())


class Residual(SparseSequential):
    """``conv1, bn1, conv2, bn2`` with an identity shortcut (both frameworks' ``SparseBasicBlock``)."""

    def __init__(self, channels: int, bias: bool) -> None:
        super().__init__()
        self.conv1 = SubMConv3d(channels, channels, 3, padding=1, bias=bias)
        self.bn1 = _norm(channels)
        self.conv2 = SubMConv3d(channels, channels, 3, padding=1, bias=bias)
        self.bn2 = _norm(channels)

    def forward(self, x: SparseConvTensor) -> SparseConvTensor:
        out = self.conv1(x)
        out = out.replace_feature(torch.relu(self.bn1(out.features)))
        out = self.conv2(out)
        return out.replace_feature(torch.relu(self.bn2(out.features) + x.features))


class DetectorSparseEncoder(nn.Module):
    """``conv_input -> stages -> conv_out -> dense (B, C * D, H, W)``; subclasses name the stages."""

    def __init__(self, in_channels: int, sparse_shape: Sequence[int], last_channels: int) -> None:
        super().__init__()
        self.sparse_shape = list(sparse_shape)
        self.conv_input = SparseSequential(
            SubMConv3d(in_channels, 16, 3, padding=1, bias=False), _norm(16), nn.ReLU()
        )
        self.conv_out = SparseSequential(
            SparseConv3d(last_channels, 128, (3, 1, 1), stride=(2, 1, 1), padding=0, bias=False),
            _norm(128),
            nn.ReLU(),
        )

    def stages(self) -> list[nn.Module]:
        raise NotImplementedError

    def forward(self, features: torch.Tensor, coords: torch.Tensor, batch_size: int) -> torch.Tensor:
        """Args: features (V, C_in), coords (V, 4) ``[b, z, y, x]``. Returns: (B, 128 * D_out, H / 8, W / 8)."""
        x = self.conv_input(SparseConvTensor(features, coords.int(), self.sparse_shape, batch_size))
        for stage in self.stages():
            x = stage(x)
        dense = self.conv_out(x).dense()  # (B, 128, D_out, H / 8, W / 8)
        batch, channels, depth, height, width = dense.shape
        return dense.view(batch, channels * depth, height, width)


class CenterPointSparseEncoder(DetectorSparseEncoder):
    """mmdetection3d ``SparseEncoder(block_type="basicblock")`` of CenterPoint nuScenes."""

    def __init__(self, in_channels: int, sparse_shape: Sequence[int]) -> None:
        super().__init__(in_channels, sparse_shape, 128)
        self.encoder_layers = SparseSequential()
        for stage, (width, down, padding) in enumerate(
            [(16, 32, 1), (32, 64, 1), (64, 128, (0, 1, 1)), (128, None, None)], start=1
        ):
            units: list[nn.Module] = [Residual(width, bias=False), Residual(width, bias=False)]
            if down is not None:
                units.append(_conv_module(width, down, stride=2, padding=padding))
            self.encoder_layers.add_module(f"encoder_layer{stage}", SparseSequential(*units))

    def stages(self) -> list[nn.Module]:
        return list(self.encoder_layers)


class OpenPCDetBackBone8x(DetectorSparseEncoder):
    """OpenPCDet ``VoxelResBackBone8x`` (``residual=True``) or ``VoxelBackBone8x``."""

    def __init__(self, in_channels: int, sparse_shape: Sequence[int], residual: bool) -> None:
        last = 128 if residual else 64
        super().__init__(in_channels, sparse_shape, last)
        widths = [16, 32, 64, last]
        for stage, width in enumerate(widths, start=1):
            units: list[nn.Module] = []
            if stage > 1:
                padding = (0, 1, 1) if stage == 4 else 1
                units.append(_conv_module(widths[stage - 2], width, stride=2, padding=padding))
            if residual:
                units += [Residual(width, bias=True), Residual(width, bias=True)]
            else:
                units += [_conv_module(width, width) for _ in range(1 if stage == 1 else 2)]
            setattr(self, f"conv{stage}", SparseSequential(*units))

    def stages(self) -> list[nn.Module]:
        return [self.conv1, self.conv2, self.conv3, self.conv4]
