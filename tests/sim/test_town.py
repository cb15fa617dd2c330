"""The procedural town: determinism, map sanity, traffic side, structures clear of roads."""

import numpy as np
import pytest
import shapely
from shapely.geometry import Polygon

from bevjepa.sim.planar import boxes_to_rectangles, rectangle_corners, vertex_headings
from bevjepa.sim.town import generate_town
from bevjepa.sim.types import LOCATIONS


@pytest.fixture(scope="module")
def towns():
    return {
        location: generate_town(location, seed=7) for location in ("singapore-onenorth", "boston-seaport")
    }


def _map_arrays(town) -> list[np.ndarray]:
    m = town.map
    arrays = [
        *m.drivable_area,
        *m.road_blocks,
        *m.ped_crossings,
        *m.walkways,
        *m.stop_lines,
        *m.carpark_areas,
    ]
    arrays += [*m.road_dividers, *m.lane_dividers, *(lane.centerline for lane in m.lanes)]
    arrays += [town.static.structure_boxes, town.static.cylinders, *(o.box for o in town.static.objects)]
    return arrays


def test_same_seed_same_town_and_different_seed_different_town(towns):
    first, again = towns["boston-seaport"], generate_town("boston-seaport", 7)
    other = generate_town("boston-seaport", 8)
    assert all(np.array_equal(a, b) for a, b in zip(_map_arrays(first), _map_arrays(again), strict=True))
    assert first.map.size_m != other.map.size_m
    assert not np.array_equal(first.static.structure_boxes, other.static.structure_boxes)


def test_unknown_location_is_refused():
    with pytest.raises(ValueError, match="unknown location"):
        generate_town("paris", 0)


@pytest.mark.parametrize("location", ["singapore-onenorth", "boston-seaport"])
def test_map_has_every_layer_inside_the_canvas(towns, location):
    town = towns[location]
    m = town.map
    assert m.location == location and m.location in LOCATIONS
    for name in (
        "drivable_area",
        "road_blocks",
        "lanes",
        "ped_crossings",
        "walkways",
        "stop_lines",
        "carpark_areas",
        "road_dividers",
        "lane_dividers",
        "traffic_lights",
    ):
        assert len(getattr(m, name)) > 0, name
    assert sum(s.is_intersection for s in m.road_segments) >= 5
    assert sum(not s.is_intersection for s in m.road_segments) >= 8
    width, height = m.size_m
    for array in _map_arrays(town):
        if array.ndim == 2 and array.shape[1] == 2:
            assert (array > 0).all() and (array[:, 0] < width).all() and (array[:, 1] < height).all()


@pytest.mark.parametrize("location", ["singapore-onenorth", "boston-seaport"])
def test_lanes_and_crossings_lie_on_the_drivable_area(towns, location):
    town = towns[location]
    for lane in town.map.lanes:
        assert town.on_drivable_area(lane.centerline).all()
        assert lane.successors, "every lane and connector leads somewhere (no dead ends)"
    for crossing in town.map.ped_crossings:
        shrunk = np.asarray(Polygon(crossing).buffer(-0.05).exterior.coords)
        assert town.on_drivable_area(shrunk).all()
    for walkway in town.map.walkways:
        inside = Polygon(walkway).buffer(-0.05)
        assert inside.is_empty or not town.drivable.intersects(inside.representative_point())


@pytest.mark.parametrize("location", ["singapore-onenorth", "boston-seaport"])
def test_buildings_and_parked_objects_stay_off_roads_and_walkways(towns, location):
    town = towns[location]
    drivable_and_walkways = shapely.union_all([town.drivable, *(Polygon(w) for w in town.map.walkways)])
    footprints = rectangle_corners(boxes_to_rectangles(town.static.structure_boxes))
    assert len(footprints) > 20
    for footprint in footprints:
        assert not Polygon(footprint).intersects(drivable_and_walkways)
    categories = {o.category for o in town.static.objects}
    assert {"vehicle.car", "movable_object.barrier", "movable_object.trafficcone"} <= categories
    parked = [o for o in town.static.objects if o.attribute == "vehicle.parked"]
    for car in parked:
        assert any(Polygon(p).contains(shapely.Point(car.box[:2])) for p in town.map.carpark_areas)
    assert [o.instance_id for o in town.static.objects] == list(range(len(town.static.objects)))


def test_traffic_keeps_left_in_singapore_and_right_in_boston(towns):
    for location, keep_left in (("singapore-onenorth", True), ("boston-seaport", False)):
        town = towns[location]
        for lane, info in zip(town.map.lanes, town.lane_infos, strict=True):
            if info.edge < 0:
                continue
            road = town.network.edges[info.edge].centerline_from(town.network.edges[info.edge].start)
            if not info.forward:
                road = road[::-1]
            middle = len(road) // 2
            heading = vertex_headings(road)[middle]
            offset = (
                lane.centerline[np.linalg.norm(lane.centerline - road[middle], axis=1).argmin()]
                - road[middle]
            )
            left_of_divider = -np.sin(heading) * offset[0] + np.cos(heading) * offset[1] > 0
            assert left_of_divider == keep_left


def test_roads_curve(towns):
    town = towns["boston-seaport"]
    turns = [np.ptp(np.unwrap(vertex_headings(edge.centerline))) for edge in town.network.edges]
    assert max(turns) > np.deg2rad(10)
