"""Ego status now: velocity and yaw rate from ego poses at and before the keyframe, CAN bus speed."""

from pathlib import Path

import numpy as np
import pytest
from dataroot_views import dataroot_view
from nuscenes.utils.geometry_utils import transform_matrix
from pyquaternion import Quaternion
from test_ego_motion import can_bus_variant, halve_velocities

from datamodules.ego_motion import CanBusSpeeds
from datamodules.labels.ego_status import ego_status, ego_status_from_poses
from datamodules.nuscenes_index import NuScenesIndex, open_nuscenes

# nuScenes mounts LIDAR_TOP turned by -90 degrees about z: LiDAR x points right, y forward.
LIDAR_TO_EGO = transform_matrix([0.94, 0.0, 1.84], Quaternion(axis=[0, 0, 1], angle=-np.pi / 2))


def statuses(nusc, can_bus: CanBusSpeeds | None) -> list[tuple]:
    index = NuScenesIndex(nusc, lidar_sweeps=1, radar=False, future_steps=0)
    records = index.records_of([sample["token"] for sample in nusc.sample])
    return [(record, ego_status(nusc, record, can_bus)) for record in records]


def ego_pose(nusc, sample_data: dict) -> np.ndarray:
    pose = nusc.get("ego_pose", sample_data["ego_pose_token"])
    return transform_matrix(pose["translation"], Quaternion(pose["rotation"]))


def central_difference_velocity(nusc, record) -> np.ndarray | None:
    """Velocity of the ego origin in the current LiDAR frame from the sweeps just before and after."""
    keyframe = nusc.get("sample_data", record.lidar_sweeps[0].token)
    if not keyframe["prev"] or not keyframe["next"]:
        return None
    before, after = nusc.get("sample_data", keyframe["prev"]), nusc.get("sample_data", keyframe["next"])
    chord = ego_pose(nusc, after)[:3, 3] - ego_pose(nusc, before)[:3, 3]
    velocity_global = chord / ((after["timestamp"] - before["timestamp"]) * 1e-6)
    return (np.linalg.inv(record.lidar_to_global)[:3, :3] @ velocity_global)[:2]


@pytest.mark.parametrize("yaw_rate", [0.0, 0.5, -0.8])
def test_constant_turn_gives_the_exact_velocity_now(yaw_rate: float):
    speed, now_yaw = 8.0, 2.1
    centre = np.array([120.0, -40.0])

    def pose_at(time_s: float) -> np.ndarray:
        yaw = now_yaw + yaw_rate * time_s
        if yaw_rate == 0.0:
            position = centre + speed * time_s * np.array([np.cos(now_yaw), np.sin(now_yaw)])
        else:
            radius = speed / yaw_rate
            position = centre + radius * np.array([np.sin(yaw), -np.cos(yaw)])
        return transform_matrix([*position, 3.0], Quaternion(axis=[0, 0, 1], angle=yaw))

    for times in ([0.0, -0.1], [0.0, -0.1, -0.25]):
        poses = np.stack([pose_at(time) for time in times])
        status = ego_status_from_poses(poses, np.array(times), LIDAR_TO_EGO)
        # Driving forward along the ego x axis is +y in the LiDAR frame.
        np.testing.assert_allclose(status, [0.0, speed, yaw_rate], atol=1e-9)


def test_constant_acceleration_is_extrapolated_to_now():
    speed_now, acceleration, yaw = 6.0, -3.0, 0.4
    heading = np.array([np.cos(yaw), np.sin(yaw)])
    times = np.array([0.0, -0.1, -0.2])
    poses = np.stack(
        [
            transform_matrix(
                [*(speed_now * t + 0.5 * acceleration * t**2) * heading, 0.0],
                Quaternion(axis=[0, 0, 1], angle=yaw),
            )
            for t in times
        ]
    )
    np.testing.assert_allclose(
        ego_status_from_poses(poses, times, LIDAR_TO_EGO), [0, speed_now, 0], atol=1e-9
    )
    # One chord alone lags by half its length of acceleration.
    one_chord = ego_status_from_poses(poses[:2], times[:2], LIDAR_TO_EGO)
    assert one_chord[1] == pytest.approx(speed_now - acceleration * 0.05)
    assert not ego_status_from_poses(poses[:1], times[:1], LIDAR_TO_EGO).any()


