"""Map rasters agree with ``NuScenesMap.get_map_mask`` for the same patch, and sample the BEV cell centres."""

import math

import numpy as np
import pytest
from nuscenes.map_expansion.map_api import NuScenesMap
from nuscenes.nuscenes import NuScenes
from nuscenes.utils.geometry_utils import transform_matrix
from pyquaternion import Quaternion
from shapely import affinity, contains_xy, prepare
from shapely.geometry import box
from shapely.ops import unary_union

from bevjepa.grid import BevGrid
from datamodules.labels import MAP_LAYERS, map_patch, map_rasters

DEVKIT_LAYERS = ["drivable_area", "ped_crossing", "walkway", "stop_line", "carpark_area"]
GRIDS = (
    BevGrid(),  # nuScenes: 128 x 128 cells of 0.8 m
    BevGrid((-30.0, -20.0, -5.0, 30.0, 40.0, 3.0), (0.25, 0.25, 0.2), 4),  # off-centre, 60 x 60 cells of 1 m
)


@pytest.fixture(scope="module")
def dataset(synthetic_dataroot):
    dataroot, version = synthetic_dataroot
    nusc = NuScenes(version=version, dataroot=str(dataroot), verbose=False)
    maps = {
        location: NuScenesMap(str(dataroot), location) for location in {log["location"] for log in nusc.log}
    }
    return nusc, maps


def _keyframe_poses(nusc: NuScenes, maps: dict) -> list[tuple[NuScenesMap, np.ndarray]]:
    """Every keyframe's LIDAR_TOP pose with its map, plus the same poses turned by odd angles about the sensor."""
    poses = []
    for sample in nusc.sample:
        sample_data = nusc.get("sample_data", sample["data"]["LIDAR_TOP"])
        calibration = nusc.get("calibrated_sensor", sample_data["calibrated_sensor_token"])
        pose = nusc.get("ego_pose", sample_data["ego_pose_token"])
        lidar_to_global = transform_matrix(
            pose["translation"], Quaternion(pose["rotation"])
        ) @ transform_matrix(calibration["translation"], Quaternion(calibration["rotation"]))
        location = nusc.get("log", nusc.get("scene", sample["scene_token"])["log_token"])["location"]
        poses.append((maps[location], lidar_to_global))
    turned = []
    for index, (nusc_map, lidar_to_global) in enumerate(poses):
        turn = np.eye(4)
        turn[:3, :3] = Quaternion(axis=[0.0, 0.0, 1.0], degrees=17.0 + 61.0 * index).rotation_matrix
        turned.append((nusc_map, lidar_to_global @ turn))
    return poses + turned


def _devkit_rasters(nusc_map: NuScenesMap, lidar_to_global: np.ndarray, grid: BevGrid) -> np.ndarray:
    patch_box, patch_angle = map_patch(lidar_to_global, grid)
    polygons = nusc_map.get_map_mask(patch_box, patch_angle, DEVKIT_LAYERS, canvas_size=grid.bev_shape)
    dividers = nusc_map.get_map_mask(
        patch_box, patch_angle, ["road_divider", "lane_divider"], canvas_size=grid.bev_shape
    )
    return np.concatenate([polygons, dividers.max(axis=0, keepdims=True)]).astype(bool)


@pytest.mark.parametrize("grid", GRIDS, ids=["nuscenes", "off_centre"])
def test_rasters_equal_get_map_mask(dataset, grid):
    nusc, maps = dataset
    for nusc_map, lidar_to_global in _keyframe_poses(nusc, maps):
        rasters = map_rasters(nusc_map, lidar_to_global, grid)
        assert rasters.shape == (len(MAP_LAYERS), *grid.bev_shape) and rasters.dtype == bool
        np.testing.assert_array_equal(rasters, _devkit_rasters(nusc_map, lidar_to_global, grid))
    # The drive passes drivable area, walkways and dividers; the test would be empty otherwise.
    assert rasters[MAP_LAYERS.index("drivable_area")].any() and rasters[MAP_LAYERS.index("divider")].any()


