"""Tiny seeded probe batches and encoders for the probe tests: random voxels on a 8 x 8-cell BEV grid with
labels of the real shapes (occupancy now and at six future steps, map layers, trajectories, boxes)."""

import functools

import lightning
import torch

from bevjepa.batch import BevBatch, FutureFrames, ProbeLabels, VoxelBatch
from bevjepa.encoders import SparseBEVEncoder
from bevjepa.grid import BevGrid
from bevjepa.jepa import BEVPredictor, JEPAPretrainModule

# 64 x 64 x 24 voxels, BEV 8 x 8 cells of 3.2 m, tokens of 2 x 2 cells.
GRID = BevGrid(point_cloud_range=(-12.8, -12.8, -3.0, 12.8, 12.8, 3.0), voxel_size=(0.4, 0.4, 0.25))
IN_CHANNELS = 4
TOKEN_PATCH = 2
STEPS = 6
EMBED_DIM = 16
JEPA_CLASS = "bevjepa.jepa.module.JEPAPretrainModule"

tiny_encoder = functools.partial(
    SparseBEVEncoder,
    embed_dim=EMBED_DIM,
    bev_channels=16,
    base_channels=8,
    encoder_channels=((8,), (8,), (16,), (16,)),
    encoder_paddings=((1,), (1,), (1,), ((0, 1, 1),)),
    sparse_output_channels=16,
    norm_momentum=0.5,
)
tiny_predictor = functools.partial(BEVPredictor, width=16, depth=1, num_heads=2, max_time_offset=2)


def tiny_jepa_module() -> JEPAPretrainModule:
    """A JEPA module with tiny networks on ``GRID`` (two future steps)."""
    torch.manual_seed(0)
    return JEPAPretrainModule(
        grid=GRID,
        in_channels=IN_CHANNELS,
        encoder=tiny_encoder,
        predictor=tiny_predictor,
        token_patch=TOKEN_PATCH,
        picture_every_n_epochs=0,
    )


def make_probe_batch(seed: int, batch_size: int = 2, future_voxels: bool = False) -> BevBatch:
    """A batch of random voxels with labels of the real shapes; a pure function of ``seed``. With
    ``future_voxels`` every future keyframe carries the present voxels (a world that stands still)."""
    generator = torch.Generator().manual_seed(seed)
    nz, ny, nx = GRID.voxel_grid_shape
    height, width = GRID.bev_shape
    coords, features = [], []
    for sample in range(batch_size):
        count = 200
        flat = torch.randperm(ny * nx, generator=generator)[:count]
        z = torch.randint(0, nz, (count,), generator=generator)
        coords.append(torch.stack([torch.full_like(z, sample), z, flat // nx, flat % nx], 1))
        features.append(torch.rand(count, IN_CHANNELS, generator=generator))
    voxels = VoxelBatch(torch.cat(features), torch.cat(coords).int(), batch_size)
    occupancy = torch.randint(0, 4, (batch_size, 1 + STEPS, height, width), generator=generator)
    occupancy[torch.rand(occupancy.shape, generator=generator) < 0.2] = 255
    speed = 1.0 + 4 * torch.rand(batch_size, 1, generator=generator)  # m per 0.5 s step, along +y
    steps = torch.arange(1, STEPS + 1, dtype=torch.float32)
    trajectory = torch.stack([torch.zeros(batch_size, STEPS), -0.943713 + speed * steps], -1)
    valid = torch.ones(batch_size, STEPS, dtype=torch.bool)
    valid[-1, -2:] = False
    poses = torch.eye(4).repeat(batch_size, STEPS, 1, 1)
    poses[~valid] = 0
    actions = torch.zeros(batch_size, STEPS, 4)
    actions[..., 1], actions[..., 3] = speed, speed * 2
    labels = ProbeLabels(
        occupancy=occupancy,
        map_rasters=torch.rand(batch_size, 6, height, width, generator=generator) < 0.3,
        ego_trajectory=trajectory,
        future_boxes=[[torch.zeros(0, 7) for _ in range(STEPS)] for _ in range(batch_size)],
        ego_status=torch.cat(
            [torch.zeros(batch_size, 1), 2 * speed, torch.zeros(batch_size, 1), 2 * speed], 1
        ),
    )
    return BevBatch(
        sample_tokens=[f"sample-{seed}-{i}" for i in range(batch_size)],
        voxels=voxels,
        visibility=torch.zeros(batch_size, height, width, dtype=torch.uint8),
        target_visibility=torch.zeros(batch_size, height, width, dtype=torch.uint8),
        futures=FutureFrames(
            voxels=[voxels] * STEPS if future_voxels else [], poses=poses, actions=actions, valid=valid
        ),
        labels=labels,
    )


def straight_candidates(steps: int = STEPS) -> torch.Tensor:
    """(5, K, 2) straight candidates along +y from the ego origin at 0, 1, 2, 3, 4 m per step."""
    per_step = torch.arange(5, dtype=torch.float32)[:, None] * torch.arange(1, steps + 1)[None]  # (5, K)
    return torch.stack([torch.zeros_like(per_step), -0.943713 + per_step], -1)


def save_checkpoint(module, path, class_path: str | None = JEPA_CLASS, global_step: int = 7) -> None:
    """A checkpoint as Lightning writes it; the CLI adds the module's class path to the hyperparameters."""
    hparams = dict(module.hparams)
    if class_path is not None:
        hparams["_class_path"] = class_path
    torch.save(
        {
            "state_dict": module.state_dict(),
            "hyper_parameters": hparams,
            "global_step": global_step,
            "pytorch-lightning_version": lightning.__version__,
        },
        path,
    )


def cpu_trainer(**overrides) -> lightning.Trainer:
    """A quiet single-device CPU trainer."""
    arguments = {
        "accelerator": "cpu",
        "devices": 1,
        "logger": False,
        "enable_checkpointing": False,
        "enable_progress_bar": False,
        "enable_model_summary": False,
        "num_sanity_val_steps": 0,
    }
    arguments.update(overrides)
    return lightning.Trainer(**arguments)
