"""What a nuScenes sample is made of: the options that decide its tensors, and their cache key."""

import hashlib
import json
from dataclasses import asdict, dataclass

from bevjepa.grid import BevGrid

# Bump when the content or layout of cached samples changes, so that old caches are refused.
CACHE_FORMAT = 3


@dataclass(frozen=True)
class SampleOptions:
    """Options that decide every tensor of a sample.

    Attributes:
        grid: the voxel grid (and BEV raster geometry).
        lidar_sweeps: LIDAR_TOP sweeps fused per keyframe (keyframe sweep included).
        radar: whether radar voxels channels are fused in.
        radar_sweeps: sweeps per RADAR_* channel.
        future_steps: future keyframes per sample (6 = 3 s at 2 Hz).
        occlusion_window: keyframes before and after the current one whose keyframe sweeps form the
            target view (occluded-region targets).
        labels: whether probe labels are built.
        max_voxels: voxels per sensor and keyframe at most.
    """

    grid: BevGrid
    lidar_sweeps: int = 10
    radar: bool = True
    radar_sweeps: int = 6
    future_steps: int = 6
    occlusion_window: int = 2
    labels: bool = True
    max_voxels: int = 150000

    def cache_key(self) -> str:
        """A short hash of everything that changes cached tensors."""
        text = json.dumps({"format": CACHE_FORMAT, **asdict(self)}, sort_keys=True)
        return hashlib.sha1(text.encode()).hexdigest()[:12]

    def describe(self) -> dict:
        """The options as plain JSON values (written next to a cache)."""
        return {"format": CACHE_FORMAT, **json.loads(json.dumps(asdict(self)))}
