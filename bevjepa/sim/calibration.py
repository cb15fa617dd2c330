"""Sensor mounting poses of the simulated vehicle, in the ego frame (x forward, y left, z up).

They follow the nuScenes data-collection vehicle: LIDAR_TOP on the roof with its x axis to the right and
its y axis forward, five radars around the bumpers looking out.
"""

from dataclasses import dataclass

import numpy as np
from pyquaternion import Quaternion


@dataclass(frozen=True)
class SensorMount:
    """Where a sensor sits on the ego vehicle.

    Attributes:
        channel: nuScenes channel name, e.g. ``LIDAR_TOP``.
        modality: ``lidar`` or ``radar``.
        translation: (3,) metres in the ego frame.
        rotation: quaternion (w, x, y, z) from sensor to ego frame.
    """

    channel: str
    modality: str
    translation: tuple[float, float, float]
    rotation: tuple[float, float, float, float]

    def sensor_to_ego(self) -> np.ndarray:
        """4x4 homogeneous transform from the sensor frame to the ego frame."""
        matrix = np.eye(4)
        matrix[:3, :3] = Quaternion(self.rotation).rotation_matrix
        matrix[:3, 3] = self.translation
        return matrix


def _yaw_quaternion(yaw_rad: float) -> tuple[float, float, float, float]:
    q = Quaternion(axis=(0.0, 0.0, 1.0), angle=yaw_rad)
    return (q.w, q.x, q.y, q.z)


LIDAR_TOP = SensorMount("LIDAR_TOP", "lidar", (0.943713, 0.0, 1.84023), _yaw_quaternion(-np.pi / 2))
RADARS = (
    SensorMount("RADAR_FRONT", "radar", (3.412, 0.0, 0.5), _yaw_quaternion(0.0)),
    SensorMount("RADAR_FRONT_LEFT", "radar", (2.422, 0.8, 0.78), _yaw_quaternion(np.pi / 2)),
    SensorMount("RADAR_FRONT_RIGHT", "radar", (2.422, -0.8, 0.77), _yaw_quaternion(-np.pi / 2)),
    SensorMount("RADAR_BACK_LEFT", "radar", (-0.562, 0.628, 0.53), _yaw_quaternion(np.pi)),
    SensorMount("RADAR_BACK_RIGHT", "radar", (-0.562, -0.628, 0.53), _yaw_quaternion(np.pi)),
)
SENSOR_MOUNTS = (LIDAR_TOP, *RADARS)
