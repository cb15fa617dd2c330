"""The simulated ARS408 radars: Doppler, ego-motion compensation, field of view, devkit filters, determinism."""

import dataclasses
import struct
from pathlib import Path

import numpy as np
import pytest
from nuscenes.utils.data_classes import RadarPointCloud

from bevjepa.sim.calibration import RADARS
from bevjepa.sim.pcd_files import RADAR_FIELDS
from bevjepa.sim.radar import RadarConfig, cast_radar
from bevjepa.sim.types import EgoState, RaycastScene

FIELD = {name: i for i, name in enumerate(RADAR_FIELDS)}
# Noise-free measurements, every target detected, no false alarms: the physics alone.
EXACT = RadarConfig(
    range_noise_std_m=0.0,
    azimuth_noise_std_deg=0.0,
    velocity_noise_std_mps=0.0,
    rcs_noise_std_db=0.0,
    false_alarm_rate=0.0,
    min_detectable_rcs_dbsm=-100.0,
)


def _scene(
    boxes: list, box_ids: list, velocities: list, box_rcs: list, cylinders: list | None = None
) -> RaycastScene:
    return RaycastScene(
        boxes=np.asarray(boxes, dtype=np.float64).reshape(-1, 7),
        box_ids=np.asarray(box_ids, dtype=np.int32),
        box_velocities=np.asarray(velocities, dtype=np.float64).reshape(-1, 2),
        box_rcs=np.asarray(box_rcs, dtype=np.float32),
        cylinders=np.asarray(cylinders if cylinders is not None else np.zeros((0, 4)), dtype=np.float64),
    )


def _car(x: float, y: float, yaw: float = 0.0) -> list[float]:
    return [x, y, 0.8, 4.5, 1.9, 1.6, yaw]


def _radar_pose(x: float = 0.0, y: float = 0.0, yaw: float = 0.0) -> np.ndarray:
    """A radar 0.5 m above the ground at (x, y) looking along ``yaw``."""
    pose = np.eye(4)
    pose[:2, :2] = [[np.cos(yaw), -np.sin(yaw)], [np.sin(yaw), np.cos(yaw)]]
    pose[:3, 3] = [x, y, 0.5]
    return pose


def _returns_of(points: np.ndarray, hit_ids: np.ndarray, box_id: int) -> np.ndarray:
    return points[hit_ids == box_id]


def test_approaching_target_has_negative_radial_velocity() -> None:
    scene = _scene([_car(30.0, 0.0)], [4], [[-10.0, 0.0]], [10.0])
    points, hit_ids = cast_radar(scene, _radar_pose(), np.zeros(2), EXACT, np.random.default_rng(0))
    car = _returns_of(points, hit_ids, 4)
    assert len(car) >= 1
    np.testing.assert_allclose(car[:, FIELD["vx"]], -10.0, atol=0.05)
    np.testing.assert_allclose(car[:, FIELD["vy"]], 0.0, atol=0.7)  # radial along slightly off-axis sights
    np.testing.assert_allclose(car[:, FIELD["vx_comp"]], car[:, FIELD["vx"]])  # a static sensor
    assert np.all(car[:, FIELD["dyn_prop"]] == 2)  # oncoming
    np.testing.assert_allclose(car[:, FIELD["x"]], 27.75, atol=0.01)  # the rear face, 2.25 m before centre
    np.testing.assert_allclose(car[:, FIELD["z"]], 0.0)
    np.testing.assert_allclose(car[:, FIELD["rcs"]], 10.0)


def test_moving_sensor_sees_static_target_moving_but_compensates() -> None:
    scene = _scene([_car(30.0, 0.0)], [4], [[0.0, 0.0]], [10.0])
    points, hit_ids = cast_radar(
        scene, _radar_pose(), np.array([10.0, 0.0, 0.0]), EXACT, np.random.default_rng(0)
    )
    car = _returns_of(points, hit_ids, 4)
    assert len(car) >= 1
    np.testing.assert_allclose(car[:, FIELD["vx"]], -10.0, atol=0.05)
    np.testing.assert_allclose(car[:, FIELD["vx_comp"]], 0.0, atol=1e-5)
    np.testing.assert_allclose(car[:, FIELD["vy_comp"]], 0.0, atol=1e-5)
    assert np.all(car[:, FIELD["dyn_prop"]] == 1)  # stationary


