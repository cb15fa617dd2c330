"""Named dataset presets of the synthetic world: how many towns and scenes, how long, which sensors.

- ``tiny``: two short scenes (one train, one val) with a coarse LiDAR; generates in seconds, for tests.
- ``demo``: what ``make demo`` uses: four 10 s scenes in each of four towns, the fourth town held out for
  val, with a LiDAR of half the nuScenes azimuth resolution; generates in a few minutes or less on two cores.
- ``nuscenes``: nuScenes density (32 x 1085 LiDAR firings, about 30-35k points per sweep) and 20 s scenes,
  for benchmarks.
"""

import dataclasses
from dataclasses import dataclass

from bevjepa.sim.lidar import LidarConfig
from bevjepa.sim.roads import RoadNetworkConfig
from bevjepa.sim.simulator_config import SimulatorConfig
from bevjepa.sim.town import TownConfig
from bevjepa.sim.types import LOCATIONS


@dataclass(frozen=True)
class Preset:
    """A dataset recipe.

    Attributes:
        name: preset name; the dataset version is ``v1.0-<name>``.
        simulator: world and sensor settings (its ``location`` is replaced by each town's).
        towns: number of towns, one per location of ``LOCATIONS`` in that order (at most 4).
        val_towns: the last this many towns hold only validation scenes (a held-out town).
        scenes_per_town: scenes recorded in each town.
        scene_duration_s: length of a scene (nuScenes: 20 s).
        annotation_range_m: objects are annotated while within this distance of the ego.
    """

    name: str
    simulator: SimulatorConfig
    towns: int
    val_towns: int
    scenes_per_town: int
    scene_duration_s: float
    annotation_range_m: float = 60.0

    def __post_init__(self) -> None:
        if not 1 <= self.towns <= len(LOCATIONS):
            raise ValueError(
                f"a dataset holds 1 to {len(LOCATIONS)} towns (one per location), got {self.towns}"
            )
        if not 0 <= self.val_towns < self.towns:
            raise ValueError(
                f"val_towns must leave at least one training town, got {self.val_towns}/{self.towns}"
            )
        if self.scenes_per_town < 1 or self.scene_duration_s < 0.5:
            raise ValueError("need at least one scene per town and one keyframe interval per scene")

    @property
    def version(self) -> str:
        """The nuScenes version (table folder) name."""
        return f"v1.0-{self.name}"

    def locations(self) -> tuple[str, ...]:
        """Locations of the towns, training towns first."""
        return LOCATIONS[: self.towns]

    def simulator_for(self, location: str) -> SimulatorConfig:
        """The simulator settings for the town at ``location``."""
        return dataclasses.replace(self.simulator, location=location)


PRESETS: dict[str, Preset] = {
    "tiny": Preset(
        name="tiny",
        simulator=SimulatorConfig(
            lidar=LidarConfig.tiny(),
            warmup_s=2.0,
        ),
        towns=2,
        val_towns=1,
        scenes_per_town=1,
        scene_duration_s=4.0,
    ),
    "demo": Preset(
        name="demo",
        simulator=SimulatorConfig(
            lidar=LidarConfig(azimuth_steps=540, max_range_m=70.0),
        ),
        towns=4,
        val_towns=1,
        scenes_per_town=4,
        scene_duration_s=10.0,
    ),
    "nuscenes": Preset(
        name="nuscenes",
        simulator=SimulatorConfig(
            town=TownConfig(roads=RoadNetworkConfig(grid_shape=(4, 3))),
            lidar=LidarConfig.nuscenes(),
        ),
        towns=4,
        val_towns=1,
        scenes_per_town=2,
        scene_duration_s=20.0,
    ),
}


def get_preset(name: str) -> Preset:
    """The preset called ``name``.

    Raises:
        ValueError: for an unknown name, listing the known ones.
    """
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
    return PRESETS[name]
