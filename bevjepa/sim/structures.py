"""Everything static beside the roads: buildings, walls, car parks with parked cars, street furniture.

Buildings line every road behind its walkway, with walls in some of the gaps between them, so that they
occlude what lies behind. Car parks sit beside a few roads, filled with parked cars. Poles (street lights,
traffic lights, tree trunks) stand on the walkways; construction sites put barriers and traffic cones on
a walkway; parked bicycles stand in small groups.
"""

from dataclasses import dataclass, field

import numpy as np
import shapely
from shapely.geometry import Polygon
from shapely.ops import unary_union

from bevjepa.sim.object_classes import (
    BARRIER,
    BUILDING_RCS_DBSM,
    CAR,
    PARKED_BICYCLE,
    TRAFFIC_CONE,
    WALL_RCS_DBSM,
    ObjectClass,
)
from bevjepa.sim.planar import (
    rectangle_circle_overlap,
    rectangle_corners,
    rectangles_overlap,
    sub_polyline,
    wrap_angle,
)
from bevjepa.sim.roads import RoadNetwork
from bevjepa.sim.types import ObjectState, TrafficLight
from bevjepa.sim.walkways import STOP_LINE_FAR_M, WalkwayConfig


@dataclass(frozen=True)
class StructureConfig:
    """How densely the roadside is built up and furnished.

    Attributes:
        building_width_m, building_depth_m, building_height_m: ranges of building size (width along the road).
        building_gap_m: range of the gap between neighbouring buildings.
        setback_m: range of the distance from the walkway to a building's front.
        wall_probability: chance that a gap between buildings is closed by a wall.
        car_parks: car parks per town.
        car_park_occupancy: share of parking bays taken.
        construction_sites: walkway construction sites (barriers and cones) per town.
        bicycle_groups: groups of parked bicycles per town.
        street_light_spacing_m: distance between street lights along a road side.
        tree_probability: chance that a road side is lined with trees.
    """

    building_width_m: tuple[float, float] = (12.0, 30.0)
    building_depth_m: tuple[float, float] = (10.0, 22.0)
    building_height_m: tuple[float, float] = (6.0, 32.0)
    building_gap_m: tuple[float, float] = (1.0, 7.0)
    setback_m: tuple[float, float] = (1.0, 4.0)
    wall_probability: float = 0.6
    car_parks: int = 2
    car_park_occupancy: float = 0.7
    construction_sites: int = 2
    bicycle_groups: int = 2
    street_light_spacing_m: float = 30.0
    tree_probability: float = 0.4


@dataclass
class StaticWorld:
    """Static things in a town, in the global frame.

    Attributes:
        structure_boxes: (S, 7) buildings and walls ``[cx, cy, cz, dx, dy, dz, yaw]``.
        structure_rcs: (S,) radar cross-section (dBsm).
        cylinders: (K, 4) ``[x, y, radius, height]`` poles and tree trunks.
        objects: annotated static objects (parked cars and bicycles, barriers, cones), instance ids 0...
        object_rcs: (len(objects),) radar cross-section (dBsm).
        car_parks: (N, 2) car-park polygons.
        traffic_lights: one per approach of every intersection of three or more roads.
    """

    structure_boxes: np.ndarray
    structure_rcs: np.ndarray
    cylinders: np.ndarray
    objects: list[ObjectState]
    object_rcs: np.ndarray
    car_parks: list[np.ndarray]
    traffic_lights: list[TrafficLight]


@dataclass
class _Builder:
    """Collects what has been placed and refuses overlaps."""

    reserved: shapely.Geometry
    size_m: tuple[float, float]
    rectangles: list[np.ndarray] = field(default_factory=list)
    circles: list[np.ndarray] = field(default_factory=list)

    def is_free(self, rectangle: np.ndarray) -> bool:
        """Whether the (5,) rectangle lies inside the canvas, off the reserved area and clear of all else."""
        corners = rectangle_corners(rectangle[None])[0]
        inside = np.all(corners > 1.0) and np.all(corners < np.array(self.size_m) - 1.0)
        if not inside or Polygon(corners).intersects(self.reserved):
            return False
        return not (self.overlaps_taken(rectangle) or self.overlaps_poles(rectangle))

    def overlaps_taken(self, rectangle: np.ndarray) -> bool:
        """Whether the (5,) rectangle overlaps one already taken."""
        if not self.rectangles:
            return False
        taken = np.array(self.rectangles)
        reach = np.hypot(taken[:, 2], taken[:, 3]) / 2 + np.hypot(rectangle[2], rectangle[3]) / 2
        near = np.linalg.norm(taken[:, :2] - rectangle[:2], axis=1) <= reach
        return bool(rectangles_overlap(rectangle, taken[near]).any())

    def overlaps_poles(self, rectangle: np.ndarray) -> bool:
        """Whether the (5,) rectangle overlaps a pole or trunk (with some clearance)."""
        return bool(self.circles) and bool(rectangle_circle_overlap(rectangle, np.array(self.circles)).any())

    def take(self, rectangle: np.ndarray) -> None:
        """Mark the (5,) rectangle as built on."""
        self.rectangles.append(rectangle)


