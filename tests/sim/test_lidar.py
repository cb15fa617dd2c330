"""The simulated LIDAR_TOP: beam layout, frames, surfaces, occlusion, density, degradation, determinism."""

import dataclasses

import numpy as np
import pytest

from bevjepa.sim.calibration import LIDAR_TOP
from bevjepa.sim.lidar import LidarConfig, cast_lidar, lidar_visibility
from bevjepa.sim.types import EgoState, RaycastScene

NOISE_FREE = dataclasses.replace(LidarConfig.tiny(), range_noise_std_m=0.0, intensity_noise_std=0.0)


def _scene(
    boxes: list, box_ids: list, box_rcs: list | None = None, cylinders: list | None = None
) -> RaycastScene:
    boxes_array = np.asarray(boxes, dtype=np.float64).reshape(-1, 7)
    return RaycastScene(
        boxes=boxes_array,
        box_ids=np.asarray(box_ids, dtype=np.int32),
        box_velocities=np.zeros((len(boxes_array), 2)),
        box_rcs=np.asarray(box_rcs if box_rcs is not None else [10.0] * len(boxes_array), dtype=np.float32),
        cylinders=np.asarray(cylinders if cylinders is not None else np.zeros((0, 4)), dtype=np.float64),
    )


def _lidar_pose(x: float = 0.0, y: float = 0.0, yaw: float = 0.0) -> np.ndarray:
    ego = EgoState(
        position=np.array([x, y]), yaw=yaw, speed=0.0, acceleration=0.0, yaw_rate=0.0, steering=0.0
    )
    return ego.ego_to_global() @ LIDAR_TOP.sensor_to_ego()


def _to_global(points: np.ndarray, sensor_to_global: np.ndarray) -> np.ndarray:
    return points[:, :3].astype(np.float64) @ sensor_to_global[:3, :3].T + sensor_to_global[:3, 3]


def _street_scene(rng: np.random.Generator) -> RaycastScene:
    """A 300 m street along x: building rows with gaps on both sides, two lanes of cars, parked cars, poles."""
    boxes, ids, rcs = [], [], []
    for side in (-1.0, 1.0):
        x = -150.0
        while x < 150.0:
            length = rng.uniform(15.0, 35.0)
            height = rng.uniform(8.0, 25.0)
            boxes.append([x + length / 2, side * 22.0, height / 2, length, 20.0, height, 0.0])
            ids.append(-1)
            rcs.append(20.0)
            x += length + rng.uniform(3.0, 10.0)
    for lane_y in (-5.25, -1.75, 1.75, 5.25, -9.0, 9.0):
        for x in np.arange(-140.0, 140.0, rng.uniform(12.0, 20.0)):
            if abs(x) > 4.0 or abs(lane_y) > 2.0:  # keep the ego's own spot free
                boxes.append([x + rng.uniform(-2, 2), lane_y, 0.8, 4.5, 1.9, 1.6, rng.normal(0.0, 0.05)])
                ids.append(len(ids))
                rcs.append(10.0)
    poles = [[x, side * 11.0, 0.15, 6.0] for x in np.arange(-140.0, 140.0, 25.0) for side in (-1.0, 1.0)]
    return _scene(boxes, ids, rcs, poles)


def test_beam_layout_matches_nuscenes_lidar_top() -> None:
    elevations = LidarConfig.nuscenes().elevations_deg()
    assert elevations.shape == (32,)
    assert elevations[0] == pytest.approx(-30.67) and elevations[-1] == pytest.approx(10.67)
    np.testing.assert_allclose(np.diff(elevations), 1.3335, atol=1e-3)


def test_empty_world_returns_ground_only_with_correct_rings() -> None:
    """Upward rays see nothing; every downward ray within range meets the ground at z = 0."""
    pose = _lidar_pose(40.0, 30.0, yaw=0.6)
    points, hit_ids = cast_lidar(_scene([], []), pose, NOISE_FREE, np.random.default_rng(0))
    elevations = np.deg2rad(NOISE_FREE.elevations_deg())
    slant_range = LIDAR_TOP.translation[2] / np.sin(-elevations[elevations < 0])
    expected_rings = np.flatnonzero(elevations < 0)[slant_range <= NOISE_FREE.max_range_m]
    rings = points[:, 4].astype(int)
    assert set(rings.tolist()) == set(expected_rings.tolist())
    assert len(points) == len(expected_rings) * NOISE_FREE.azimuth_steps
    assert np.all(hit_ids == -1)
    np.testing.assert_allclose(_to_global(points, pose)[:, 2], 0.0, atol=1e-4)
    measured_elevation = np.arctan2(points[:, 2], np.hypot(points[:, 0], points[:, 1]))
    np.testing.assert_allclose(measured_elevation, elevations[rings], atol=1e-5)
    assert points.dtype == np.float32 and points.shape[1] == 5 and hit_ids.dtype == np.int32


