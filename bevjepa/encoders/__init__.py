"""BEV encoders: sparse 3D voxel backbones, height collapse and 2D BEV blocks."""

from bevjepa.encoders.bev_encoder import SparseBEVEncoder
from bevjepa.encoders.sparse_backbone import SparseBackbone3d

__all__ = ["SparseBEVEncoder", "SparseBackbone3d"]