def build_static_world(
    network: RoadNetwork,
    drivable: list[np.ndarray],
    walkways: list[np.ndarray],
    walkway_config: WalkwayConfig,
    config: StructureConfig,
    rng: np.random.Generator,
) -> StaticWorld:
    """Place buildings, walls, car parks, parked vehicles and street furniture beside the roads.

    Args:
        network: the road network.
        drivable: drivable-area polygons (nothing is built on them).
        walkways: walkway polygons (only street furniture stands on them).
        walkway_config: walkway widths.
        config: density of buildings and furniture.
        rng: source of the placement's randomness.

    Returns:
        The static world; no building, wall or parked object overlaps a road, a walkway or another one.
    """
    road_space = unary_union([Polygon(p) for p in drivable + walkways]).buffer(0.5)
    shapely.prepare(road_space)
    builder = _Builder(reserved=road_space, size_m=network.size_m)
    sides = [(e, side) for e in range(len(network.edges)) for side in (1, -1)]
    objects: list[tuple[ObjectClass, np.ndarray, str]] = []

    car_parks = []
    for index in rng.permutation(len(sides)):  # Road sides in random order until enough car parks fit.
        if len(car_parks) == config.car_parks:
            break
        car_park = _place_car_park(network, *sides[index], walkway_config, builder, rng)
        if car_park is not None:
            car_parks.append(car_park)
            objects += _park_cars(car_park, config.car_park_occupancy, rng)
    builder.reserved = road_space.union(unary_union([Polygon(p) for p in car_parks]).buffer(0.5))
    shapely.prepare(builder.reserved)

    cylinders = _poles_and_trees(network, walkway_config, config, rng)
    traffic_lights, light_poles = _traffic_lights(network)
    cylinders = np.concatenate([cylinders, light_poles])
    builder.circles = [np.array([x, y, r + 0.2]) for x, y, r, _ in cylinders]

    walkway_objects = []
    for index in rng.permutation(len(sides))[: config.construction_sites]:
        walkway_objects += _construction_site(network, *sides[index], walkway_config, builder, rng)
    for index in rng.permutation(len(sides))[: config.bicycle_groups]:
        walkway_objects += _bicycle_group(network, *sides[index], walkway_config, builder, rng)
    objects += walkway_objects

    boxes, rcs = [], []
    for box in _corner_buildings(network, walkway_config, config, builder, rng):
        boxes.append(box)
        rcs.append(BUILDING_RCS_DBSM)
    for edge_index, side in sides:
        for box, box_rcs in _buildings_along(network, edge_index, side, walkway_config, config, builder, rng):
            boxes.append(box)
            rcs.append(box_rcs)

    states = [
        ObjectState(instance_id=i, category=kind.category, attribute=attribute, box=box, velocity=np.zeros(2))
        for i, (kind, box, attribute) in enumerate(objects)
    ]
    return StaticWorld(
        structure_boxes=np.array(boxes).reshape(-1, 7),
        structure_rcs=np.array(rcs, dtype=np.float32),
        cylinders=cylinders,
        objects=states,
        object_rcs=np.array([kind.rcs_dbsm for kind, _, _ in objects], dtype=np.float32),
        car_parks=car_parks,
        traffic_lights=traffic_lights,
    )


