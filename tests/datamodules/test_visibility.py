"""BEV visibility by ray casting: against a brute-force reference, on hand-made scenes, on the real keyframe and
on a synthetic nuScenes-format drive (static structure seen from several keyframes lands in the same cells)."""

import itertools
import math

import numpy as np
import pytest
import torch
from nuscenes.nuscenes import NuScenes
from nuscenes.utils.data_classes import LidarPointCloud
from nuscenes.utils.geometry_utils import transform_matrix
from pyquaternion import Quaternion

from bevjepa.geometry.bev_raster import boxes_to_bev_mask
from bevjepa.grid import BevGrid
from datamodules.labels import sample_boxes_lidar
from datamodules.sample_records import FusedPoints
from datamodules.visibility import (
    FREE,
    OCCUPIED,
    UNOBSERVED,
    bev_visibility,
    keyframe_sweep,
    target_view_visibility,
)

SENSOR_HEIGHT = 1.84
# 16 x 16 cells of 1 m around the origin.
SMALL_GRID = BevGrid((-8.0, -8.0, -3.0, 8.0, 8.0, 3.0), (0.5, 0.5, 0.5), encoder_stride=2)


def _one_sweep(points: np.ndarray, origin=(0.0, 0.0, 0.0)) -> FusedPoints:
    points = np.asarray(points, dtype=np.float32).reshape(-1, 3)
    return FusedPoints(points, np.zeros(len(points), np.int16), np.array([origin], np.float32))


def _cell(grid: BevGrid, x: float, y: float) -> tuple[int, int]:
    row, col = grid.metric_to_bev_index(torch.tensor([[x, y]])).numpy()[0]
    return int(row), int(col)


def reference_visibility(
    fused: FusedPoints,
    grid: BevGrid,
    sensor_height: float = SENSOR_HEIGHT,
    ground_window_m: float = 2.0,
    obstacle_min: float = 0.3,
    obstacle_max: float = 4.0,
    free_max: float = 1.5,
) -> np.ndarray:
    """The documented rule, one ray at a time against every cell's rectangle (slab test), in plain numpy."""
    height, width = grid.bev_shape
    cell_x, cell_y = grid.bev_cell_size
    x_min, y_min = grid.point_cloud_range[:2]
    xyz = fused.points[:, :3].astype(np.float64)
    u, v = (xyz[:, 0] - x_min) / cell_x, (xyz[:, 1] - y_min) / cell_y
    cols, rows = np.floor(u).astype(int), np.floor(v).astype(int)
    inside = (cols >= 0) & (cols < width) & (rows >= 0) & (rows < height)
    lowest = np.full((height, width), np.inf)
    np.minimum.at(lowest, (rows[inside], cols[inside]), xyz[inside, 2])
    radius = max(1, math.ceil(ground_window_m / min(cell_x, cell_y) - 1e-9))
    padded = np.pad(lowest, radius, constant_values=np.inf)
    ground = np.min(
        [
            padded[radius + dr : radius + dr + height, radius + dc : radius + dc + width]
            for dr in range(-radius, radius + 1)
            for dc in range(-radius, radius + 1)
        ],
        axis=0,
    )

    free = np.zeros((height, width), bool)
    occupied = np.zeros((height, width), bool)
    grid_cols, grid_rows = np.arange(width), np.arange(height)
    for i in range(len(xyz)):
        origin = fused.sensor_origins[fused.sweep_index[i]].astype(np.float64)
        u0, v0 = (origin[0] - x_min) / cell_x, (origin[1] - y_min) / cell_y
        du, dv = u[i] - u0, v[i] - v0

        def slab(start, delta, lows):
            if delta == 0.0:
                hit = (lows <= start) & (start <= lows + 1)
                return np.where(hit, -np.inf, np.inf), np.where(hit, np.inf, -np.inf)
            t_a, t_b = (lows - start) / delta, (lows + 1 - start) / delta
            return np.minimum(t_a, t_b), np.maximum(t_a, t_b)

        col_in, col_out = slab(u0, du, grid_cols)
        row_in, row_out = slab(v0, dv, grid_rows)
        t_lo = np.maximum(np.maximum(row_in[:, None], col_in[None, :]), 0.0)  # (H, W)
        t_hi = np.minimum(np.minimum(row_out[:, None], col_out[None, :]), 1.0)
        crossed = t_lo <= t_hi
        if not crossed.any():
            continue
        if inside[i]:
            t_known, h_known = 1.0, xyz[i, 2] - ground[rows[i], cols[i]]
            if obstacle_min <= h_known <= obstacle_max:
                occupied[rows[i], cols[i]] = True
            elif h_known < obstacle_min:
                free[rows[i], cols[i]] = True
        else:
            t_known = t_hi[crossed].max()
            exit_col = min(max(int(np.floor(u0 + t_known * du)), 0), width - 1)
            exit_row = min(max(int(np.floor(v0 + t_known * dv)), 0), height - 1)
            exit_ground = ground[exit_row, exit_col]
            if exit_ground == np.inf:
                exit_ground = origin[2] - sensor_height
            h_known = origin[2] + t_known * (xyz[i, 2] - origin[2]) - exit_ground
        slope = (h_known - sensor_height) / t_known
        low_from, low_to = 0.0, 1.0
        if slope < 0:
            low_from = (free_max - sensor_height) / slope
        elif slope > 0:
            low_to = (free_max - sensor_height) / slope
        elif sensor_height > free_max:
            continue
        free |= crossed & (np.maximum(t_lo, low_from) <= np.minimum(t_hi, low_to))
    visibility = np.full((height, width), UNOBSERVED, np.uint8)
    visibility[free] = FREE
    visibility[occupied] = OCCUPIED
    return visibility