def test_only_the_radial_component_is_measured() -> None:
    # A target 45 degrees to the left moving straight towards the sensor, one crossing in front.
    direction = np.array([1.0, 1.0]) / np.sqrt(2.0)
    scene = _scene(
        [_car(*(25.0 * direction), yaw=np.pi / 4), _car(40.0, 0.0, yaw=np.pi / 2)],
        [1, 2],
        [(-8.0 * direction).tolist(), [0.0, 12.0]],
        [10.0, 10.0],
    )
    points, hit_ids = cast_radar(scene, _radar_pose(), np.zeros(2), EXACT, np.random.default_rng(0))
    diagonal = _returns_of(points, hit_ids, 1)
    assert len(diagonal) >= 1
    speed = np.hypot(diagonal[:, FIELD["vx"]], diagonal[:, FIELD["vy"]])
    np.testing.assert_allclose(speed, 8.0, rtol=0.03)
    # The velocity vector lies along the line of sight, pointing back at the sensor.
    cosine = -(
        diagonal[:, FIELD["vx"]] * diagonal[:, FIELD["x"]]
        + diagonal[:, FIELD["vy"]] * diagonal[:, FIELD["y"]]
    )
    np.testing.assert_allclose(cosine / (speed * np.hypot(diagonal[:, 0], diagonal[:, 1])), 1.0, atol=1e-6)
    crossing = _returns_of(points, hit_ids, 2)
    assert len(crossing) >= 1
    assert np.all(
        np.hypot(crossing[:, FIELD["vx"]], crossing[:, FIELD["vy"]]) < 12.0 * np.sin(np.deg2rad(5.0))
    )
    assert np.all(crossing[:, FIELD["dyn_prop"]] == 6)  # crossing moving


def test_mounted_radar_reports_in_its_own_frame() -> None:
    """RADAR_FRONT_LEFT looks to the ego's left: a car there is straight ahead in the sensor frame."""
    mount = next(m for m in RADARS if m.channel == "RADAR_FRONT_LEFT")
    ego = EgoState(
        position=np.array([50.0, 50.0]), yaw=0.5, speed=5.0, acceleration=0.0, yaw_rate=0.0, steering=0.0
    )
    sensor_to_global = ego.ego_to_global() @ mount.sensor_to_ego()
    left = np.array([-np.sin(0.5), np.cos(0.5)])
    target = sensor_to_global[:2, 3] + 20.0 * left
    scene = _scene([_car(*target, yaw=0.5)], [9], [[0.0, 0.0]], [10.0])
    ego_velocity = 5.0 * np.array([np.cos(0.5), np.sin(0.5)])
    points, hit_ids = cast_radar(scene, sensor_to_global, ego_velocity, EXACT, np.random.default_rng(0))
    car = _returns_of(points, hit_ids, 9)
    assert len(car) >= 1
    assert np.all(car[:, FIELD["x"]] > 18.0) and np.all(np.abs(car[:, FIELD["y"]]) < 3.0)
    # The ego drives across that line of sight: a static car shows (almost) no Doppler.
    assert np.all(np.abs(car[:, FIELD["vx"]]) < 5.0 * np.sin(np.deg2rad(8.0)))


def test_returns_only_inside_the_field_of_view() -> None:
    scene = _scene(
        [
            _car(0.0, 20.0),  # 90 degrees: outside the +-60 degree near beam
            _car(100.0 * np.cos(0.5), 100.0 * np.sin(0.5), yaw=0.5),  # 29 degrees, beyond the 70 m near range
            _car(150.0 * np.cos(0.08), 150.0 * np.sin(0.08), yaw=0.08),  # 4.6 degrees, inside the far beam
            _car(40.0 * np.cos(0.9), 40.0 * np.sin(0.9), yaw=0.9),  # 52 degrees, 40 m: near beam
            _car(-20.0, 0.0),  # behind
        ],
        [1, 2, 3, 4, 5],
        [[0.0, 0.0]] * 5,
        [10.0] * 5,
    )
    points, hit_ids = cast_radar(scene, _radar_pose(), np.zeros(2), EXACT, np.random.default_rng(0))
    assert set(hit_ids.tolist()) == {3, 4}
    azimuth = np.degrees(np.arctan2(points[:, FIELD["y"]], points[:, FIELD["x"]]))
    assert np.all(np.abs(azimuth) <= 60.0)


