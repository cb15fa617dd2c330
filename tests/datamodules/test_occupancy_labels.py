"""BEV occupancy labels: class mapping, the rules on hand-made inputs, the real keyframe and a synthetic drive."""

import numpy as np
import pytest
import torch
from nuscenes.nuscenes import NuScenes
from nuscenes.utils.data_classes import LidarPointCloud
from nuscenes.utils.geometry_utils import transform_matrix
from pyquaternion import Quaternion

from bevjepa.geometry.bev_raster import boxes_to_bev_mask
from bevjepa.geometry.boxes import points_to_box_frames
from bevjepa.grid import BevGrid
from datamodules.labels import (
    FREE,
    IGNORE,
    STATIC_OBSTACLE,
    VEHICLE,
    VULNERABLE,
    future_agent_boxes,
    occupancy_class,
    occupancy_label,
    occupancy_labels_over_time,
    sample_boxes_lidar,
)
from datamodules.sample_records import FusedPoints
from datamodules.visibility import FREE as SEEN_FREE
from datamodules.visibility import OCCUPIED, UNOBSERVED, bev_visibility

GRID = BevGrid((-8.0, -8.0, -3.0, 8.0, 8.0, 3.0), (0.5, 0.5, 0.5), encoder_stride=2)  # 16 x 16 cells of 1 m


def _cell(grid: BevGrid, x: float, y: float) -> tuple[int, int]:
    row, col = grid.metric_to_bev_index(torch.tensor([[x, y]])).numpy()[0]
    return int(row), int(col)


@pytest.mark.parametrize(
    ("category", "expected"),
    [
        ("vehicle.car", VEHICLE),
        ("vehicle.bus.bendy", VEHICLE),
        ("vehicle.emergency.police", VEHICLE),
        ("vehicle.trailer", VEHICLE),
        ("vehicle.bicycle", VULNERABLE),
        ("vehicle.motorcycle", VULNERABLE),
        ("human.pedestrian.adult", VULNERABLE),
        ("human.pedestrian.wheelchair", VULNERABLE),
        ("animal", VULNERABLE),
        ("movable_object.barrier", STATIC_OBSTACLE),
        ("movable_object.trafficcone", STATIC_OBSTACLE),
        ("static_object.bicycle_rack", STATIC_OBSTACLE),
        ("car", VEHICLE),
        ("construction_vehicle", VEHICLE),
        ("pedestrian", VULNERABLE),
        ("bicycle", VULNERABLE),
        ("traffic_cone", STATIC_OBSTACLE),
        ("barrier", STATIC_OBSTACLE),
        ("ignored", None),
    ],
)
def test_category_mapping(category, expected):
    assert occupancy_class(category) == expected


def test_unknown_category_is_refused():
    with pytest.raises(ValueError, match="'spaceship' is not a nuScenes category"):
        occupancy_class("spaceship")


def whole_grid_footprints(boxes: np.ndarray, grid: BevGrid) -> np.ndarray:
    """Reference: every cell centre tested against every box, plus each box's centre cell."""
    height, width = grid.bev_shape
    centres = np.concatenate(
        [grid.bev_cell_centers().numpy().reshape(-1, 2), np.zeros((height * width, 1))], 1
    )
    local = points_to_box_frames(centres, np.asarray(boxes, dtype=np.float64).reshape(-1, 7))  # (M, H * W, 3)
    inside = (np.abs(local[..., 0]) <= boxes[:, None, 3] / 2) & (
        np.abs(local[..., 1]) <= boxes[:, None, 4] / 2
    )
    mask = inside.any(axis=0).reshape(height, width)
    cells = grid.metric_to_bev_index(torch.from_numpy(np.array(boxes[:, :2], dtype=np.float64))).numpy()
    cells = cells[cells[:, 0] >= 0]
    mask[cells[:, 0], cells[:, 1]] = True
    return mask


def test_box_footprints_equal_the_whole_grid_reference(real_frame):
    rng = np.random.default_rng(5)
    random_boxes = np.column_stack(
        [
            rng.uniform(-60.0, 60.0, (200, 2)),  # some outside the grid, some across its edge
            rng.uniform(-2.0, 1.0, 200),
            rng.uniform(0.2, 15.0, (200, 2)),
            rng.uniform(0.5, 4.0, 200),
            rng.uniform(-np.pi, np.pi, 200),
        ]
    )
    for grid in (BevGrid(), GRID, BevGrid(voxel_size=(0.4, 0.4, 0.2))):
        for boxes in (real_frame.boxes, random_boxes, np.zeros((0, 7))):
            np.testing.assert_array_equal(boxes_to_bev_mask(boxes, grid), whole_grid_footprints(boxes, grid))


