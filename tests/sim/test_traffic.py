"""Traffic: velocities match motion, vehicles keep to lanes without colliding, pedestrians keep to walkways."""

import numpy as np
import pytest
import shapely
from shapely.geometry import Polygon

from bevjepa.sim.lane_graph import LaneGraph
from bevjepa.sim.nuscenes_taxonomy import ATTRIBUTE_NAMES, CATEGORY_NAMES
from bevjepa.sim.planar import boxes_to_rectangles, rectangles_overlap
from bevjepa.sim.town import generate_town
from bevjepa.sim.traffic import Traffic, TrafficConfig

STEP_S = 0.05
FAR_AWAY_EGO = np.array([-1000.0, -1000.0, 0.8, 4.0, 1.8, 1.6, 0.0])


def _run(location: str, seed: int, seconds: float):
    town = generate_town(location, seed)
    lanes = LaneGraph(town.map, town.lane_infos, town.crossings)
    traffic = Traffic(
        lanes,
        town.walk_graph,
        TrafficConfig(),
        len(town.static.objects),
        (0, 10.0),
        np.random.default_rng(seed),
    )
    history = [traffic.states()]
    vehicle_lanes = [[v.lane for v in traffic.vehicles]]
    for _ in range(int(seconds / STEP_S)):
        traffic.step(STEP_S, None, FAR_AWAY_EGO)
        history.append(traffic.states())
        vehicle_lanes.append([v.lane for v in traffic.vehicles])
    return town, traffic, history, vehicle_lanes


@pytest.fixture(scope="module", params=[("singapore-onenorth", 11), ("boston-seaport", 12)])
def run(request):
    return _run(*request.param, seconds=20.0)


def test_agents_use_nuscenes_categories_and_attributes(run):
    _, traffic, history, _ = run
    assert len(traffic.vehicles) > 15 and len(traffic.pedestrians.people) > 15
    seen = {(o.category, o.attribute) for states in history for o in states}
    assert all(category in CATEGORY_NAMES and attribute in ATTRIBUTE_NAMES for category, attribute in seen)
    assert {"vehicle.moving", "vehicle.stopped", "pedestrian.moving", "pedestrian.standing"} <= {
        a for _, a in seen
    }
    assert {"vehicle.car", "human.pedestrian.adult"} <= {c for c, _ in seen}
    ids = [o.instance_id for o in history[0]]
    assert len(set(ids)) == len(ids)


def test_velocities_match_track_displacement(run):
    _, _, history, _ = run
    errors = []
    for before, now, after in zip(history[:-2], history[1:-1], history[2:], strict=True):
        for a, b, c in zip(before, now, after, strict=True):
            displacement_velocity = (c.box[:2] - a.box[:2]) / (2 * STEP_S)
            errors.append(np.linalg.norm(displacement_velocity - b.velocity))
    errors = np.array(errors)
    assert np.median(errors) < 0.02
    assert np.quantile(errors, 0.99) < 0.5


def test_vehicles_stay_in_their_lanes(run):
    town, traffic, history, vehicle_lanes = run
    lane_shapes = [Polygon(lane.polygon).buffer(0.05) for lane in town.map.lanes]
    for states, lanes in zip(history[::10], vehicle_lanes[::10], strict=True):
        for state, lane in zip(states, lanes, strict=False):
            assert lane_shapes[lane].contains(shapely.Point(state.box[:2]))
    speeds = np.array(
        [[np.linalg.norm(o.velocity) for o in states[: len(traffic.vehicles)]] for states in history]
    )
    assert speeds.mean() > 2.0, "traffic flows"
    assert (speeds.max(axis=0) > 1.0).mean() > 0.9, "almost every vehicle gets moving"


def test_vehicles_never_collide_with_each_other_or_pedestrians(run):
    _, traffic, history, _ = run
    vehicles = len(traffic.vehicles)
    for states in history:
        rectangles = boxes_to_rectangles(np.array([o.box for o in states]))
        reach = np.hypot(rectangles[:, 2], rectangles[:, 3]) / 2
        for index in range(vehicles):
            near = np.linalg.norm(rectangles[:, :2] - rectangles[index, :2], axis=1) < reach + reach[index]
            near[index] = False
            assert not rectangles_overlap(rectangles[index], rectangles[near]).any()


def test_pedestrians_keep_to_walkways_and_cross_at_crossings(run):
    town, traffic, history, _ = run
    vehicles = len(traffic.vehicles)
    crossings = shapely.union_all([Polygon(c).buffer(0.3) for c in town.map.ped_crossings])
    crossing_seen = False
    for states in history[::5]:
        for person in states[vehicles:]:
            point = shapely.Point(person.box[:2])
            if town.drivable.contains(point):
                assert crossings.contains(point)
                crossing_seen = True
    assert crossing_seen