def test_target_behind_a_building_is_not_seen() -> None:
    scene = _scene(
        [[20.0, 0.0, 5.0, 6.0, 20.0, 10.0, 0.0], _car(35.0, 1.0)],
        [-1, 3],
        [[0.0, 0.0], [5.0, 0.0]],
        [25.0, 10.0],
    )
    points, hit_ids = cast_radar(scene, _radar_pose(), np.zeros(2), EXACT, np.random.default_rng(0))
    assert 3 not in hit_ids
    assert len(points) >= 1  # the building itself answers
    assert np.all(points[:, FIELD["x"]] < 17.5)


def _street_scene(rng: np.random.Generator) -> RaycastScene:
    boxes, ids, velocities, rcs = [], [], [], []
    for side in (-1.0, 1.0):
        for x in np.arange(-150.0, 150.0, 30.0):
            boxes.append([x + 12.5, side * 22.0, 6.0, 25.0, 20.0, 12.0, 0.0])
            ids.append(-1)
            velocities.append([0.0, 0.0])
            rcs.append(20.0)
    for lane_y, speed in ((-1.75, 8.0), (1.75, -8.0), (-9.0, 0.0), (9.0, 0.0)):
        for x in np.arange(-140.0, 140.0, 15.0) + rng.uniform(0.0, 5.0):
            if abs(x) > 6.0 or lane_y != -1.75:
                boxes.append(_car(x, lane_y, 0.0 if speed >= 0 else np.pi))
                ids.append(len(ids))
                velocities.append([speed, 0.0])
                rcs.append(float(rng.uniform(5.0, 15.0)))
    poles = [[x, side * 11.0, 0.15, 6.0] for x in np.arange(-140.0, 140.0, 25.0) for side in (-1.0, 1.0)]
    return _scene(boxes, ids, velocities, rcs, poles)


def _write_nuscenes_radar_pcd(points: np.ndarray, path: Path) -> None:
    """The binary .pcd layout of nuScenes radar files (the devkit's RadarPointCloud docstring)."""
    sizes = "4 4 4 1 2 4 4 4 4 4 1 1 1 1 1 1 1 1".split()
    types = "F F F I I F F F F F I I I I I I I I".split()
    header = (
        "# .PCD v0.7 - Point Cloud Data file format\nVERSION 0.7\n"
        f"FIELDS {' '.join(RADAR_FIELDS)}\nSIZE {' '.join(sizes)}\nTYPE {' '.join(types)}\n"
        f"COUNT {' '.join(['1'] * 18)}\nWIDTH {len(points)}\nHEIGHT 1\nVIEWPOINT 0 0 0 1 0 0 0\n"
        f"POINTS {len(points)}\nDATA binary\n"
    )
    codes = "".join(
        {("F", "4"): "f", ("I", "1"): "b", ("I", "2"): "h"}[(t, s)] for t, s in zip(types, sizes, strict=True)
    )
    body = b"".join(
        struct.pack("<" + codes, *[v if c == "f" else int(v) for v, c in zip(row, codes, strict=True)])
        for row in points
    )
    # The devkit asserts that each field ends strictly before the end of the data.
    path.write_bytes(header.encode() + body + b"\n")


def test_returns_pass_the_devkit_default_filters(tmp_path: Path) -> None:
    scene = _street_scene(np.random.default_rng(0))
    ego = EgoState(
        position=np.array([0.0, -1.75]), yaw=0.0, speed=8.0, acceleration=0.0, yaw_rate=0.0, steering=0.0
    )
    counts, false_alarms = {}, 0
    for mount in RADARS:
        sensor_to_global = ego.ego_to_global() @ mount.sensor_to_ego()
        points, hit_ids = cast_radar(
            scene, sensor_to_global, np.array([8.0, 0.0]), RadarConfig(), np.random.default_rng(1)
        )
        counts[mount.channel] = len(points)
        assert points.dtype == np.float32 and points.shape[1] == 18 and hit_ids.dtype == np.int32
        np.testing.assert_array_equal(points[:, FIELD["id"]], np.arange(len(points)))
        for name in ("x_rms", "y_rms", "vx_rms", "vy_rms"):
            assert np.all((points[:, FIELD[name]] >= 0) & (points[:, FIELD[name]] <= 30))
        assert np.all(np.diff(np.hypot(points[:, 0], points[:, 1])) >= 0.0)  # nearest first
        path = tmp_path / f"{mount.channel}.pcd"
        _write_nuscenes_radar_pcd(points, path)
        RadarPointCloud.default_filters()
        loaded = RadarPointCloud.from_file(str(path))
        assert loaded.points.shape == (18, len(points))
        np.testing.assert_allclose(loaded.points.T, points, rtol=1e-6)
        assert np.any(hit_ids >= 0)
        false_alarms += int(np.sum(points[:, FIELD["dyn_prop"]] == 3))
    # nuScenes radars report a handful to about a hundred clusters per sweep.
    assert all(5 <= count <= 125 for count in counts.values()), counts
    assert sum(counts.values()) > 60
    assert 0 < false_alarms < 0.3 * sum(counts.values())