def test_rules_on_a_hand_made_scene():
    visibility = np.full(GRID.bev_shape, SEEN_FREE, np.uint8)
    visibility[:, :3] = UNOBSERVED  # x < -5 m never seen
    visibility[_cell(GRID, 6.5, -6.5)] = OCCUPIED  # a pole, far from every box
    visibility[_cell(GRID, 3.5, 2.5)] = OCCUPIED  # a car's returns just outside its footprint cells
    visibility[_cell(GRID, 2.5, 2.5)] = OCCUPIED  # and inside
    boxes = np.array(
        [
            [1.5, 2.5, 0.0, 3.8, 1.8, 1.5, 0.0],  # car over cells x in [0, 3)
            [-6.5, 0.5, 0.0, 4.0, 1.8, 1.5, np.pi / 2],  # car in the unobserved part: still a car
            [0.5, 3.5, 0.0, 0.6, 0.6, 1.7, 0.0],  # pedestrian next to the car, overlapping it
            [5.5, -2.5, 0.0, 0.4, 0.4, 0.7, 0.0],  # traffic cone
            [-2.5, -5.5, 0.0, 1.0, 1.0, 1.0, 0.0],  # object of unknown class
        ]
    )
    categories = ["vehicle.car", "car", "human.pedestrian.adult", "traffic_cone", "ignored"]
    label = occupancy_label(boxes, categories, visibility, GRID)
    assert label.shape == GRID.bev_shape and label.dtype == np.int64

    assert label[_cell(GRID, 0.5, 2.5)] == VEHICLE
    assert label[_cell(GRID, 2.5, 2.5)] == VEHICLE
    assert label[_cell(GRID, 3.5, 2.5)] == IGNORE  # touches the car: not a static obstacle
    assert label[_cell(GRID, 0.5, 3.5)] == VULNERABLE  # the pedestrian wins where boxes overlap
    assert label[_cell(GRID, -6.5, 0.5)] == VEHICLE
    assert label[_cell(GRID, -6.5, -4.5)] == IGNORE  # unobserved
    assert label[_cell(GRID, 5.5, -2.5)] == STATIC_OBSTACLE
    assert label[_cell(GRID, 6.5, -6.5)] == STATIC_OBSTACLE  # LiDAR evidence without a box
    assert label[_cell(GRID, -2.5, -5.5)] == IGNORE
    assert label[_cell(GRID, 5.5, 5.5)] == FREE
    assert set(np.unique(label).tolist()) == {FREE, VEHICLE, VULNERABLE, STATIC_OBSTACLE, IGNORE}


def test_rejects_mismatched_inputs():
    visibility = np.zeros(GRID.bev_shape, np.uint8)
    with pytest.raises(ValueError, match="1 boxes but 0 categories"):
        occupancy_label(np.zeros((1, 7)), [], visibility, GRID)
    with pytest.raises(ValueError, match="does not match the grid"):
        occupancy_label(np.zeros((0, 7)), [], np.zeros((4, 4), np.uint8), GRID)
    with pytest.raises(ValueError, match="2 box sets but 1 visibilities"):
        occupancy_labels_over_time([(np.zeros((0, 7)), [])] * 2, [visibility], GRID)