@pytest.mark.parametrize("seed", range(4))
def test_matches_brute_force_reference_on_random_rays(seed):
    rng = np.random.default_rng(seed)
    origins = np.array([[0.2, -0.3, 0.0], [1.1, 0.4, 0.05], [10.5, 3.0, -0.1]], np.float32)  # last: off-grid
    count = 120
    xy = rng.uniform(-12.0, 12.0, size=(count, 2))
    ground_z = -SENSOR_HEIGHT + 0.03 * xy[:, 0]  # a gentle slope
    height_above = np.where(
        rng.random(count) < 0.5, rng.uniform(0.0, 0.2, count), rng.uniform(0.0, 6.0, count)
    )
    points = np.column_stack([xy, ground_z + height_above]).astype(np.float32)
    fused = FusedPoints(points, rng.integers(0, 3, count).astype(np.int16), origins)

    expected = reference_visibility(fused, SMALL_GRID)
    actual = bev_visibility(fused, SMALL_GRID)
    assert actual.shape == SMALL_GRID.bev_shape and actual.dtype == np.uint8
    np.testing.assert_array_equal(actual, expected)
    for state in (FREE, OCCUPIED, UNOBSERVED):
        assert (actual == state).sum() >= 10


def test_wall_occupies_its_cells_and_hides_what_lies_behind():
    angles = np.radians(np.arange(-180.0, 180.0, 0.5))
    ranges = np.arange(3.0, 7.5, 0.25)
    ring = np.stack(np.meshgrid(ranges, angles), -1).reshape(-1, 2)
    ground = np.column_stack([ring[:, 0] * np.cos(ring[:, 1]), ring[:, 0] * np.sin(ring[:, 1])])
    # A wall 1 m tall standing at x = 4.5 over |y| < 1.5: the ground behind it is never reached.
    in_shadow = (ground[:, 0] > 4.0) & (np.abs(ground[:, 1] / ground[:, 0]) < 1.5 / 4.5)
    ground = ground[~in_shadow]
    wall_y, wall_z = np.meshgrid(np.arange(-1.45, 1.5, 0.1), np.arange(-1.7, -0.8, 0.2))
    wall = np.column_stack([np.full(wall_y.size, 4.5), wall_y.ravel(), wall_z.ravel()])
    points = np.concatenate([np.column_stack([ground, np.full(len(ground), -SENSOR_HEIGHT)]), wall])

    visibility = bev_visibility(_one_sweep(points), SMALL_GRID)
    assert visibility[_cell(SMALL_GRID, 4.5, 0.5)] == OCCUPIED
    assert visibility[_cell(SMALL_GRID, 4.5, -0.5)] == OCCUPIED
    assert visibility[_cell(SMALL_GRID, 6.5, 0.2)] == UNOBSERVED  # in the wall's shadow
    assert visibility[_cell(SMALL_GRID, -5.5, 0.5)] == FREE  # road behind the ego, seen
    assert visibility[_cell(SMALL_GRID, 0.5, 5.5)] == FREE
    assert visibility[_cell(SMALL_GRID, 7.5, 7.5)] == UNOBSERVED  # beyond every return
    # The wall spans four cells along y; ground returns never make a cell occupied.
    assert (visibility == OCCUPIED).sum() == 4