def test_moving_cars_in_traffic_have_consistent_velocities() -> None:
    scene = _street_scene(np.random.default_rng(0))
    ego_velocity = np.array([8.0, 0.0])
    mount = next(m for m in RADARS if m.channel == "RADAR_FRONT")
    ego = EgoState(
        position=np.array([0.0, -1.75]), yaw=0.0, speed=8.0, acceleration=0.0, yaw_rate=0.0, steering=0.0
    )
    config = dataclasses.replace(RadarConfig(), false_alarm_rate=0.0)
    points, hit_ids = cast_radar(
        scene, ego.ego_to_global() @ mount.sensor_to_ego(), ego_velocity, config, np.random.default_rng(2)
    )
    row_of = {int(box_id): row for row, box_id in enumerate(scene.box_ids)}
    targets = hit_ids >= 0
    assert targets.sum() >= 3
    true_velocity = scene.box_velocities[[row_of[int(i)] for i in hit_ids[targets]]]
    sight = points[targets, :2] / np.linalg.norm(points[targets, :2], axis=1, keepdims=True)
    # RADAR_FRONT faces the ego's heading (global +x here), so sensor and global axes coincide.
    radial_true = np.sum(true_velocity * sight, axis=1)
    radial_compensated = np.sum(points[targets][:, [FIELD["vx_comp"], FIELD["vy_comp"]]] * sight, axis=1)
    radial_raw = np.sum(points[targets][:, [FIELD["vx"], FIELD["vy"]]] * sight, axis=1)
    np.testing.assert_allclose(radial_compensated, radial_true, atol=0.6)
    np.testing.assert_allclose(radial_raw, radial_true - sight @ ego_velocity, atol=0.6)


def test_same_seed_same_sweep() -> None:
    scene = _street_scene(np.random.default_rng(0))
    pose = _radar_pose(0.0, -1.75)
    first = cast_radar(scene, pose, np.array([8.0, 0.0]), RadarConfig(), np.random.default_rng(7))
    second = cast_radar(scene, pose, np.array([8.0, 0.0]), RadarConfig(), np.random.default_rng(7))
    other = cast_radar(scene, pose, np.array([8.0, 0.0]), RadarConfig(), np.random.default_rng(8))
    np.testing.assert_array_equal(first[0], second[0])
    np.testing.assert_array_equal(first[1], second[1])
    assert first[0].shape != other[0].shape or not np.array_equal(first[0], other[0])


def test_weak_far_targets_are_missed_more_often() -> None:
    config = dataclasses.replace(RadarConfig(), false_alarm_rate=0.0)
    pedestrian = [0.0, 0.0, 0.9, 0.6, 0.6, 1.8, 0.0]
    detections = {}
    for distance in (20.0, 200.0):
        scene = _scene([[distance, 0.0, *pedestrian[2:]]], [1], [[0.0, 0.0]], [-5.0])
        detections[distance] = sum(
            np.any(cast_radar(scene, _radar_pose(), np.zeros(2), config, np.random.default_rng(seed))[1] == 1)
            for seed in range(40)
        )
    assert detections[20.0] >= 38
    assert detections[200.0] <= 5


def test_config_rejects_bad_field_of_view() -> None:
    with pytest.raises(ValueError):
        RadarConfig(far_half_fov_deg=70.0)
    with pytest.raises(ValueError):
        RadarConfig(near_range_m=300.0)