def _frame(network: RoadNetwork, edge_index: int, arc_length: float) -> tuple[np.ndarray, float, np.ndarray]:
    """Point (2,), heading and left normal (2,) of a road's centerline at ``arc_length`` from its start."""
    piece = sub_polyline(network.edges[edge_index].centerline, max(arc_length - 0.5, 0.0), arc_length + 0.5)
    tangent = piece[-1] - piece[0]
    heading = float(np.arctan2(tangent[1], tangent[0]))
    return piece[len(piece) // 2], heading, np.array([-np.sin(heading), np.cos(heading)])


def _box(centre: np.ndarray, size: np.ndarray, yaw: float) -> np.ndarray:
    """(7,) box standing on the ground."""
    return np.array([centre[0], centre[1], size[2] / 2, size[0], size[1], size[2], yaw])


def _place_car_park(
    network: RoadNetwork,
    edge_index: int,
    side: int,
    walkway: WalkwayConfig,
    builder: _Builder,
    rng: np.random.Generator,
) -> np.ndarray | None:
    """(4, 2) counter-clockwise outline of a car park beside the middle of a road; None if it does not fit."""
    edge = network.edges[edge_index]
    length, depth = rng.uniform(28.0, 40.0), rng.uniform(17.0, 21.0)
    point, heading, normal = _frame(network, edge_index, edge.length * rng.uniform(0.35, 0.65))
    centre = point + side * normal * (edge.half_width + walkway.width_m + 1.0 + depth / 2)
    rectangle = np.array([centre[0], centre[1], length, depth, heading])
    if not builder.is_free(rectangle):
        return None
    builder.take(rectangle)
    return rectangle_corners(rectangle[None])[0]


def _park_cars(car_park: np.ndarray, occupancy: float, rng: np.random.Generator) -> list:
    """Cars parked nose-in in two rows of 2.6 m bays along the car park's long sides."""
    front_left, rear_left, rear_right = car_park[0], car_park[1], car_park[2]
    along = (front_left - rear_left) / np.linalg.norm(front_left - rear_left)
    across = (rear_left - rear_right) / np.linalg.norm(rear_left - rear_right)
    length, depth = np.linalg.norm(front_left - rear_left), np.linalg.norm(rear_left - rear_right)
    bay_yaw = float(np.arctan2(across[1], across[0]))
    cars = []
    for row_offset in (2.6, depth - 2.6):
        for bay in range(int(length // 2.6)):
            if rng.random() >= occupancy:
                continue
            centre = rear_right + along * (1.3 + 2.6 * bay) + across * row_offset
            yaw = bay_yaw if rng.random() < 0.5 else bay_yaw + np.pi
            cars.append((CAR, _box(centre, CAR.sample_size(rng), float(wrap_angle(yaw))), "vehicle.parked"))
    return cars


def _poles_and_trees(
    network: RoadNetwork, walkway: WalkwayConfig, config: StructureConfig, rng: np.random.Generator
) -> np.ndarray:
    """(K, 4) street lights near the curb and tree trunks at the back of some walkways."""
    cylinders = []
    for edge_index, edge in enumerate(network.edges):
        for side in (1, -1):
            start = rng.uniform(8.0, 8.0 + config.street_light_spacing_m)
            for s in np.arange(start, edge.length - 8.0, config.street_light_spacing_m):
                point, _, normal = _frame(network, edge_index, s)
                x, y = point + side * normal * (edge.half_width + 0.5)
                cylinders.append([x, y, 0.12, 7.5])
            if rng.random() < config.tree_probability:
                for s in np.arange(rng.uniform(10.0, 16.0), edge.length - 10.0, rng.uniform(10.0, 16.0)):
                    point, _, normal = _frame(network, edge_index, s)
                    x, y = point + side * normal * (edge.half_width + walkway.width_m - 0.5)
                    cylinders.append([x, y, rng.uniform(0.15, 0.3), rng.uniform(3.0, 6.0)])
    return np.array(cylinders).reshape(-1, 4)


def _traffic_lights(network: RoadNetwork) -> tuple[list[TrafficLight], np.ndarray]:
    """A light on a pole beside each stop line of every junction of three or more roads."""
    lights, poles = [], []
    # Arriving traffic keeps right (left): its curb is on the left (right) of a road seen from the node.
    curb_side = -1.0 if network.keep_left else 1.0
    for node_index, node in enumerate(network.nodes):
        if len(node.edges) < 3:
            continue
        for direction in sorted(node.edges):
            edge = network.edges[node.edges[direction]]
            road = edge.centerline_from(node_index)
            piece = sub_polyline(road, STOP_LINE_FAR_M, STOP_LINE_FAR_M + 1.0)
            tangent = (piece[-1] - piece[0]) / np.linalg.norm(piece[-1] - piece[0])
            normal = np.array([-tangent[1], tangent[0]])
            position = piece[0] + curb_side * normal * (edge.half_width + 0.6)
            lights.append(TrafficLight(position=position, yaw=float(np.arctan2(-tangent[1], -tangent[0]))))
            poles.append([position[0], position[1], 0.15, 4.5])
    return lights, np.array(poles).reshape(-1, 4)


def _construction_site(
    network: RoadNetwork,
    edge_index: int,
    side: int,
    walkway: WalkwayConfig,
    builder: _Builder,
    rng: np.random.Generator,
) -> list:
    """Barriers along the back of a walkway and traffic cones along its curb over 10-16 m of road."""
    edge = network.edges[edge_index]
    start = rng.uniform(10.0, max(edge.length - 26.0, 10.5))
    end = start + rng.uniform(10.0, 16.0)
    placed = []
    for kind, lateral, spacing, yaw_offset in (
        (BARRIER, edge.half_width + walkway.width_m - 0.6, 2.6, np.pi / 2),
        (TRAFFIC_CONE, edge.half_width + 0.35, 2.0, 0.0),
    ):
        for s in np.arange(start, end, spacing):
            point, heading, normal = _frame(network, edge_index, s)
            size = kind.sample_size(rng)
            yaw = float(wrap_angle(heading + yaw_offset + rng.normal(0.0, 0.05)))
            box = _box(point + side * normal * lateral, size, yaw)
            placed += _take_if_free(builder, kind, box, "")
    return placed


def _bicycle_group(
    network: RoadNetwork,
    edge_index: int,
    side: int,
    walkway: WalkwayConfig,
    builder: _Builder,
    rng: np.random.Generator,
) -> list:
    """Three to six bicycles parked side by side across the back of a walkway."""
    edge = network.edges[edge_index]
    start = rng.uniform(10.0, max(edge.length - 16.0, 10.5))
    placed = []
    for s in start + 0.8 * np.arange(rng.integers(3, 7)):
        point, heading, normal = _frame(network, edge_index, s)
        box = _box(
            point + side * normal * (edge.half_width + walkway.width_m - 0.55),
            PARKED_BICYCLE.sample_size(rng),
            float(wrap_angle(heading + side * np.pi / 2 + rng.normal(0.0, 0.08))),
        )
        placed += _take_if_free(builder, PARKED_BICYCLE, box, "cycle.without_rider")
    return placed


def _take_if_free(builder: _Builder, kind: ObjectClass, box: np.ndarray, attribute: str) -> list:
    """``[(kind, box, attribute)]`` if the box's footprint is clear of other objects and poles, else []."""
    rectangle = box[[0, 1, 3, 4, 6]]
    if builder.overlaps_taken(rectangle) or builder.overlaps_poles(rectangle):
        return []
    builder.take(rectangle)
    return [(kind, box, attribute)]


def _corner_buildings(
    network: RoadNetwork,
    walkway: WalkwayConfig,
    config: StructureConfig,
    builder: _Builder,
    rng: np.random.Generator,
) -> list[np.ndarray]:
    """A building on each street corner that has room for one, its sides along the two roads."""
    placed = []
    for node in network.nodes:
        for diagonal in ((1, 1), (-1, 1), (-1, -1), (1, -1)):
            width, depth = rng.uniform(*config.building_width_m), rng.uniform(*config.building_depth_m)
            inner = node.radius + walkway.width_m + rng.uniform(*config.setback_m)
            centre = node.position + np.array(diagonal) * (inner + np.array([width, depth]) / 2)
            rectangle = np.array([centre[0], centre[1], width, depth, 0.0])
            if builder.is_free(rectangle):
                builder.take(rectangle)
                placed.append(
                    _box(centre, np.array([width, depth, rng.uniform(*config.building_height_m)]), 0.0)
                )
    return placed


def _buildings_along(
    network: RoadNetwork,
    edge_index: int,
    side: int,
    walkway: WalkwayConfig,
    config: StructureConfig,
    builder: _Builder,
    rng: np.random.Generator,
) -> list[tuple[np.ndarray, float]]:
    """Buildings, and walls in some gaps, along one side of a road, set back behind its walkway."""
    edge = network.edges[edge_index]
    placed = []
    s = rng.uniform(0.0, config.building_gap_m[1])
    while s < edge.length:
        gap, height = rng.uniform(*config.building_gap_m), rng.uniform(*config.building_height_m)
        front = edge.half_width + walkway.width_m + rng.uniform(*config.setback_m)
        width, depth = rng.uniform(*config.building_width_m), rng.uniform(*config.building_depth_m)
        # Where the full size does not fit (bends, corners, car parks), a smaller building may.
        for shrink in (1.0, 0.7, 0.5):
            point, heading, normal = _frame(network, edge_index, min(s + shrink * width / 2, edge.length))
            centre = point + side * normal * (front + shrink * depth / 2)
            rectangle = np.array([centre[0], centre[1], shrink * width, shrink * depth, heading])
            if builder.is_free(rectangle):
                builder.take(rectangle)
                size = np.array([shrink * width, shrink * depth, height])
                placed.append((_box(centre, size, heading), BUILDING_RCS_DBSM))
                break
        else:
            s += 3.0
            continue
        s += shrink * width
        if gap > 2.5 and s + gap < edge.length and rng.random() < config.wall_probability:
            point, heading, normal = _frame(network, edge_index, s + gap / 2)
            wall_centre = point + side * normal * (front + 0.15)
            wall = np.array([wall_centre[0], wall_centre[1], gap - 0.6, 0.3, heading])
            if builder.is_free(wall):
                builder.take(wall)
                size = np.array([gap - 0.6, 0.3, rng.uniform(1.8, 3.0)])
                placed.append((_box(wall_centre, size, heading), WALL_RCS_DBSM))
        s += gap
    return placed
