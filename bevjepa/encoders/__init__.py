"""BEV encoders: sparse 3D voxel backbones, height collapse and 2D BEV blocks; BEV <-> token helpers."""

from bevjepa.encoders.bev_encoder import SparseBEVEncoder
from bevjepa.encoders.sparse_backbone import (
    CENTERPOINT_ENCODER_CHANNELS,
    CENTERPOINT_ENCODER_PADDINGS,
    SparseBackbone3d,
)

__all__ = [
    "CENTERPOINT_ENCODER_CHANNELS",
    "CENTERPOINT_ENCODER_PADDINGS",
    "SparseBEVEncoder",
    "SparseBackbone3d",
]
