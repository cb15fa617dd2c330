"""The ego's future trajectory in the current LiDAR frame."""

import numpy as np
import pytest
from nuscenes.nuscenes import NuScenes
from nuscenes.utils.geometry_utils import transform_matrix
from pyquaternion import Quaternion

from datamodules.labels import ego_future_trajectory, future_ego_to_global

# nuScenes LIDAR_TOP mounting: 0.94 m ahead of the rear axle, 1.84 m up, x to the right and y forward.
LIDAR_TO_EGO = transform_matrix([0.943713, 0.0, 1.84023], Quaternion(axis=[0.0, 0.0, 1.0], angle=-np.pi / 2))


def _pose(x: float, y: float, yaw: float) -> np.ndarray:
    return transform_matrix([x, y, 0.0], Quaternion(axis=[0.0, 0.0, 1.0], angle=yaw))


def test_straight_drive_lies_ahead_along_lidar_y():
    lidar_to_global = _pose(500.0, 200.0, 0.3) @ LIDAR_TO_EGO
    ahead = np.stack([_pose(500.0 + d * np.cos(0.3), 200.0 + d * np.sin(0.3), 0.3) for d in (5.0, 10.0)])
    trajectory = ego_future_trajectory(lidar_to_global, ahead)
    # The ego origin sits 0.94 m behind the LiDAR: 5 m ahead of it is 4.06 m along the LiDAR's y.
    np.testing.assert_allclose(trajectory, [[0.0, 4.056287], [0.0, 9.056287]], atol=1e-9)


def test_left_turn_ends_on_the_left():
    lidar_to_global = _pose(0.0, 0.0, 0.0) @ LIDAR_TO_EGO
    # A quarter circle of radius 10 m to the left: ends 10 m ahead and 10 m to the left (LiDAR -x).
    turn = np.stack([_pose(10.0 * np.sin(a), 10.0 * (1 - np.cos(a)), a) for a in (np.pi / 4, np.pi / 2)])
    trajectory = ego_future_trajectory(lidar_to_global, turn)
    np.testing.assert_allclose(trajectory[-1], [-10.0, 10.0 - 0.943713], atol=1e-9)
    assert trajectory[0, 0] < 0.0


def test_dataset_trajectory_matches_the_ego_poses(synthetic_dataroot):
    dataroot, version = synthetic_dataroot
    nusc = NuScenes(version=version, dataroot=str(dataroot), verbose=False)
    for scene in nusc.scene:
        tokens = [scene["first_sample_token"]]
        while nusc.get("sample", tokens[-1])["next"]:
            tokens.append(nusc.get("sample", tokens[-1])["next"])
        sample_data = nusc.get("sample_data", nusc.get("sample", tokens[0])["data"]["LIDAR_TOP"])
        calibration = nusc.get("calibrated_sensor", sample_data["calibrated_sensor_token"])
        pose = nusc.get("ego_pose", sample_data["ego_pose_token"])
        ego_to_global = transform_matrix(pose["translation"], Quaternion(pose["rotation"]))
        lidar_to_ego = transform_matrix(calibration["translation"], Quaternion(calibration["rotation"]))
        lidar_to_global = ego_to_global @ lidar_to_ego

        poses = future_ego_to_global(nusc, tokens[1:])
        assert poses.shape == (len(tokens) - 1, 4, 4)
        for token, matrix in zip(tokens[1:], poses, strict=True):
            lidar = nusc.get("sample_data", nusc.get("sample", token)["data"]["LIDAR_TOP"])
            np.testing.assert_allclose(
                matrix[:3, 3], nusc.get("ego_pose", lidar["ego_pose_token"])["translation"]
            )
        trajectory = ego_future_trajectory(lidar_to_global, poses)
        assert trajectory.shape == (len(tokens) - 1, 2)
        # Back in the global frame, each point is where the ego pose says the ego was.
        back = trajectory @ lidar_to_global[:2, :2].T + lidar_to_global[:2, 3]
        np.testing.assert_allclose(back, poses[:, :2, 3], atol=1e-6)
        # Steps of the trajectory are as long as the ego's moves between keyframes.
        steps = np.diff(np.vstack([np.linalg.inv(lidar_to_ego)[:2, 3], trajectory]), axis=0)
        moves = np.diff(np.vstack([ego_to_global[:2, 3], poses[:, :2, 3]]), axis=0)
        np.testing.assert_allclose(np.linalg.norm(steps, axis=1), np.linalg.norm(moves, axis=1), atol=1e-6)
    assert future_ego_to_global(nusc, []).shape == (0, 4, 4)


@pytest.mark.parametrize("steps", [0, 1, 6])
def test_shapes(steps):
    poses = np.stack([_pose(float(k), 0.0, 0.0) for k in range(steps)]) if steps else np.zeros((0, 4, 4))
    assert ego_future_trajectory(LIDAR_TO_EGO, poses).shape == (steps, 2)
