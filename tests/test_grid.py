import pytest
import torch

from bevjepa.grid import BevGrid


def test_nuscenes_default_shapes():
    grid = BevGrid()
    assert grid.voxel_grid_shape == (40, 1024, 1024)
    assert grid.sparse_shape == (41, 1024, 1024)
    assert grid.bev_shape == (128, 128)
    assert grid.bev_cell_size == pytest.approx((0.8, 0.8))


def test_cell_centres_and_index_round_trip():
    grid = BevGrid(point_cloud_range=(-10, -20, -3, 30, 20, 1), voxel_size=(0.5, 0.25, 0.5))
    height, width = grid.bev_shape
    assert (height, width) == (20, 10)
    centres = grid.bev_cell_centers()
    assert centres.shape == (height, width, 2)
    assert centres[0, 0].tolist() == pytest.approx([-8.0, -19.0])
    index = grid.metric_to_bev_index(centres.reshape(-1, 2))
    rows, cols = torch.meshgrid(torch.arange(height), torch.arange(width), indexing="ij")
    assert torch.equal(index, torch.stack([rows.reshape(-1), cols.reshape(-1)], dim=1))
    assert torch.allclose(grid.bev_index_to_metric(index), centres.reshape(-1, 2))


def test_outside_points_get_minus_one():
    grid = BevGrid()
    index = grid.metric_to_bev_index(torch.tensor([[51.2, 0.0], [-51.3, 0.0], [0.0, 0.0]]))
    assert index[0].tolist() == [-1, -1]
    assert index[1].tolist() == [-1, -1]
    assert index[2].tolist() == [64, 64]


def test_contains_excludes_upper_bound():
    grid = BevGrid()
    points = torch.tensor([[0.0, 0.0, 0.0], [51.2, 0.0, 0.0], [0.0, 0.0, -5.0], [0.0, 0.0, 3.0]])
    assert grid.contains(points).tolist() == [True, False, True, False]


@pytest.mark.parametrize(
    ("point_cloud_range", "voxel_size"),
    [
        ((0, 0, 0, 10, 10, 1), (0.3, 0.3, 0.5)),
        ((0, 0, 0, -1, 10, 1), (0.1, 0.1, 0.1)),
        ((0, 0, 0, 12, 10, 1), (1, 1, 1)),
    ],
)
def test_inconsistent_grids_are_refused(point_cloud_range, voxel_size):
    with pytest.raises(ValueError, match="BevGrid"):
        BevGrid(point_cloud_range=point_cloud_range, voxel_size=voxel_size)
