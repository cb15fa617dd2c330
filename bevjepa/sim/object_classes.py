"""The kinds of object the town holds, with nuScenes category names, realistic sizes and radar cross-sections.

Size ranges bracket the mean box sizes of the nuScenes training annotations of each category; radar
cross-sections are typical 77 GHz values (dBsm): metal vehicle bodies strong, people and cones weak.
"""

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ObjectClass:
    """A kind of object.

    Attributes:
        category: nuScenes category name.
        length_m, width_m, height_m: ranges of the box size (length along the heading).
        rcs_dbsm: radar cross-section.
    """

    category: str
    length_m: tuple[float, float]
    width_m: tuple[float, float]
    height_m: tuple[float, float]
    rcs_dbsm: float

    def sample_size(self, rng: np.random.Generator) -> np.ndarray:
        """(3,) ``[length, width, height]`` drawn uniformly from the class's ranges."""
        return np.array(
            [rng.uniform(*self.length_m), rng.uniform(*self.width_m), rng.uniform(*self.height_m)]
        )


CAR = ObjectClass("vehicle.car", (4.2, 4.9), (1.75, 2.0), (1.45, 1.9), 10.0)
TRUCK = ObjectClass("vehicle.truck", (6.0, 8.0), (2.3, 2.6), (2.6, 3.4), 18.0)
BUS = ObjectClass("vehicle.bus.rigid", (10.5, 12.0), (2.6, 2.9), (3.0, 3.6), 22.0)
MOTORCYCLE = ObjectClass("vehicle.motorcycle", (1.9, 2.3), (0.7, 0.9), (1.4, 1.7), 5.0)
# A bicycle's box includes its rider while ridden, as in nuScenes.
RIDDEN_BICYCLE = ObjectClass("vehicle.bicycle", (1.6, 1.85), (0.55, 0.75), (1.6, 1.85), 0.0)
PARKED_BICYCLE = ObjectClass("vehicle.bicycle", (1.6, 1.85), (0.5, 0.65), (1.0, 1.2), -2.0)
ADULT = ObjectClass("human.pedestrian.adult", (0.6, 0.85), (0.55, 0.75), (1.6, 1.9), -5.0)
CHILD = ObjectClass("human.pedestrian.child", (0.4, 0.55), (0.35, 0.5), (1.0, 1.35), -8.0)
BARRIER = ObjectClass("movable_object.barrier", (0.4, 0.6), (2.3, 2.6), (0.9, 1.1), 5.0)
TRAFFIC_CONE = ObjectClass("movable_object.trafficcone", (0.35, 0.45), (0.35, 0.45), (0.7, 1.1), -10.0)

# Unannotated structure (instance id -1 in a RaycastScene).
BUILDING_RCS_DBSM = 25.0
WALL_RCS_DBSM = 15.0
