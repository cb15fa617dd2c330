"""A tiny JEPA world model on the CPU pretraining grid for the planning tests (seeded, untrained)."""

import functools

import torch

from bevjepa.encoders import SparseBEVEncoder
from bevjepa.grid import BevGrid
from bevjepa.jepa import BEVPredictor, JEPAPretrainModule
from bevjepa.planning.world_model import LatentWorldModel

GRID = BevGrid([-38.4, -38.4, -5.0, 38.4, 38.4, 3.0], [0.4, 0.4, 0.25], 8)


def tiny_world_model(max_time_offset: int) -> LatentWorldModel:
    """LiDAR + radar input (10 channels), 16-wide encoder and predictor, tokens of 2x2 cells."""
    torch.manual_seed(0)
    module = JEPAPretrainModule(
        GRID,
        in_channels=10,
        encoder=functools.partial(
            SparseBEVEncoder,
            embed_dim=16,
            bev_channels=16,
            base_channels=8,
            encoder_channels=((8,), (16,), (16,), (16,)),
            encoder_paddings=((1,), (1,), (1,), ((0, 1, 1),)),
            sparse_output_channels=16,
        ),
        predictor=functools.partial(
            BEVPredictor, width=16, depth=1, num_heads=2, max_time_offset=max_time_offset
        ),
        token_patch=2,
    )
    return LatentWorldModel(module)
