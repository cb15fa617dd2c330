"""Export tests: the committed manifests, bevjepa encoders with trained-looking weights, checkpoints of them,
and the real nuScenes frame voxelized on the nuScenes grid with CenterPoint's five point features."""

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn
from torch_threads import one_torch_thread

from bevjepa.batch import VoxelBatch
from bevjepa.encoders import SparseBEVEncoder
from bevjepa.export import Manifest, load_manifest
from bevjepa.grid import BevGrid
from bevjepa.sparse import Voxelizer, collate_voxels

REPO_ROOT = Path(__file__).resolve().parents[2]
MANIFEST_DIR = REPO_ROOT / "tools" / "export_manifests"
NUSCENES_GRID = (
    BevGrid()
)  # 0.1 x 0.1 x 0.2 m on [-51.2, -51.2, -5, 51.2, 51.2, 3]: sparse shape 41 x 1024 x 1024


single_thread = pytest.fixture(autouse=True)(one_torch_thread)


def manifest(name: str) -> Manifest:
    return load_manifest(MANIFEST_DIR / f"{name}.json")


def encoder_for(name: str, seed: int = 0, **overrides) -> SparseBEVEncoder:
    """A bevjepa encoder of a manifest's architecture on the nuScenes grid, with trained-looking weights."""
    backbone = dict(manifest(name).bevjepa_backbone)
    backbone.update(overrides)
    torch.manual_seed(seed)
    encoder = SparseBEVEncoder(
        NUSCENES_GRID,
        in_channels=backbone.pop("in_channels"),
        embed_dim=16,
        bev_channels=16,
        bev_blocks=1,
        sparse_output_channels=backbone.pop("output_channels"),
        **backbone,
    )
    return randomize_statistics(encoder, seed).eval()


def randomize_statistics(module: nn.Module, seed: int) -> nn.Module:
    """Give every BatchNorm and bias values far from their initial ones, so a misplaced tensor shows."""
    generator = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for layer in module.modules():
            if isinstance(layer, nn.BatchNorm1d):
                channels = layer.num_features
                layer.weight.copy_(0.5 + torch.rand(channels, generator=generator))
                layer.bias.copy_(0.2 * torch.randn(channels, generator=generator))
                layer.running_mean.copy_(0.2 * torch.randn(channels, generator=generator))
                layer.running_var.copy_(0.5 + torch.rand(channels, generator=generator))
                layer.num_batches_tracked.fill_(int(torch.randint(1, 1000, (1,), generator=generator)))
            elif getattr(layer, "bias", None) is not None and not isinstance(layer, nn.BatchNorm1d):
                layer.bias.copy_(0.1 * torch.randn(layer.bias.shape, generator=generator))
    return module


def write_checkpoint(path: Path, **encoders: SparseBEVEncoder) -> Path:
    """A Lightning-style checkpoint holding the given encoders under their attribute names."""
    state = {
        f"{name}.{key}": value
        for name, encoder in encoders.items()
        for key, value in encoder.state_dict().items()
    }
    torch.save({"state_dict": state, "global_step": 7}, path)
    return path


def centerpoint_points(points: np.ndarray) -> np.ndarray:
    """``[x, y, z, intensity, time_lag]`` (N, 5) of a single-sweep frame: CenterPoint's five point features."""
    out = np.zeros((len(points), 5), np.float32)
    out[:, :4] = points[:, :4]
    return out


@pytest.fixture(scope="session")
def real_frame_voxels(real_frame) -> VoxelBatch:
    """The real frame on the nuScenes grid: features (V, 5) mean ``[x, y, z, intensity, time_lag]``."""
    features, coords, _ = Voxelizer(NUSCENES_GRID, 5)(centerpoint_points(real_frame.points))
    return collate_voxels([(features, coords)])


@pytest.fixture(scope="session")
def real_frame_voxels_near(real_frame) -> VoxelBatch:
    """The real frame's points within 25.6 m (x and y) on the nuScenes grid: a quicker real input."""
    near = real_frame.points[
        (np.abs(real_frame.points[:, 0]) < 25.6) & (np.abs(real_frame.points[:, 1]) < 25.6)
    ]
    features, coords, _ = Voxelizer(NUSCENES_GRID, 5)(centerpoint_points(near))
    return collate_voxels([(features, coords)])