def _unshifted_patch(lidar_to_global: np.ndarray, grid: BevGrid) -> tuple[tuple, float]:
    """The patch centred on the grid itself, whose pixels sample cell corners instead of cell centres."""
    (centre_x, centre_y, height, width), angle = map_patch(lidar_to_global, grid)
    yaw = math.radians(angle)
    half_x, half_y = grid.bev_cell_size[0] / 2, grid.bev_cell_size[1] / 2
    centre_x -= math.cos(yaw) * half_x - math.sin(yaw) * half_y
    centre_y -= math.sin(yaw) * half_x + math.cos(yaw) * half_y
    return (centre_x, centre_y, height, width), angle


@pytest.mark.parametrize("grid", GRIDS, ids=["nuscenes", "off_centre"])
def test_rasters_sample_cell_centres_in_the_lidar_frame(dataset, grid):
    """Independently of the devkit's code path: a cell is drivable when its centre, moved to the global frame
    with the full LiDAR pose, lies in a drivable-area polygon. The devkit's filling includes the polygon outline
    (about half a pixel outside), so the raster may only add cells along edges, hardly ever miss one; sampling
    cell corners instead would miss cells along half of the edges."""
    nusc, maps = dataset
    cell = max(grid.bev_cell_size)
    rng = np.random.default_rng(0)
    extra, missed, missed_unshifted = 0, 0, 0
    drivable_areas = {}
    x_min, y_min, _, x_max, y_max, _ = grid.point_cloud_range
    around_grid = box(x_min - 3 * cell, y_min - 3 * cell, x_max + 3 * cell, y_max + 3 * cell)
    for nusc_map, lidar_to_global in _keyframe_poses(nusc, maps):
        nudge = np.eye(4)
        nudge[:2, 3] = rng.uniform(-3.0, 3.0, 2)  # sub-cell positions vary from pose to pose
        lidar_to_global = lidar_to_global @ nudge
        if nusc_map not in drivable_areas:
            drivable_areas[nusc_map] = unary_union(
                [nusc_map.extract_polygon(t) for r in nusc_map.drivable_area for t in r["polygon_tokens"]]
            )
        rotation, translation = lidar_to_global[:2, :2], lidar_to_global[:2, 3]
        grid_global = affinity.affine_transform(around_grid, [*rotation.ravel(), *translation])
        drivable = drivable_areas[nusc_map].intersection(grid_global)
        band = drivable.boundary.buffer(1.5 * cell)
        prepare(drivable)
        prepare(band)
        centres = grid.bev_cell_centers().numpy().reshape(-1, 2)  # (H * W, 2) LiDAR frame
        centres_global = centres @ lidar_to_global[:2, :2].T + lidar_to_global[:2, 3]  # on the plane z = 0
        inside = contains_xy(drivable, centres_global[:, 0], centres_global[:, 1]).reshape(grid.bev_shape)
        near_edge = contains_xy(band, centres_global[:, 0], centres_global[:, 1]).reshape(grid.bev_shape)
        raster = map_rasters(nusc_map, lidar_to_global, grid)[MAP_LAYERS.index("drivable_area")]
        np.testing.assert_array_equal(raster[~near_edge], inside[~near_edge])
        assert inside[~near_edge].sum() > 50
        unshifted = nusc_map.get_map_mask(
            *_unshifted_patch(lidar_to_global, grid), ["drivable_area"], grid.bev_shape
        )[0].astype(bool)
        extra += int((raster & ~inside).sum())
        missed += int((~raster & inside).sum())
        missed_unshifted += int((~unshifted & inside).sum())
    assert missed < 0.035 * extra, (missed, extra)
    assert missed_unshifted > 3 * missed, (missed_unshifted, missed)


def test_patch_follows_the_lidar_yaw():
    grid = BevGrid()
    pose = np.eye(4)
    pose[:3, :3] = Quaternion(axis=[0.0, 0.0, 1.0], degrees=-90.0).rotation_matrix
    pose[:3, 3] = [100.0, 200.0, 1.8]
    (centre_x, centre_y, height, width), angle = map_patch(pose, grid)
    assert angle == pytest.approx(-90.0)
    assert (height, width) == pytest.approx((102.4, 102.4))
    # Half a cell (0.4 m) along the LiDAR x and y axes: +x_lidar is -y_global and +y_lidar is +x_global.
    assert (centre_x, centre_y) == pytest.approx((100.4, 199.6))
