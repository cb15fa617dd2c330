"""The ego's future trajectory in the current keyframe's LiDAR frame (a planning probe label).

The trajectory is the path of the ego frame's origin (in nuScenes, the middle of the rear axle on the ground,
where ``ego_pose`` is measured) at each future keyframe, as planning benchmarks on nuScenes use it. It is
expressed in the current LiDAR frame like every other tensor of a sample (design section 3).
"""

from collections.abc import Sequence

import numpy as np
from nuscenes.nuscenes import NuScenes
from nuscenes.utils.geometry_utils import transform_matrix
from pyquaternion import Quaternion


def future_ego_to_global(nusc: NuScenes, future_sample_tokens: Sequence[str]) -> np.ndarray:
    """Ego poses at future keyframes, from each keyframe's LIDAR_TOP ``ego_pose`` (the keyframe time).

    Args:
        nusc: the dataset.
        future_sample_tokens: the future keyframes, in order.

    Returns:
        (K, 4, 4) float64 ego-to-global transforms.
    """
    poses = np.zeros((len(future_sample_tokens), 4, 4))
    for step, token in enumerate(future_sample_tokens):
        sample_data = nusc.get("sample_data", nusc.get("sample", token)["data"]["LIDAR_TOP"])
        pose = nusc.get("ego_pose", sample_data["ego_pose_token"])
        poses[step] = transform_matrix(pose["translation"], Quaternion(pose["rotation"]))
    return poses


def ego_future_trajectory(lidar_to_global: np.ndarray, future_ego_poses: np.ndarray) -> np.ndarray:
    """Future ego positions in the current LiDAR frame.

    Args:
        lidar_to_global: (4, 4) pose of the current keyframe's LIDAR_TOP frame.
        future_ego_poses: (K, 4, 4) ego-to-global transforms at the future keyframes.

    Returns:
        (K, 2) float64 ``[x, y]`` of the ego origin at each future keyframe.
    """
    global_to_lidar = np.linalg.inv(lidar_to_global)
    positions = future_ego_poses[:, :3, 3] @ global_to_lidar[:3, :3].T + global_to_lidar[:3, 3]  # (K, 3)
    return positions[:, :2]