def test_points_are_in_the_lidar_top_frame() -> None:
    """LIDAR_TOP's y axis points forward: a car ahead of the ego shows up along sensor +y."""
    pose = _lidar_pose(100.0, 50.0, yaw=1.1)
    ahead = np.array([100.0, 50.0]) + 15.0 * np.array([np.cos(1.1), np.sin(1.1)])
    scene = _scene([[*ahead, 0.8, 4.5, 1.9, 1.6, 1.1]], [7])
    points, hit_ids = cast_lidar(scene, pose, NOISE_FREE, np.random.default_rng(0))
    on_car = points[hit_ids == 7]
    assert len(on_car) > 20
    assert np.all(on_car[:, 1] > 10.0)
    assert np.all(np.abs(on_car[:, 0]) < 2.0)


def test_points_lie_on_the_surfaces_they_hit() -> None:
    rng = np.random.default_rng(3)
    scene = _street_scene(rng)
    pose = _lidar_pose(0.0, -1.75)
    points, hit_ids = cast_lidar(scene, pose, NOISE_FREE, np.random.default_rng(0))
    world = _to_global(points, pose)
    on_box = hit_ids >= 0
    rows = {int(box_id): row for row, box_id in enumerate(scene.box_ids) if box_id >= 0}
    box = scene.boxes[[rows[int(i)] for i in hit_ids[on_box]]]
    c, s = np.cos(box[:, 6]), np.sin(box[:, 6])
    rel = world[on_box] - box[:, :3]
    local = np.stack([c * rel[:, 0] + s * rel[:, 1], -s * rel[:, 0] + c * rel[:, 1], rel[:, 2]], axis=1)
    scaled = np.abs(local) / (box[:, 3:6] / 2)
    # On the surface: within the box on every axis and on its boundary along one.
    assert np.all(scaled <= 1.0 + 1e-4)
    np.testing.assert_allclose(scaled.max(axis=1), 1.0, atol=1e-4)
    # Everything else is ground (z = 0), a building, or a pole.
    on_ground = np.abs(world[:, 2]) < 1e-4
    assert on_ground.sum() > 0.3 * len(points)


def test_box_behind_a_building_is_invisible_and_open_box_fully_visible() -> None:
    building = [30.0, 0.0, 10.0, 10.0, 40.0, 20.0, 0.0]
    hidden_car = [45.0, 2.0, 0.8, 4.5, 1.9, 1.6, 0.3]
    open_car = [-20.0, 5.0, 0.8, 4.5, 1.9, 1.6, 0.0]
    half_hidden_car = [0.0, 25.0, 0.8, 4.5, 1.9, 1.6, 0.0]  # its left half behind a wall
    wall = [-1.5, 18.0, 1.5, 3.0, 0.3, 3.0, 0.0]
    scene = _scene([building, hidden_car, open_car, half_hidden_car, wall], [-1, 1, 2, 3, -1])
    pose = _lidar_pose(0.0, 0.0)
    for config in (LidarConfig.nuscenes(), LidarConfig.tiny()):
        _, hit_ids = cast_lidar(scene, pose, config, np.random.default_rng(1))
        assert np.sum(hit_ids == 1) == 0
        assert np.sum(hit_ids == 2) > 15
        visibility = lidar_visibility(scene, pose, config)
        assert visibility.shape == (5,)
        assert visibility[1] == 0.0
        assert visibility[2] == 1.0
        assert 0.2 < visibility[3] < 0.8
        # The same hidden car, alone, would have been seen.
        alone = _scene([hidden_car], [1])
        assert np.sum(cast_lidar(alone, pose, config, np.random.default_rng(1))[1] == 1) > 0
        assert lidar_visibility(alone, pose, config)[0] == 1.0


def test_visibility_is_zero_beyond_range() -> None:
    scene = _scene([[150.0, 0.0, 0.8, 4.5, 1.9, 1.6, 0.0]], [0])
    assert lidar_visibility(scene, _lidar_pose(), LidarConfig.nuscenes())[0] == 0.0


def test_nuscenes_density_in_a_street() -> None:
    scene = _street_scene(np.random.default_rng(0))
    points, hit_ids = cast_lidar(
        scene, _lidar_pose(0.0, -1.75), LidarConfig.nuscenes(), np.random.default_rng(0)
    )
    assert 30_000 <= len(points) <= 35_000
    assert np.all(np.linalg.norm(points[:, :3], axis=1) <= LidarConfig.nuscenes().max_range_m + 0.2)
    assert np.sum(hit_ids >= 0) > 1000


