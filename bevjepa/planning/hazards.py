"""Hazard scenarios: one static object placed on the ego's lane ahead, small (a traffic cone, a standing
pedestrian) or large (a stopped car), to ask whether a planner avoids small hazards as often as large ones."""

import dataclasses

import numpy as np

from bevjepa.planning.closed_loop import RouteTracker
from bevjepa.sim.object_classes import ADULT, CAR, TRAFFIC_CONE, ObjectClass
from bevjepa.sim.simulator import Simulator
from bevjepa.sim.simulator_config import SimulatorConfig
from bevjepa.sim.town import Town
from bevjepa.sim.types import ObjectState

HAZARDS: dict[str, ObjectClass] = {"cone": TRAFFIC_CONE, "pedestrian": ADULT, "car": CAR}
SMALL_HAZARDS = ("cone", "pedestrian")


def _mean_size(kind: ObjectClass) -> np.ndarray:
    return np.array([np.mean(kind.length_m), np.mean(kind.width_m), np.mean(kind.height_m)])


def with_hazard(
    town: Town, config: SimulatorConfig, seed: int, hazard: str, distance_m: float = 35.0
) -> Town:
    """A copy of ``town`` with a hazard on the lane of the ego's route ``distance_m`` ahead of its start.

    The episode of ``seed`` starts where it would without the hazard (route and traffic do not depend on
    static objects); the hazard is the last static object, so its instance id is ``len(town.static.objects)``.

    Args:
        town: the town.
        config: the simulator settings the episode runs with.
        seed: the episode seed.
        hazard: a key of ``HAZARDS``.
        distance_m: route distance from the ego's rear axle at the start to the hazard.

    Returns:
        The town with the hazard.
    """
    kind = HAZARDS[hazard]
    simulator = Simulator(config)
    simulator.reset_world(seed, town)
    route = simulator.route
    start_s = RouteTracker(simulator).start_s
    position = route.point_at(start_s + distance_m)
    length, width, height = _mean_size(kind)
    yaw = route.heading_at(start_s + distance_m)
    box = np.array([position[0], position[1], height / 2, length, width, height, yaw])
    instance_id = len(town.static.objects)
    attribute = "pedestrian.standing" if kind is ADULT else ("vehicle.stopped" if kind is CAR else "")
    placed = ObjectState(instance_id, kind.category, attribute, box, np.zeros(2))
    static = dataclasses.replace(
        town.static,
        objects=[*town.static.objects, placed],
        object_rcs=np.append(town.static.object_rcs, np.float32(kind.rcs_dbsm)),
    )
    return dataclasses.replace(town, static=static)
