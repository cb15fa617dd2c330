"""Small structured BEV scenes for the JEPA tests: a ground plane and static boxes seen from an ego that moves
with known actions, voxelized in each keyframe's own frame, with visibility from cell-level ray casting.

Everything is a pure function of ``(seed, index)``, so the scenes are the same in every process.
"""

import math

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from bevjepa.batch import BevBatch, FutureFrames
from bevjepa.grid import BevGrid
from bevjepa.sparse import collate_voxels

# 64 x 64 x 24 voxels, BEV 8 x 8 cells of 3.2 m.
SCENE_GRID = BevGrid(point_cloud_range=(-12.8, -12.8, -3.0, 12.8, 12.8, 3.0), voxel_size=(0.4, 0.4, 0.25))
GROUND_Z = -1.8
SENSOR_RANGE = 15.0
IN_CHANNELS = 4  # voxel centre x, y, z and a constant "intensity"


def _pose(x: float, y: float, yaw: float) -> np.ndarray:
    pose = np.eye(4)
    pose[:2, :2] = [[math.cos(yaw), -math.sin(yaw)], [math.sin(yaw), math.cos(yaw)]]
    pose[:2, 3] = [x, y]
    return pose


def _box_heights(boxes: np.ndarray, xy: np.ndarray) -> np.ndarray:
    """Height (m above ground) of the tallest box over each point ``xy (P, 2)``; 0 where none.

    ``boxes (M, 5)`` are ``[cx, cy, half_length, half_width, height]``, axis-aligned in the world.
    """
    heights = np.zeros(len(xy))
    for cx, cy, hl, hw, height in boxes:
        inside = (np.abs(xy[:, 0] - cx) <= hl) & (np.abs(xy[:, 1] - cy) <= hw)
        heights = np.where(inside, np.maximum(heights, height), heights)
    return heights


