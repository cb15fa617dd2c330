"""The real nuScenes keyframe through bevjepa's readers and box geometry."""

import shutil

import numpy as np
import pytest
import torch

from bevjepa.geometry.bev_raster import boxes_to_bev_mask
from bevjepa.geometry.boxes import box_corners_bev, points_in_boxes
from bevjepa.grid import BevGrid
from datamodules.lidar_files import SensorFileError, load_lidar_points
from datamodules.real_frame import load_real_frame


def test_real_frame_loads(real_frame):
    assert real_frame.points.shape == (34688, 5)
    assert real_frame.points.dtype == np.float32
    assert len(real_frame.boxes) == len(real_frame.categories) == 69
    assert set(np.unique(real_frame.points[:, 4])) <= set(range(32))


def test_box_convention_reproduces_nuscenes_point_counts(real_frame):
    counts = points_in_boxes(real_frame.points.astype(np.float64), real_frame.boxes).sum(axis=1)
    exact = int((counts == real_frame.num_lidar_pts).sum())
    assert exact >= 61, f"only {exact} of 69 boxes reproduce num_lidar_pts"
    # The rest differ by a few boundary points (a few percent on the largest box).
    difference = np.abs(counts - real_frame.num_lidar_pts)
    assert np.all(difference <= np.maximum(5, 0.05 * real_frame.num_lidar_pts))


def test_box_corners_follow_yaw():
    corners = box_corners_bev(np.array([[1.0, 2.0, 0.0, 4.0, 2.0, 1.5, np.pi / 2]]))
    # Length 4 along +y after a quarter turn: front-left corner at (1 - 1, 2 + 2).
    np.testing.assert_allclose(corners[0, 0], [0.0, 4.0], atol=1e-12)
    np.testing.assert_allclose(corners[0, 2], [2.0, 0.0], atol=1e-12)


def test_box_occupancy_marks_cells_under_boxes(real_frame):
    grid = BevGrid(voxel_size=(0.4, 0.4, 0.2))
    mask = boxes_to_bev_mask(real_frame.boxes, grid)
    assert mask.shape == grid.bev_shape
    inside = np.all(np.abs(real_frame.boxes[:, :2]) < 51.2, axis=1)
    rows_cols = grid.metric_to_bev_index(torch.from_numpy(real_frame.boxes[inside, :2])).numpy()
    assert mask[rows_cols[:, 0], rows_cols[:, 1]].all()
    # Boxes cover a small part of the scene.
    assert 0 < mask.mean() < 0.1


def test_missing_lidar_file_names_the_file(tmp_path):
    with pytest.raises(SensorFileError, match=r"not found: .*missing\.pcd\.bin \(sample abc\)"):
        load_lidar_points(tmp_path / "missing.pcd.bin", context="sample abc")


def test_truncated_lidar_file_says_what_is_wrong(tmp_path, real_frame_dir):
    truncated = tmp_path / "LIDAR_TOP.pcd.bin"
    truncated.write_bytes((real_frame_dir / "LIDAR_TOP.pcd.bin").read_bytes()[:-6])
    with pytest.raises(SensorFileError, match=r"truncated .*not a multiple of 20"):
        load_lidar_points(truncated)


def test_nan_points_are_refused(tmp_path):
    points = np.zeros((4, 5), dtype=np.float32)
    points[2, 1] = np.nan
    path = tmp_path / "nan.pcd.bin"
    points.tofile(path)
    with pytest.raises(SensorFileError, match="1 points with NaN"):
        load_lidar_points(path)


def test_frame_folder_with_truncated_sweep_fails_with_sample_token(tmp_path, real_frame_dir):
    folder = tmp_path / "frame"
    shutil.copytree(real_frame_dir, folder)
    sweep = folder / "LIDAR_TOP.pcd.bin"
    sweep.chmod(0o644)
    sweep.write_bytes(sweep.read_bytes()[:1001])
    with pytest.raises(SensorFileError, match="ca9a282c9e77460f8360f564131a8af5"):
        load_real_frame(folder)
