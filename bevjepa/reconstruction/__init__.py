"""Reconstruction pretraining (the masked-autoencoder baseline of JEPA): predict the voxel occupancy of masked
BEV blocks from the same encoder and masks."""

from bevjepa.reconstruction.decoder import OccupancyDecoder
from bevjepa.reconstruction.module import MaskedOccupancyPretrainModule

__all__ = ["MaskedOccupancyPretrainModule", "OccupancyDecoder"]