def test_heights_decide_what_a_ray_proves():
    ground_ring = [[x, y, -SENSOR_HEIGHT] for x in (-2.5, 2.5) for y in np.arange(-7.5, 8.0, 1.0)]
    ground_ring += [[x, y, -SENSOR_HEIGHT] for y in (-2.5, 2.5) for x in np.arange(-7.5, 8.0, 1.0)]
    canopy = [6.5, 0.5, -SENSOR_HEIGHT + 6.0]  # overhanging, 6 m above the road
    high_wall = [0.5, 7.5, -SENSOR_HEIGHT + 3.0]  # reached by a rising ray
    curb = [-6.5, 0.5, -SENSOR_HEIGHT + 0.15]
    visibility = bev_visibility(_one_sweep(ground_ring + [canopy, high_wall, curb]), SMALL_GRID)
    assert visibility[_cell(SMALL_GRID, 6.5, 0.5)] == UNOBSERVED  # above obstacle height, ray too high
    assert visibility[_cell(SMALL_GRID, 4.5, 0.5)] == UNOBSERVED  # a rising ray clears nothing
    assert visibility[_cell(SMALL_GRID, 0.5, 7.5)] == OCCUPIED
    assert visibility[_cell(SMALL_GRID, 0.5, 5.5)] == UNOBSERVED
    assert visibility[_cell(SMALL_GRID, -6.5, 0.5)] == FREE  # a curb is not an obstacle
    assert visibility[_cell(SMALL_GRID, -4.5, 0.5)] == FREE


def test_local_ground_follows_a_slope():
    # A 6 % climb: at 7.3 m the road is 0.44 m above the ground under the sensor, yet it is not an obstacle,
    # while a return 0.8 m above it is.
    xs = np.arange(1.0, 7.9, 0.2)
    road = np.column_stack([xs, np.full_like(xs, 0.5), -SENSOR_HEIGHT + 0.06 * xs])
    box = [[7.3, 2.5, -SENSOR_HEIGHT + 0.06 * 7.3 + z] for z in (0.0, 0.8)]
    visibility = bev_visibility(_one_sweep(np.concatenate([road, box])), SMALL_GRID)
    assert visibility[_cell(SMALL_GRID, 7.3, 0.5)] == FREE
    assert visibility[_cell(SMALL_GRID, 7.3, 2.5)] == OCCUPIED


def test_target_view_traces_all_views_and_sees_more():
    rng = np.random.default_rng(3)
    views = []
    for origin_x in (-4.0, 0.0, 4.0):
        xy = rng.uniform(-7.5, 7.5, size=(300, 2))
        z = np.where(rng.random(300) < 0.7, -SENSOR_HEIGHT, -SENSOR_HEIGHT + 1.0)
        views.append(_one_sweep(np.column_stack([xy, z]), origin=(origin_x, 0.0, 0.0)))
    combined = target_view_visibility(views, SMALL_GRID)
    merged = FusedPoints(
        np.concatenate([view.points for view in views]),
        np.repeat(np.arange(3), 300).astype(np.int16),
        np.concatenate([view.sensor_origins for view in views]),
    )
    np.testing.assert_array_equal(combined, bev_visibility(merged, SMALL_GRID))
    for view in views:
        single = bev_visibility(view, SMALL_GRID)
        assert np.all(combined[single != UNOBSERVED] != UNOBSERVED)
    with pytest.raises(ValueError, match="at least one view"):
        target_view_visibility([], SMALL_GRID)


def test_keyframe_sweep_keeps_sweep_zero():
    fused = FusedPoints(
        np.arange(12, dtype=np.float32).reshape(4, 3),
        np.array([0, 1, 0, 2], np.int16),
        np.zeros((3, 3), np.float32),
    )
    keyframe = keyframe_sweep(fused)
    np.testing.assert_array_equal(keyframe.points, fused.points[[0, 2]])
    assert keyframe.sensor_origins.shape == (1, 3)


def test_rejects_inconsistent_or_non_finite_input():
    good = _one_sweep([[1.0, 1.0, -1.0]])
    with pytest.raises(ValueError, match="sensor origins"):
        bev_visibility(FusedPoints(good.points, np.array([1], np.int16), good.sensor_origins), SMALL_GRID)
    with pytest.raises(ValueError, match="NaN or infinite"):
        bev_visibility(_one_sweep([[np.nan, 1.0, -1.0]]), SMALL_GRID)
    with pytest.raises(ValueError, match=r"points \(N, >=3\)"):
        bev_visibility(FusedPoints(good.points[:, :2], good.sweep_index, good.sensor_origins), SMALL_GRID)
    empty = bev_visibility(_one_sweep(np.zeros((0, 3))), SMALL_GRID)
    assert np.all(empty == UNOBSERVED)


