"""Rigid transforms of nuScenes records: quaternions to matrices, rigid inverses, and the per-sweep transforms
from a sensor frame into a keyframe's reference frame, the only geometry the fusion loops need."""

from collections.abc import Sequence

import numba
import numpy as np

from datamodules.lidar_files import SensorFileError
from datamodules.sample_records import SweepRecord


def quaternions_to_rotations(quaternions: np.ndarray) -> np.ndarray:
    """Rotation matrices of nuScenes quaternions, normalised first as pyquaternion does.

    Args:
        quaternions: (M, 4) ``[w, x, y, z]``.

    Returns:
        (M, 3, 3) float64 rotation matrices; NaN for a zero quaternion.
    """
    q = np.asarray(quaternions, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):  # a zero quaternion gives NaN, refused when loading
        q = q / np.linalg.norm(q, axis=1, keepdims=True)  # (M, 4)
    w, x, y, z = q.T
    rotations = np.empty((len(q), 3, 3))
    rotations[:, 0, 0] = w * w + x * x - y * y - z * z
    rotations[:, 0, 1] = 2.0 * (x * y - w * z)
    rotations[:, 0, 2] = 2.0 * (x * z + w * y)
    rotations[:, 1, 0] = 2.0 * (x * y + w * z)
    rotations[:, 1, 1] = w * w - x * x + y * y - z * z
    rotations[:, 1, 2] = 2.0 * (y * z - w * x)
    rotations[:, 2, 0] = 2.0 * (x * z - w * y)
    rotations[:, 2, 1] = 2.0 * (y * z + w * x)
    rotations[:, 2, 2] = w * w - x * x - y * y + z * z
    return rotations


def rigid_transforms(quaternions: np.ndarray, translations: np.ndarray) -> np.ndarray:
    """Homogeneous transforms from nuScenes rotation and translation records.

    Args:
        quaternions: (M, 4) ``[w, x, y, z]``.
        translations: (M, 3) metres.

    Returns:
        (M, 4, 4) float64, the devkit's ``transform_matrix(translation, Quaternion(rotation))`` of each row.
    """
    transforms = np.zeros((len(quaternions), 4, 4))
    transforms[:, :3, :3] = quaternions_to_rotations(quaternions)
    transforms[:, :3, 3] = np.asarray(translations, dtype=np.float64)
    transforms[:, 3, 3] = 1.0
    return transforms


def invert_rigid(transforms: np.ndarray) -> np.ndarray:
    """Inverse of rigid transforms (rotation transposed), as the devkit's ``transform_matrix(inverse=True)``.

    Args:
        transforms: (..., 4, 4) rigid transforms.

    Returns:
        (..., 4, 4) float64 inverses.
    """
    rotation_t = np.swapaxes(transforms[..., :3, :3], -1, -2)  # (..., 3, 3)
    inverse = np.zeros(transforms.shape, dtype=np.float64)
    inverse[..., :3, :3] = rotation_t
    inverse[..., :3, 3] = -np.einsum("...ij,...j->...i", rotation_t, transforms[..., :3, 3])
    inverse[..., 3, 3] = 1.0
    return inverse


@numba.njit(cache=True)
def _compose_to_reference(reference_to_global, sensor_to_global):
    """(S, 4, 4) inverse(reference_to_global) @ sensor_to_global[s], the inverse taken as a rigid one."""
    inverse = np.zeros((4, 4))
    for i in range(3):
        for j in range(3):
            inverse[i, j] = reference_to_global[j, i]
        inverse[i, 3] = -(
            reference_to_global[0, i] * reference_to_global[0, 3]
            + reference_to_global[1, i] * reference_to_global[1, 3]
            + reference_to_global[2, i] * reference_to_global[2, 3]
        )
    inverse[3, 3] = 1.0
    transforms = np.empty_like(sensor_to_global)
    for sweep in range(sensor_to_global.shape[0]):
        for i in range(4):
            for j in range(4):
                total = 0.0
                for k in range(4):
                    total += inverse[i, k] * sensor_to_global[sweep, k, j]
                transforms[sweep, i, j] = total
    return transforms


def sweeps_to_reference(
    reference_to_global: np.ndarray, sweeps: Sequence[SweepRecord], context: str = ""
) -> np.ndarray:
    """Transforms taking each sweep's sensor frame into a reference frame (sensor -> ego(t_sweep) -> global
    -> ego(t_ref) -> reference).

    Args:
        reference_to_global: (4, 4) e.g. a keyframe's ``lidar_to_global``.
        sweeps: the sweeps.
        context: names what is being loaded in error messages (e.g. ``sample <token>``).

    Returns:
        (S, 4, 4) float64.

    Raises:
        SensorFileError: a pose or calibration is not a finite transform (e.g. a zero quaternion in the
            tables); the message names the sweep file.
    """
    sensor_to_global = np.array([sweep.sensor_to_global for sweep in sweeps], dtype=np.float64).reshape(
        -1, 4, 4
    )
    # Compiled: with ten 4x4 products per keyframe, numpy's per-call overhead would cost more than the math.
    transforms = _compose_to_reference(np.asarray(reference_to_global, dtype=np.float64), sensor_to_global)
    if not np.isfinite(transforms.sum()):  # one reduction; which sweep is looked up only on failure
        broken = sweeps[int(np.argmin(np.isfinite(transforms).all(axis=(1, 2))))]
        raise SensorFileError(
            f"the ego pose or calibration of {broken.path} ({context}) is not a finite rigid transform: "
            "check its ego_pose and calibrated_sensor records (and the keyframe's)"
        )
    return transforms
