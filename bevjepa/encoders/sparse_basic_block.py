"""The residual block of CenterPoint-style sparse encoders (mmdetection3d ``SparseBasicBlock``, OpenPCDet
``SparseBasicBlock``): two submanifold 3x3x3 convolutions with BatchNorm and an identity shortcut."""

from torch import nn

from bevjepa.sparse import SparseConvTensor, SparseSequential, SubMConv3d


def sparse_batch_norm(channels: int, momentum: float = 0.01) -> nn.BatchNorm1d:
    """BatchNorm over voxel features with mmdetection3d's ``eps`` (part of what its weights expect) and, by
    default, its running-statistics momentum (short CPU runs use a faster one)."""
    return nn.BatchNorm1d(channels, eps=1e-3, momentum=momentum)


class SparseBasicBlock(SparseSequential):
    """``relu(bn2(conv2(relu(bn1(conv1(x))))) + x)`` on the voxels of ``x``, which it keeps.

    A ``SparseSequential`` so that spconv containers hand it the whole sparse tensor rather than its features.
    Parameter names (``conv1``, ``bn1``, ``conv2``, ``bn2``) follow mmdetection3d and OpenPCDet.

    Args:
        channels: input and output width.
        indice_key: spconv key under which submanifold layers at the same resolution share their rulebook.
        norm_momentum: BatchNorm running-statistics momentum.
        conv_bias: give both convolutions a bias, as OpenPCDet's block has (mmdetection3d's has none). Before
            a BatchNorm a bias changes nothing the block computes; it only changes the parameter layout.
    """

    def __init__(
        self, channels: int, indice_key: str, norm_momentum: float = 0.01, conv_bias: bool = False
    ) -> None:
        super().__init__()
        self.conv1 = SubMConv3d(channels, channels, 3, padding=1, bias=conv_bias, indice_key=indice_key)
        self.bn1 = sparse_batch_norm(channels, norm_momentum)
        self.conv2 = SubMConv3d(channels, channels, 3, padding=1, bias=conv_bias, indice_key=indice_key)
        self.bn2 = sparse_batch_norm(channels, norm_momentum)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: SparseConvTensor) -> SparseConvTensor:
        """Args: x with features (V, channels). Returns: features (V, channels) on the same voxels."""
        identity = x.features  # (V, C)
        out = self.conv1(x)
        out = out.replace_feature(self.relu(self.bn1(out.features)))
        out = self.conv2(out)
        return out.replace_feature(self.relu(self.bn2(out.features) + identity))
