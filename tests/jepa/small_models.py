"""Small encoder / predictor / module builders for the JEPA tests (CPU-sized)."""

import functools

import lightning as L
from jepa_scenes import IN_CHANNELS, SCENE_GRID

from bevjepa.encoders import SparseBEVEncoder
from bevjepa.jepa import BEVPredictor, JEPAPretrainModule, OptimizerSettings

EMBED_DIM = 32
small_encoder = functools.partial(
    SparseBEVEncoder,
    embed_dim=EMBED_DIM,
    bev_channels=32,
    base_channels=8,
    encoder_channels=((8,), (16, 16), (32, 32), (32, 32)),
    encoder_paddings=((1,), (1, 1), (1, 1), ((0, 1, 1), 1)),
    sparse_output_channels=32,
    norm_momentum=0.1,
)
small_predictor = functools.partial(BEVPredictor, width=32, depth=2, num_heads=2)


def small_module(**overrides) -> JEPAPretrainModule:
    """A JEPA module on the test scene grid with small networks; ``overrides`` replace init args."""
    arguments = {
        "grid": SCENE_GRID,
        "in_channels": IN_CHANNELS,
        "encoder": small_encoder,
        "predictor": small_predictor,
        "optimizer": OptimizerSettings(learning_rate=1e-3, warmup_steps=2, total_steps=100),
        "monitor_every_n_steps": 1,
        "picture_every_n_epochs": 0,
    }
    arguments.update(overrides)
    return JEPAPretrainModule(**arguments)


def cpu_trainer(root, **overrides) -> L.Trainer:
    """A quiet CPU trainer writing under ``root``."""
    arguments = {
        "accelerator": "cpu",
        "devices": 1,
        "default_root_dir": str(root),
        "enable_progress_bar": False,
        "enable_model_summary": False,
        "logger": False,
        "enable_checkpointing": False,
        "num_sanity_val_steps": 0,
    }
    arguments.update(overrides)
    return L.Trainer(**arguments)