def test_ego_status_follows_the_synthetic_ego_motion(synthetic_dataroot):
    nusc = open_nuscenes(*synthetic_dataroot)
    compared = 0
    for record, status in statuses(nusc, can_bus=None):
        assert status.dtype == np.float32 and status.shape == (4,)
        assert status[3] == pytest.approx(np.hypot(status[0], status[1]), abs=1e-5)
        keyframe = nusc.get("sample_data", record.lidar_sweeps[0].token)
        if not keyframe["prev"]:  # scene start: nothing before the keyframe tells the motion
            assert not status.any()
            continue
        expected = central_difference_velocity(nusc, record)
        if expected is not None:
            np.testing.assert_allclose(status[:2], expected, atol=0.05)
            compared += 1
    assert compared > 10


def shift_ego_poses(nusc, first_sample_data_token: str, direction: str) -> None:
    """Move the ego poses of a sample_data record and every sweep in ``direction`` (prev/next) from it."""
    token = first_sample_data_token
    while token:
        sample_data = nusc.get("sample_data", token)
        pose = nusc.get("ego_pose", sample_data["ego_pose_token"])
        pose["translation"] = list(np.asarray(pose["translation"]) + [50.0, -30.0, 0.0])
        token = sample_data[direction]


def test_only_poses_at_and_before_the_keyframe_are_read(synthetic_dataroot):
    nusc = open_nuscenes(*synthetic_dataroot)
    index = NuScenesIndex(nusc, lidar_sweeps=1, radar=False, future_steps=0)
    scene = nusc.scene[0]
    middle = nusc.get("sample", nusc.get("sample", scene["first_sample_token"])["next"])
    record = index.record(middle["token"])
    keyframe = nusc.get("sample_data", record.lidar_sweeps[0].token)
    assert keyframe["prev"] and keyframe["next"]
    status = ego_status(nusc, record, can_bus=None)
    assert np.hypot(status[0], status[1]) > 0.5, "the synthetic ego moves"
    # Later sweeps moved far away: nothing changes.
    shift_ego_poses(nusc, keyframe["next"], "next")
    np.testing.assert_array_equal(ego_status(nusc, record, can_bus=None), status)
    # Earlier sweeps moved: the velocity changes (the check above could fail).
    shift_ego_poses(nusc, keyframe["prev"], "prev")
    assert not np.allclose(ego_status(nusc, record, can_bus=None)[:2], status[:2], atol=1.0)


def test_speed_comes_from_the_latest_can_bus_message(synthetic_dataroot, tmp_path: Path):
    dataroot, version = synthetic_dataroot
    nusc = open_nuscenes(dataroot, version)
    scene = nusc.scene[0]["name"]
    with_can = statuses(nusc, CanBusSpeeds(dataroot))
    halved_root = can_bus_variant(synthetic_dataroot, tmp_path / "half", scene, halve_velocities)
    halved = statuses(open_nuscenes(halved_root, version), CanBusSpeeds(halved_root))
    without_root = dataroot_view(dataroot, tmp_path / "no_can", version, ("can_bus",))
    without = statuses(open_nuscenes(without_root, version), CanBusSpeeds(without_root))
    for (record, can), (_, half), (_, poses) in zip(with_can, halved, without, strict=True):
        np.testing.assert_array_equal(can[:3], poses[:3])
        np.testing.assert_array_equal(half[:3], can[:3])
        factor = 0.5 if record.scene_name == scene else 1.0
        assert half[3] == pytest.approx(factor * can[3], rel=1e-5, abs=1e-6)
        if poses[:2].any():  # the simulated CAN bus agrees with the pose velocity
            assert can[3] == pytest.approx(poses[3], rel=0.1, abs=0.3)


def test_can_bus_latest_speed_never_reads_a_later_message(synthetic_dataroot):
    speeds = CanBusSpeeds(synthetic_dataroot[0])
    scene = open_nuscenes(*synthetic_dataroot).scene[0]["name"]
    times, values = speeds._scene_speeds(scene)
    middle = len(times) // 2
    assert speeds.latest_speed(scene, int(times[middle])) == values[middle]
    assert speeds.latest_speed(scene, int(times[middle + 1]) - 1) == values[middle]
    assert speeds.latest_speed(scene, int(times[0]) - 1) is None
    assert speeds.latest_speed("scene-0161", int(times[middle])) is None