def test_real_frame_single_sweep(real_frame):
    points = real_frame.points
    points = points[~np.all(np.abs(points[:, :2]) < 1.0, axis=1)]  # the fusion's 1 m self-return filter
    grid = BevGrid()
    visibility = bev_visibility(_one_sweep(points[:, :3]), grid)

    # The road around the ego is seen: almost every cell 4-12 m away is observed.
    centres = grid.bev_cell_centers().numpy()
    distance = np.hypot(centres[..., 0], centres[..., 1])
    near = (distance > 4.0) & (distance < 12.0)
    assert (visibility[near] != UNOBSERVED).mean() > 0.9
    # Every well-observed annotated object occupies a cell of its footprint.
    for box, count in zip(real_frame.boxes, real_frame.num_lidar_pts, strict=True):
        if count >= 20 and np.all(np.abs(box[:2]) < 50.0):
            footprint = boxes_to_bev_mask(box[None], grid)
            assert (visibility[footprint] == OCCUPIED).any(), box
    # Far from the sensor most of the scene is hidden or out of reach.
    assert (visibility[distance > 45.0] == UNOBSERVED).mean() > 0.5


def _lidar_to_global(nusc: NuScenes, sample_token: str) -> np.ndarray:
    sample_data = nusc.get("sample_data", nusc.get("sample", sample_token)["data"]["LIDAR_TOP"])
    calibration = nusc.get("calibrated_sensor", sample_data["calibrated_sensor_token"])
    pose = nusc.get("ego_pose", sample_data["ego_pose_token"])
    ego_to_global = transform_matrix(pose["translation"], Quaternion(pose["rotation"]))
    return ego_to_global @ transform_matrix(calibration["translation"], Quaternion(calibration["rotation"]))


def _keyframe_points_in(nusc: NuScenes, sample_token: str, reference_to_global: np.ndarray) -> FusedPoints:
    """A keyframe's LIDAR_TOP sweep, read and moved by the devkit's own tables, in a reference LiDAR frame."""
    sample_data_token = nusc.get("sample", sample_token)["data"]["LIDAR_TOP"]
    cloud = LidarPointCloud.from_file(nusc.get_sample_data_path(sample_data_token))
    cloud.remove_close(1.0)
    to_reference = np.linalg.inv(reference_to_global) @ _lidar_to_global(nusc, sample_token)
    cloud.transform(to_reference)
    points = cloud.points[:3].T.astype(np.float32)
    return FusedPoints(points, np.zeros(len(points), np.int16), to_reference[None, :3, 3].astype(np.float32))


def test_static_structure_from_other_keyframes_lands_in_the_same_cells(synthetic_dataroot):
    dataroot, version = synthetic_dataroot
    nusc = NuScenes(version=version, dataroot=str(dataroot), verbose=False)
    grid = BevGrid()
    compared = 0
    for scene in nusc.scene:
        tokens = [scene["first_sample_token"]]
        while nusc.get("sample", tokens[-1])["next"]:
            tokens.append(nusc.get("sample", tokens[-1])["next"])
        current = tokens[len(tokens) // 2]
        reference = _lidar_to_global(nusc, current)
        visibility = {
            token: bev_visibility(_keyframe_points_in(nusc, token, reference), grid) for token in tokens
        }
        # Objects move: leave out the cells of every annotated box (grown by 1.5 m) at any of these times.
        moving = np.zeros(grid.bev_shape, bool)
        for token in tokens:
            boxes = sample_boxes_lidar(nusc, token, reference).boxes.copy()
            boxes[:, 3:5] += 3.0
            moving |= boxes_to_bev_mask(boxes, grid)
        for token in tokens:
            if token == current:
                continue
            seen_by_both = (visibility[current] != UNOBSERVED) & (visibility[token] != UNOBSERVED) & ~moving
            here = (visibility[current] == OCCUPIED) & seen_by_both
            assert here.sum() >= 10
            # Structure seen from another place is occupied in the same cells: up to what each viewpoint sees
            # of it (a wall's far end, a face seen at a grazing angle), and clearly better than with the other
            # keyframe moved by one or two cells in any direction.
            overlap = {}
            for shift in itertools.product(range(-2, 3), repeat=2):
                there = np.roll(visibility[token] == OCCUPIED, shift, axis=(0, 1)) & seen_by_both
                overlap[shift] = (here & there).sum() / (here | there).sum()
            aligned = overlap.pop((0, 0))
            assert aligned >= 0.6
            assert aligned >= max(overlap.values()) + 0.1, (
                aligned,
                max(overlap.items(), key=lambda kv: kv[1]),
            )
            compared += 1
        combined = target_view_visibility(
            [_keyframe_points_in(nusc, token, reference) for token in tokens], grid
        )
        static_here = (visibility[current] == OCCUPIED) & ~moving
        assert (combined[static_here] == OCCUPIED).mean() >= 0.98
    assert compared >= 2