def test_real_frame_label_marks_the_cells_under_its_boxes(real_frame):
    """The real keyframe through the single-sweep path: its points as one sweep, the sensor at the origin."""
    grid = BevGrid()
    points = real_frame.points[~np.all(np.abs(real_frame.points[:, :2]) < 1.0, axis=1)]
    fused = FusedPoints(points, np.zeros(len(points), np.int16), np.zeros((1, 3), np.float32))
    visibility = bev_visibility(fused, grid)
    label = occupancy_label(real_frame.boxes, real_frame.categories, visibility, grid)

    classes = [occupancy_class(category) for category in real_frame.categories]
    footprints = {
        value: boxes_to_bev_mask(real_frame.boxes[[c == value for c in classes]], grid)
        for value in (None, STATIC_OBSTACLE, VEHICLE, VULNERABLE)
    }
    assert (
        footprints[VEHICLE].sum() > 100 and footprints[VULNERABLE].any() and footprints[STATIC_OBSTACLE].any()
    )
    np.testing.assert_array_equal(footprints[VULNERABLE], label == VULNERABLE)
    np.testing.assert_array_equal(footprints[VEHICLE] & ~footprints[VULNERABLE], label == VEHICLE)
    barriers_and_cones = footprints[STATIC_OBSTACLE] & ~footprints[VEHICLE] & ~footprints[VULNERABLE]
    assert np.all(label[barriers_and_cones] == STATIC_OBSTACLE)
    # Everything else follows the LiDAR: static obstacles only where returns stand above the ground.
    outside_boxes = ~(
        footprints[None] | footprints[STATIC_OBSTACLE] | footprints[VEHICLE] | footprints[VULNERABLE]
    )
    assert np.all(visibility[outside_boxes & (label == STATIC_OBSTACLE)] == OCCUPIED)
    assert np.all(label[outside_boxes & (visibility == SEEN_FREE)] == FREE)
    assert np.all(label[outside_boxes & (visibility == UNOBSERVED)] == IGNORE)
    assert (label == STATIC_OBSTACLE).sum() > footprints[STATIC_OBSTACLE].sum()  # walls, poles, vegetation


def _lidar_to_global(nusc: NuScenes, sample_token: str) -> np.ndarray:
    sample_data = nusc.get("sample_data", nusc.get("sample", sample_token)["data"]["LIDAR_TOP"])
    calibration = nusc.get("calibrated_sensor", sample_data["calibrated_sensor_token"])
    pose = nusc.get("ego_pose", sample_data["ego_pose_token"])
    return transform_matrix(pose["translation"], Quaternion(pose["rotation"])) @ transform_matrix(
        calibration["translation"], Quaternion(calibration["rotation"])
    )


def _keyframe_visibility(
    nusc: NuScenes, sample_token: str, reference: np.ndarray, grid: BevGrid
) -> np.ndarray:
    cloud = LidarPointCloud.from_file(
        nusc.get_sample_data_path(nusc.get("sample", sample_token)["data"]["LIDAR_TOP"])
    )
    cloud.remove_close(1.0)
    to_reference = np.linalg.inv(reference) @ _lidar_to_global(nusc, sample_token)
    cloud.transform(to_reference)
    points = cloud.points[:3].T.astype(np.float32)
    fused = FusedPoints(points, np.zeros(len(points), np.int16), to_reference[None, :3, 3].astype(np.float32))
    return bev_visibility(fused, grid)


def test_labels_now_and_in_the_future_agree_with_the_boxes(synthetic_dataroot):
    dataroot, version = synthetic_dataroot
    nusc = NuScenes(version=version, dataroot=str(dataroot), verbose=False)
    grid = BevGrid()
    for scene in nusc.scene:
        tokens = [scene["first_sample_token"]]
        while nusc.get("sample", tokens[-1])["next"]:
            tokens.append(nusc.get("sample", tokens[-1])["next"])
        reference = _lidar_to_global(nusc, tokens[0])
        steps = [
            sample_boxes_lidar(nusc, tokens[0], reference),
            *future_agent_boxes(nusc, tokens[1:], reference),
        ]
        visibilities = [_keyframe_visibility(nusc, token, reference, grid) for token in tokens]
        labels = occupancy_labels_over_time(
            [(step.boxes, step.categories) for step in steps], visibilities, grid
        )
        assert labels.shape == (len(tokens), *grid.bev_shape)
        for label, step, visibility in zip(labels, steps, visibilities, strict=True):
            np.testing.assert_array_equal(
                label, occupancy_label(step.boxes, step.categories, visibility, grid)
            )
            for box, category in zip(step.boxes, step.categories, strict=True):
                if np.all(np.abs(box[:2]) < 51.0):
                    cell = grid.metric_to_bev_index(torch.from_numpy(box[None, :2])).numpy()[0]
                    assert label[cell[0], cell[1]] == occupancy_class(category)
            # Observed ground away from objects is free, and free cells are never under a box.
            assert (label == FREE).sum() > 100
            assert not np.any((label == FREE) & boxes_to_bev_mask(step.boxes, grid))
