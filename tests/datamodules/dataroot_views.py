"""Variants of a dataroot for tests: folders of symbolic links and in-memory table changes, so that the shared
dataroot is never modified."""

from pathlib import Path

import numpy as np
from pyquaternion import Quaternion


def dataroot_view(
    source: Path,
    destination: Path,
    version: str,
    exclude: tuple[str, ...] = (),
    version_as: str | None = None,
) -> Path:
    """A dataroot whose entries link to those of ``source``.

    Args:
        source: the dataroot to mirror.
        destination: the new dataroot folder (created).
        version: the table folder of ``source``.
        exclude: top-level entries of ``source`` left out (e.g. ``can_bus``, ``bevjepa_splits.json``).
        version_as: name under which the table folder appears (default: unchanged).

    Returns:
        ``destination``.
    """
    destination.mkdir(parents=True)
    for entry in source.iterdir():
        if entry.name in exclude:
            continue
        name = (version_as or version) if entry.name == version else entry.name
        (destination / name).symlink_to(entry.resolve(), target_is_directory=entry.is_dir())
    return destination


def randomise_poses(nusc, rng: np.random.Generator, max_tilt_rad: float = 0.1) -> None:
    """Give every ego pose and sensor calibration of a loaded dataset an arbitrary 3-D rotation and offset.

    Changes the tables in memory only (what ``nusc.get`` returns), so the devkit and bevjepa both see the
    same, now fully three-dimensional, transforms.

    Args:
        nusc: a NuScenes instance of the test's own.
        rng: the random generator.
        max_tilt_rad: largest roll and pitch; yaw is drawn over the full circle for ego poses.
    """
    # Far from the map origin like real logs, but sweeps stay within metres of each other so that fused
    # points stay near the sensor, where float32 keeps 1e-5 m.
    shared_offset = rng.uniform(-1500.0, 1500.0, 3)
    for pose in nusc.ego_pose:
        tilt = Quaternion(axis=[*rng.normal(size=2), 0.0], angle=rng.uniform(-max_tilt_rad, max_tilt_rad))
        yaw = Quaternion(axis=[0.0, 0.0, 1.0], angle=rng.uniform(-np.pi, np.pi))
        pose["rotation"] = list((yaw * tilt).elements)
        pose["translation"] = list(
            np.asarray(pose["translation"]) + shared_offset + rng.uniform(-2.0, 2.0, 3)
        )
    for calibration in nusc.calibrated_sensor:
        tilt = Quaternion(axis=rng.normal(size=3), angle=rng.uniform(-max_tilt_rad, max_tilt_rad))
        calibration["rotation"] = list((Quaternion(calibration["rotation"]) * tilt).elements)
        calibration["translation"] = list(np.asarray(calibration["translation"]) + rng.uniform(-0.2, 0.2, 3))
