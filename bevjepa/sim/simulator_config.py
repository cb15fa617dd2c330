"""Settings of a simulated world and its sensors, with the knobs that degrade the sensors."""

import dataclasses
from dataclasses import dataclass, field

from bevjepa.sim.ego import INTEGRATION_STEP_S, EgoSpec
from bevjepa.sim.lidar import LidarConfig
from bevjepa.sim.radar import RadarConfig
from bevjepa.sim.town import TownConfig
from bevjepa.sim.traffic import TrafficConfig
from bevjepa.sim.types import LOCATIONS


@dataclass(frozen=True)
class SimulatorConfig:
    """Everything that defines a simulated world and its sensors.

    Attributes:
        location: town location (one of ``LOCATIONS``), used when ``reset`` generates the town.
        town, traffic: town layout and traffic density.
        lidar, radar: sensor settings, including their degradation knobs.
        ego: the ego vehicle.
        step_s: simulation step, the LIDAR_TOP period (nuScenes: 20 Hz).
        warmup_s: traffic runs this long before the first frame so that it is not in its spawn pattern.
        route_length_m: length of the ego's route (extended while driving in closed loop).
    """

    location: str = LOCATIONS[0]
    town: TownConfig = field(default_factory=TownConfig)
    traffic: TrafficConfig = field(default_factory=TrafficConfig)
    lidar: LidarConfig = field(default_factory=LidarConfig)
    radar: RadarConfig = field(default_factory=RadarConfig)
    ego: EgoSpec = field(default_factory=EgoSpec)
    step_s: float = 0.05
    warmup_s: float = 4.0
    route_length_m: float = 1500.0

    def __post_init__(self) -> None:
        if self.location not in LOCATIONS:
            raise ValueError(f"unknown location {self.location!r}; choose one of {LOCATIONS}")
        if round(self.step_s / INTEGRATION_STEP_S) * INTEGRATION_STEP_S != self.step_s or self.step_s <= 0:
            raise ValueError(
                f"step_s must be a positive multiple of {INTEGRATION_STEP_S} s, got {self.step_s}"
            )

    def degraded(
        self,
        lidar_dropout: float | None = None,
        lidar_range_noise_std_m: float | None = None,
        rain_clutter_rate: float | None = None,
        radar_false_alarm_rate: float | None = None,
    ) -> "SimulatorConfig":
        """A copy with degraded sensors; arguments left as None keep their current value.

        Args:
            lidar_dropout: probability that a LiDAR return is lost.
            lidar_range_noise_std_m: Gaussian range noise of the LiDAR.
            rain_clutter_rate: probability per LiDAR firing of a raindrop echo.
            radar_false_alarm_rate: expected radar false alarms per sweep.

        Returns:
            The degraded configuration.
        """
        lidar_changes = {
            name: value
            for name, value in (
                ("dropout", lidar_dropout),
                ("range_noise_std_m", lidar_range_noise_std_m),
                ("rain_clutter_rate", rain_clutter_rate),
            )
            if value is not None
        }
        radar = self.radar
        if radar_false_alarm_rate is not None:
            radar = dataclasses.replace(radar, false_alarm_rate=radar_false_alarm_rate)
        return dataclasses.replace(self, lidar=dataclasses.replace(self.lidar, **lidar_changes), radar=radar)
