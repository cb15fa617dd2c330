"""Futures and actions: relative poses, [dx, dy, dyaw, speed] per step, validity, CAN bus or pose speeds."""

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
from dataroot_views import dataroot_view
from nuscenes.utils.geometry_utils import transform_matrix
from pyquaternion import Quaternion

from datamodules.ego_motion import CanBusSpeeds, future_motion
from datamodules.nuscenes_index import LIDAR_CHANNEL, NuScenesIndex, open_nuscenes
from datamodules.sample_records import KeyframeRecord

STEPS = 6


@pytest.fixture(scope="module")
def nusc(synthetic_dataroot):
    return open_nuscenes(*synthetic_dataroot)


def motions_of(nusc, steps: int = STEPS) -> list[tuple[KeyframeRecord, object]]:
    index = NuScenesIndex(nusc, lidar_sweeps=1, radar=False, future_steps=steps)
    records = index.records_of([sample["token"] for sample in nusc.sample])
    return [
        (record, future_motion(nusc, record, index.records_of(record.future_sample_tokens), steps))
        for record in records
    ]


def devkit_lidar_to_global(nusc, sample_token: str) -> np.ndarray:
    sd = nusc.get("sample_data", nusc.get("sample", sample_token)["data"][LIDAR_CHANNEL])
    pose = nusc.get("ego_pose", sd["ego_pose_token"])
    calib = nusc.get("calibrated_sensor", sd["calibrated_sensor_token"])
    return transform_matrix(pose["translation"], Quaternion(pose["rotation"])) @ transform_matrix(
        calib["translation"], Quaternion(calib["rotation"])
    )


def ego_position(nusc, sample_token: str) -> np.ndarray:
    sd = nusc.get("sample_data", nusc.get("sample", sample_token)["data"][LIDAR_CHANNEL])
    return np.array(nusc.get("ego_pose", sd["ego_pose_token"])["translation"])


def test_poses_validity_and_time_offsets_follow_the_tables(nusc):
    saw_scene_end = False
    for record, motion in motions_of(nusc):
        count = len(record.future_sample_tokens)
        assert motion.valid.tolist() == [step < count for step in range(STEPS)]
        current = devkit_lidar_to_global(nusc, record.sample_token)
        for step, token in enumerate(record.future_sample_tokens):
            expected = np.linalg.inv(current) @ devkit_lidar_to_global(nusc, token)
            np.testing.assert_allclose(motion.poses[step], expected, atol=1e-6)
            seconds = (
                nusc.get("sample", token)["timestamp"] - nusc.get("sample", record.sample_token)["timestamp"]
            ) * 1e-6
            assert motion.time_offsets_s[step] == pytest.approx(seconds, abs=1e-5)
        # Past the end of the scene: flagged and zero, never a repeated pose.
        assert not motion.poses[count:].any() and not motion.actions[count:].any()
        assert not motion.time_offsets_s[count:].any() and not motion.speed_from_can_bus[count:].any()
        saw_scene_end |= count < STEPS
    assert saw_scene_end


def test_steps_default_to_the_futures_given(nusc):
    index = NuScenesIndex(nusc, radar=False)
    record = index.record(nusc.sample[0]["token"])
    futures = index.records_of(record.future_sample_tokens[:2])
    motion = future_motion(nusc, record, futures)
    assert motion.poses.shape == (2, 4, 4) and motion.actions.shape == (2, 4) and motion.valid.all()
    with pytest.raises(ValueError, match="next keyframes in order"):
        future_motion(nusc, record, futures[::-1])


def circle_drive_records(radius: float, speed: float, count: int, start_yaw: float) -> list[KeyframeRecord]:
    """Keyframes every 0.5 s of an ego turning left on a circle, LiDAR mounted as in nuScenes."""
    lidar_to_ego = transform_matrix([0.94, 0.0, 1.84], Quaternion(axis=[0, 0, 1], angle=-np.pi / 2))
    centre = np.array([300.0, -50.0])
    records = []
    for step in range(count):
        yaw = start_yaw + speed / radius * 0.5 * step
        position = centre + radius * np.array([np.sin(yaw), -np.cos(yaw)])
        ego_to_global = transform_matrix([*position, 0.0], Quaternion(axis=[0, 0, 1], angle=yaw))
        records.append(
            KeyframeRecord(
                sample_token=f"keyframe-{step}",
                scene_name="scene-0001",
                location="nowhere",
                timestamp_us=1_000_000 + 500_000 * step,
                lidar_to_global=ego_to_global @ lidar_to_ego,
                lidar_to_ego=lidar_to_ego,
                lidar_sweeps=(),
            )
        )
    return [
        dataclasses.replace(record, future_sample_tokens=tuple(r.sample_token for r in records[i + 1 :]))
        for i, record in enumerate(records)
    ]