def test_intensity_is_plausible_by_surface() -> None:
    scene = _street_scene(np.random.default_rng(0))
    pose = _lidar_pose(0.0, -1.75)
    points, hit_ids = cast_lidar(scene, pose, LidarConfig.nuscenes(), np.random.default_rng(0))
    intensity = points[:, 3]
    assert intensity.min() >= 0.0 and intensity.max() <= 255.0
    np.testing.assert_array_equal(intensity, np.round(intensity))
    world = _to_global(points, pose)
    ground = (hit_ids == -1) & (np.abs(world[:, 2]) < 0.1)
    near_ground = ground & (np.linalg.norm(points[:, :3], axis=1) < 10.0)
    far_ground = ground & (np.linalg.norm(points[:, :3], axis=1) > 30.0)
    vehicles = hit_ids >= 0
    assert np.median(intensity[vehicles]) > np.median(intensity[ground])
    assert np.median(intensity[near_ground]) > np.median(intensity[far_ground])
    # Median near nuScenes' (about 12); retro-reflective signs on poles give bright returns.
    assert 5.0 < np.median(intensity) < 30.0
    assert intensity.max() > 100.0


def test_points_closer_than_one_metre_are_kept() -> None:
    scene = _scene([[LIDAR_TOP.translation[0], 0.8, 1.5, 0.4, 0.4, 3.0, 0.0]], [0], box_rcs=[-5.0])
    points, hit_ids = cast_lidar(scene, _lidar_pose(), NOISE_FREE, np.random.default_rng(0))
    ranges = np.linalg.norm(points[hit_ids == 0, :3], axis=1)
    assert len(ranges) > 0 and ranges.min() < 1.0


def test_dropout_range_noise_and_rain_clutter() -> None:
    # Inside a closed hall every ray returns.
    walls = _scene(
        [[0.0, 30.0, 10.0, 60.0, 1.0, 20.0, 0.0], [0.0, -30.0, 10.0, 60.0, 1.0, 20.0, 0.0]]
        + [[30.0, 0.0, 10.0, 1.0, 60.0, 20.0, 0.0], [-30.0, 0.0, 10.0, 1.0, 60.0, 20.0, 0.0]],
        [-1] * 4,
    )
    pose = _lidar_pose()
    clean, _ = cast_lidar(walls, pose, NOISE_FREE, np.random.default_rng(5))
    n_rays = NOISE_FREE.beams * NOISE_FREE.azimuth_steps
    assert len(clean) == n_rays

    dropped, _ = cast_lidar(
        walls, pose, dataclasses.replace(NOISE_FREE, dropout=0.3), np.random.default_rng(5)
    )
    assert len(dropped) / n_rays == pytest.approx(0.7, abs=0.02)

    noisy_config = dataclasses.replace(NOISE_FREE, range_noise_std_m=0.05)
    noisy, _ = cast_lidar(walls, pose, noisy_config, np.random.default_rng(5))
    # Same seed, same azimuth phase: the same rays, measured with noise.
    residual = np.linalg.norm(noisy[:, :3], axis=1) - np.linalg.norm(clean[:, :3], axis=1)
    assert np.std(residual) == pytest.approx(0.05, rel=0.05)
    assert abs(np.mean(residual)) < 0.005

    rain_config = dataclasses.replace(NOISE_FREE, rain_clutter_rate=0.1)
    rainy, rainy_ids = cast_lidar(walls, pose, rain_config, np.random.default_rng(5))
    assert len(rainy) == n_rays  # drops replace returns, they do not add rays
    rain_range = np.linalg.norm(rainy[:, :3], axis=1)
    world = _to_global(rainy, pose)
    on_structure = (np.abs(world[:, 2]) < 1e-4) | (np.abs(np.abs(world[:, :2]) - 29.5).min(axis=1) < 1e-4)
    clutter = ~on_structure
    # Drops lie nearer than the ground or wall behind them, so somewhat fewer than 10% of rays show one.
    assert 0.05 < clutter.mean() < 0.1
    assert np.all(rain_range[clutter] >= rain_config.rain_clutter_min_range_m - 1e-5)
    assert np.all(rain_range[clutter] <= rain_config.rain_clutter_max_range_m + 1e-5)
    assert np.all(rainy_ids[clutter] == -1)
    assert np.median(rainy[clutter, 3]) < np.median(rainy[~clutter, 3])


def test_same_seed_same_sweep() -> None:
    scene = _street_scene(np.random.default_rng(0))
    pose = _lidar_pose(3.0, -1.75, yaw=0.2)
    config = dataclasses.replace(LidarConfig.tiny(), dropout=0.1, rain_clutter_rate=0.01)
    first = cast_lidar(scene, pose, config, np.random.default_rng(42))
    second = cast_lidar(scene, pose, config, np.random.default_rng(42))
    other = cast_lidar(scene, pose, config, np.random.default_rng(43))
    np.testing.assert_array_equal(first[0], second[0])
    np.testing.assert_array_equal(first[1], second[1])
    assert first[0].shape != other[0].shape or not np.array_equal(first[0], other[0])


def test_config_rejects_bad_values() -> None:
    with pytest.raises(ValueError):
        LidarConfig(dropout=1.5)
    with pytest.raises(ValueError):
        LidarConfig(max_range_m=0.0)
    with pytest.raises(ValueError):
        LidarConfig(elevation_min_deg=5.0, elevation_max_deg=-5.0)