def _visible(columns_world: np.ndarray, origin_world: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """Columns (P, 2) whose ray from ``origin`` meets no box before the last 0.5 m: (P,) bool."""
    offsets = columns_world - origin_world
    distance = np.linalg.norm(offsets, axis=1)
    fractions = np.linspace(0.0, 1.0, 48, endpoint=False)
    samples = origin_world + offsets[:, None, :] * fractions[None, :, None]  # (P, S, 2)
    before_end = distance[:, None] * (1 - fractions[None, :]) > 0.5
    blocked = (_box_heights(boxes, samples.reshape(-1, 2)).reshape(samples.shape[:2]) > 0) & before_end
    return ~blocked.any(axis=1) & (distance <= SENSOR_RANGE)


def _columns(grid: BevGrid) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Voxel-column centres of the grid, (P, 2) metric x y, with their row and column indices (P,)."""
    _, rows, cols = grid.voxel_grid_shape
    x0, y0 = grid.point_cloud_range[:2]
    col_index, row_index = np.meshgrid(np.arange(cols), np.arange(rows), indexing="xy")
    centres = np.stack(
        [x0 + (col_index + 0.5) * grid.voxel_size[0], y0 + (row_index + 0.5) * grid.voxel_size[1]], -1
    )
    return centres.reshape(-1, 2), row_index.flatten(), col_index.flatten()


def _cell_visibility(grid: BevGrid, visible: np.ndarray, occupied: np.ndarray) -> np.ndarray:
    """Per BEV cell from per-column flags (P,): occupied if a visible column holds a box, else free if at
    least half its columns are visible, else unobserved. (H, W) uint8."""
    _, rows, cols = _columns(grid)
    stride = grid.encoder_stride
    height, width = grid.bev_shape
    cell_of = (rows // stride) * width + cols // stride
    observed_share = np.bincount(cell_of, weights=visible, minlength=height * width) / stride**2
    has_box = np.bincount(cell_of, weights=visible & occupied, minlength=height * width) > 0
    visibility = np.where(observed_share >= 0.5, 0, 2).astype(np.uint8)
    visibility[has_box] = 1
    return visibility.reshape(height, width)


def _frame(
    boxes: np.ndarray, pose: np.ndarray, grid: BevGrid
) -> tuple[torch.Tensor, torch.Tensor, np.ndarray]:
    """Voxels and cell visibility of the world seen from ``pose`` (frame -> world), in that frame.

    Returns:
        features (V, 4), coords (V, 3) ``[z, y, x]``, visibility (H, W) uint8 (0 free, 1 occupied, 2 unobserved).
    """
    depth = grid.voxel_grid_shape[0]
    z0, vz = grid.point_cloud_range[2], grid.voxel_size[2]
    local, rows, cols = _columns(grid)
    world = local @ pose[:2, :2].T + pose[:2, 3]
    visible = _visible(world, pose[:2, 3], boxes)
    heights = _box_heights(boxes, world)
    ground_layer = int((GROUND_Z - z0) / vz)
    top_layer = np.clip(((GROUND_Z + heights - z0) / vz).astype(int), ground_layer, depth - 1)
    features, coords = [], []
    for column in np.flatnonzero(visible):
        for layer in range(ground_layer, top_layer[column] + 1):
            features.append([*local[column], z0 + (layer + 0.5) * vz, 1.0])
            coords.append([layer, rows[column], cols[column]])
    return (
        torch.tensor(features, dtype=torch.float32),
        torch.tensor(coords, dtype=torch.int32),
        _cell_visibility(grid, visible, heights > 0),
    )


def make_scene(seed: int, index: int, steps: int = 2, grid: BevGrid = SCENE_GRID) -> dict:
    """One sample: boxes around an ego that drives ``steps`` keyframes with random actions.

    Returns a dict of per-sample tensors (see ``collate_scenes``).
    """
    rng = np.random.default_rng((seed, index))
    count = int(rng.integers(4, 8))
    centres = rng.uniform(-11, 11, size=(count, 2))
    centres = centres[np.linalg.norm(centres, axis=1) > 3.0]  # keep the ego's own cell clear
    boxes = np.column_stack(
        [
            centres,
            rng.uniform(0.8, 2.2, len(centres)),
            rng.uniform(0.6, 1.6, len(centres)),
            rng.uniform(0.8, 2.5, len(centres)),
        ]
    )
    poses, actions = [np.eye(4)], []
    for _ in range(steps):
        forward, lateral, turn = rng.uniform(0.5, 4.0), rng.uniform(-1.0, 1.0), rng.uniform(-0.3, 0.3)
        previous = poses[-1]
        poses.append(previous @ _pose(forward, lateral, turn))
        dx, dy = previous[:2, :2] @ np.array([forward, lateral])  # the step's motion in the current frame
        actions.append([dx, dy, turn, math.hypot(forward, lateral) / 0.5])
    frames = [_frame(boxes, pose, grid) for pose in poses]
    target_visibility = _target_visibility(boxes, poses, grid)
    return {
        "token": f"scene-{seed}-{index}",
        "voxels": frames[0][:2],
        "visibility": torch.from_numpy(frames[0][2]),
        "target_visibility": torch.from_numpy(target_visibility),
        "future_voxels": [frame[:2] for frame in frames[1:]],
        "poses": torch.tensor(np.stack(poses[1:]), dtype=torch.float32),
        "actions": torch.tensor(actions, dtype=torch.float32),
    }


def _target_visibility(boxes: np.ndarray, poses: list[np.ndarray], grid: BevGrid) -> np.ndarray:
    """Visibility of the current frame's cells from every keyframe's sensor (a column is seen if any saw it)."""
    columns, _, _ = _columns(grid)  # the current frame is the world frame
    visible = np.zeros(len(columns), dtype=bool)
    for pose in poses:
        visible |= _visible(columns, pose[:2, 3], boxes)
    return _cell_visibility(grid, visible, _box_heights(boxes, columns) > 0)


def collate_scenes(samples: list[dict]) -> BevBatch:
    """Batch samples of ``make_scene`` into a ``BevBatch`` with futures."""
    steps = len(samples[0]["future_voxels"])
    futures = FutureFrames(
        voxels=[collate_voxels([s["future_voxels"][k] for s in samples]) for k in range(steps)],
        poses=torch.stack([s["poses"] for s in samples]),
        actions=torch.stack([s["actions"] for s in samples]),
        valid=torch.ones(len(samples), steps, dtype=torch.bool),
    )
    return BevBatch(
        sample_tokens=[s["token"] for s in samples],
        voxels=collate_voxels([s["voxels"] for s in samples]),
        visibility=torch.stack([s["visibility"] for s in samples]),
        target_visibility=torch.stack([s["target_visibility"] for s in samples]),
        futures=futures,
    )


def make_batch(seed: int = 0, batch_size: int = 2, steps: int = 2) -> BevBatch:
    """A batch of ``batch_size`` scenes."""
    return collate_scenes([make_scene(seed, index, steps) for index in range(batch_size)])


class SceneDataset(Dataset):
    """``length`` scenes of one seed (scenes are generated on first use and kept)."""

    def __init__(self, seed: int, length: int, steps: int) -> None:
        self.seed, self.length, self.steps = seed, length, steps
        self._cache: dict[int, dict] = {}

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> dict:
        if index not in self._cache:
            self._cache[index] = make_scene(self.seed, index, self.steps)
        return self._cache[index]


class EpochShuffleSampler(Sampler[int]):
    """A permutation per epoch seeded by ``(seed, epoch)``: the data order survives a resume."""

    def __init__(self, length: int, seed: int) -> None:
        self.length, self.seed, self.epoch = length, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self):
        generator = torch.Generator().manual_seed(self.seed * 1000 + self.epoch)
        return iter(torch.randperm(self.length, generator=generator).tolist())

    def __len__(self) -> int:
        return self.length


class SceneDataModule(L.LightningDataModule):
    """Train and validation scenes, with the ``grid`` and ``in_channels`` the model links to."""

    def __init__(
        self, train_scenes: int = 8, val_scenes: int = 4, batch_size: int = 2, steps: int = 2, seed: int = 0
    ):
        super().__init__()
        self.grid = SCENE_GRID
        self.in_channels = IN_CHANNELS
        self.batch_size = batch_size
        self.seed = seed
        self.train_set = SceneDataset(seed, train_scenes, steps)
        self.val_set = SceneDataset(seed + 1, val_scenes, steps)

    def train_dataloader(self) -> DataLoader:
        sampler = EpochShuffleSampler(len(self.train_set), self.seed)
        return DataLoader(
            self.train_set, self.batch_size, sampler=sampler, collate_fn=collate_scenes, drop_last=True
        )

    def val_dataloader(self) -> DataLoader:
        return DataLoader(self.val_set, self.batch_size, collate_fn=collate_scenes)