def test_actions_of_a_circular_drive_in_the_current_lidar_frame():
    radius, speed = 20.0, 10.0
    records = circle_drive_records(radius, speed, count=5, start_yaw=0.7)
    motion = future_motion(None, records[0], records[1:], num_steps=STEPS)
    step_angle = speed / radius * 0.5
    angles = step_angle * np.arange(5)
    # The ego's path in the current ego frame, then in the current LiDAR frame (x right, y forward).
    path_ego = np.column_stack([radius * np.sin(angles), radius * (1 - np.cos(angles))])
    path_lidar = np.column_stack([-path_ego[:, 1], path_ego[:, 0] - 0.94])
    np.testing.assert_allclose(motion.actions[:4, :2], np.diff(path_lidar, axis=0), atol=1e-5)
    np.testing.assert_allclose(motion.actions[:4, 2], step_angle, atol=1e-6)
    chord_speed = 2 * radius * np.sin(step_angle / 2) / 0.5
    np.testing.assert_allclose(motion.actions[:4, 3], chord_speed, rtol=1e-6)
    assert not motion.speed_from_can_bus.any()
    assert motion.valid.tolist() == [True] * 4 + [False] * 2
    # The future LiDAR origins: the ego path plus the mount's lever arm, turned with the ego.
    lever = 0.94 * np.column_stack([np.cos(angles), np.sin(angles)])
    origins_ego = path_ego + lever
    origins_lidar = np.column_stack([-origins_ego[:, 1], origins_ego[:, 0] - 0.94])
    np.testing.assert_allclose(motion.poses[:4, :2, 3], origins_lidar[1:], atol=1e-6)


def can_bus_variant(synthetic_dataroot, destination: Path, scene_name: str, change) -> Path:
    """A dataroot view whose CAN bus pose file of ``scene_name`` is rewritten by ``change(text) -> text``."""
    dataroot, version = synthetic_dataroot
    view = dataroot_view(dataroot, destination, version, exclude=("can_bus",))
    (view / "can_bus").mkdir()
    for path in (dataroot / "can_bus").iterdir():
        if path.name == f"{scene_name}_pose.json":
            (view / "can_bus" / path.name).write_text(change(path.read_text()))
        else:
            (view / "can_bus" / path.name).symlink_to(path.resolve())
    return view


def halve_velocities(text: str) -> str:
    messages = json.loads(text)
    for message in messages:
        message["vel"] = [0.5 * value for value in message["vel"]]
    return json.dumps(messages)


def test_speeds_come_from_the_can_bus_where_present_else_from_poses(synthetic_dataroot, tmp_path: Path, nusc):
    dataroot, version = synthetic_dataroot
    assert (dataroot / "can_bus").is_dir(), "the synthetic dataroot carries the CAN bus expansion"
    with_can = motions_of(nusc)
    without_can = motions_of(
        open_nuscenes(dataroot_view(dataroot, tmp_path / "no_can", version, ("can_bus",)), version)
    )
    scene = nusc.scene[0]["name"]
    halved = motions_of(
        open_nuscenes(
            can_bus_variant(synthetic_dataroot, tmp_path / "half", scene, halve_velocities), version
        )
    )
    for (record, can), (_, poses), (_, half) in zip(with_can, without_can, halved, strict=True):
        valid = can.valid
        assert can.speed_from_can_bus[valid].all() and not poses.speed_from_can_bus.any()
        # From poses: distance between consecutive ego positions over the time between them.
        chain = [record.sample_token, *record.future_sample_tokens]
        for step in np.flatnonzero(valid):
            distance = np.linalg.norm(
                (ego_position(nusc, chain[step + 1]) - ego_position(nusc, chain[step]))[:2]
            )
            assert poses.actions[step, 3] == pytest.approx(distance / 0.5, rel=1e-3)
        # The simulated CAN bus agrees with the poses; a changed CAN bus file changes only its scene.
        np.testing.assert_allclose(can.actions[valid, 3], poses.actions[valid, 3], rtol=0.1, atol=0.3)
        factor = 0.5 if record.scene_name == scene else 1.0
        np.testing.assert_allclose(half.actions[valid, 3], factor * can.actions[valid, 3], rtol=1e-5)
        np.testing.assert_array_equal(half.actions[:, :3], can.actions[:, :3])


def test_can_bus_outside_its_messages_or_without_data_gives_none(synthetic_dataroot, tmp_path: Path, nusc):
    speeds = CanBusSpeeds(synthetic_dataroot[0])
    scene = nusc.scene[0]
    first = nusc.get("sample", scene["first_sample_token"])["timestamp"]
    assert speeds.mean_speed(scene["name"], first, first + 500_000) is not None
    assert speeds.mean_speed(scene["name"], first + 3_600_000_000, first + 3_600_500_000) is None
    assert speeds.mean_speed("scene-0161", first, first + 500_000) is None  # no CAN bus in nuScenes
    assert speeds.mean_speed("not-a-scene", first, first + 500_000) is None
    assert CanBusSpeeds(tmp_path).mean_speed(scene["name"], first, first + 500_000) is None


def test_malformed_can_bus_file_is_named(synthetic_dataroot, tmp_path: Path, nusc):
    scene = nusc.scene[0]
    view = can_bus_variant(
        synthetic_dataroot, tmp_path / "bad", scene["name"], lambda text: text[: len(text) // 2]
    )
    first = nusc.get("sample", scene["first_sample_token"])["timestamp"]
    with pytest.raises(ValueError, match=f"{scene['name']}_pose.json"):
        CanBusSpeeds(view).mean_speed(scene["name"], first, first + 500_000)


def test_scene_with_no_can_bus_messages_falls_back_to_poses(synthetic_dataroot, tmp_path: Path, nusc):
    scene = nusc.scene[0]
    view = can_bus_variant(synthetic_dataroot, tmp_path / "empty", scene["name"], lambda text: "[]")
    first = nusc.get("sample", scene["first_sample_token"])["timestamp"]
    assert CanBusSpeeds(view).mean_speed(scene["name"], first, first + 500_000) is None
