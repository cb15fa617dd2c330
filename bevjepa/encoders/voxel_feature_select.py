"""Picks and rescales the voxel feature channels that reach the sparse backbone.

Detectors fix their voxel features: CenterPoint (mmdetection3d and OpenPCDet) averages
``[x, y, z, intensity, time_lag]`` with nuScenes' raw 0..255 intensity, five channels. bevjepa's LiDAR voxels
carry ``[x, y, z, intensity / 255, time_lag, count]``. Selecting the first five channels and scaling intensity
back by 255 makes the backbone see exactly the detector's inputs, so that its exported weights mean the same
thing downstream.
"""

from collections.abc import Sequence

import torch
from torch import nn


class VoxelFeatureSelect(nn.Module):
    """``features (V, C_data) -> features[:, indices] * scale (V, len(indices))``; no parameters.

    Args:
        in_channels: C_data, the channels of the data's voxel features.
        indices: data channels fed to the backbone, in the backbone's order.
        scale: one factor per selected channel (``None``: all 1).
    """

    def __init__(
        self, in_channels: int, indices: Sequence[int], scale: Sequence[float] | None = None
    ) -> None:
        super().__init__()
        if not indices or not all(0 <= index < in_channels for index in indices):
            raise ValueError(f"voxel feature indices {list(indices)} must lie in [0, {in_channels})")
        if scale is not None and len(scale) != len(indices):
            raise ValueError(f"voxel feature scale has {len(scale)} entries for {len(indices)} channels")
        # Not persistent: checkpoints hold only learned weights, so the layout stays the detector's.
        self.register_buffer("indices", torch.tensor(list(indices), dtype=torch.long), persistent=False)
        factors = torch.tensor(list(scale) if scale is not None else [1.0] * len(indices))
        self.register_buffer("scale", factors, persistent=False)

    @property
    def out_channels(self) -> int:
        return len(self.indices)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """Args: features (V, C_data). Returns: (V, len(indices))."""
        return features[:, self.indices] * self.scale.to(features.dtype)  # (V, C_sel)
