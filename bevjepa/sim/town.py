"""A procedural town per (location, seed): its HD map, its static world and the graphs traffic moves on.

``generate_town`` lays out the road network (``roads``), its lanes (``lane_layout``), the pedestrian
space (``walkways``) and the roadside (``structures``), and gathers them into a ``TownMap`` with every
layer nuScenes maps have. Traffic drives on the right in Boston and on the left in Singapore.
"""

from dataclasses import dataclass, field

import numpy as np
import shapely
from shapely.geometry import Polygon
from shapely.ops import unary_union

from bevjepa.sim.lane_layout import LaneInfo, build_lanes
from bevjepa.sim.planar import extend_polyline, offset_polyline, strip_polygon
from bevjepa.sim.roads import RoadNetwork, RoadNetworkConfig, generate_road_network
from bevjepa.sim.structures import StaticWorld, StructureConfig, build_static_world
from bevjepa.sim.types import LOCATIONS, RoadSegment, TownMap
from bevjepa.sim.walkways import CrossingSite, WalkGraph, WalkwayConfig, build_pedestrian_space

# Road surfaces reach this far into the intersections so that rasterised masks have no seams.
_SEAM_OVERLAP_M = 0.25


@dataclass(frozen=True)
class TownConfig:
    """Everything that shapes a town: road grid, walkways, roadside density."""

    roads: RoadNetworkConfig = field(default_factory=RoadNetworkConfig)
    walkways: WalkwayConfig = field(default_factory=WalkwayConfig)
    structures: StructureConfig = field(default_factory=StructureConfig)


@dataclass
class Town:
    """One generated town.

    Attributes:
        location: one of ``LOCATIONS``.
        seed: the seed it was generated from.
        network: intersections and roads.
        map: the HD map, every layer in the global frame.
        lane_infos: for each of ``map.lanes``, where it sits in the network.
        crossings: the crossings, in the order of ``map.ped_crossings``.
        walk_graph: where pedestrians walk.
        static: buildings, walls, poles and the annotated static objects.
        drivable: the union of the drivable area, for off-road checks.
    """

    location: str
    seed: int
    network: RoadNetwork
    map: TownMap
    lane_infos: list[LaneInfo]
    crossings: list[CrossingSite]
    walk_graph: WalkGraph
    static: StaticWorld
    drivable: shapely.Geometry

    def on_drivable_area(self, points: np.ndarray) -> np.ndarray:
        """(N,) bool: whether each of the (N, 2) points lies on the drivable area (boundary included)."""
        return shapely.intersects_xy(self.drivable, points[:, 0], points[:, 1])


def generate_town(location: str, seed: int, config: TownConfig | None = None) -> Town:
    """Generate the town of ``location`` for ``seed``; the same arguments always give the same town.

    Args:
        location: one of ``LOCATIONS`` (the devkit accepts only these map names).
        seed: seed of every random choice in the town.
        config: layout and density; defaults to ``TownConfig()``.

    Returns:
        The town.
    """
    if location not in LOCATIONS:
        raise ValueError(f"unknown location {location!r}; nuScenes maps are named {LOCATIONS}")
    config = config or TownConfig()
    road_rng, structure_rng = (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(2))
    network = generate_road_network(config.roads, keep_left=location.startswith("singapore"), rng=road_rng)
    lanes, lane_infos = build_lanes(network)
    pedestrian_space = build_pedestrian_space(network, config.walkways)

    intersections = [network.intersection_polygon(i) for i in range(len(network.nodes))]
    roads = [
        strip_polygon(extend_polyline(e.centerline, _SEAM_OVERLAP_M), -e.half_width, e.half_width)
        for e in network.edges
    ]
    static = build_static_world(
        network,
        roads + intersections,
        pedestrian_space.walkways,
        config.walkways,
        config.structures,
        structure_rng,
    )
    drivable_area = roads + intersections + static.car_parks

    road_blocks, lane_dividers = [], []
    for edge in network.edges:
        road_blocks += [
            strip_polygon(edge.centerline, -edge.half_width, 0.0),
            strip_polygon(edge.centerline, 0.0, edge.half_width),
        ]
        for lane_boundary in range(1, edge.lanes_per_direction):
            for side in (1, -1):
                lane_dividers.append(offset_polyline(edge.centerline, side * lane_boundary * edge.lane_width))

    town_map = TownMap(
        location=location,
        size_m=network.size_m,
        drivable_area=drivable_area,
        road_segments=[RoadSegment(polygon=p, is_intersection=False) for p in roads]
        + [RoadSegment(polygon=p, is_intersection=True) for p in intersections],
        road_blocks=road_blocks,
        lanes=lanes,
        ped_crossings=[crossing.polygon for crossing in pedestrian_space.crossings],
        walkways=pedestrian_space.walkways,
        stop_lines=pedestrian_space.stop_lines,
        carpark_areas=static.car_parks,
        road_dividers=[edge.centerline.copy() for edge in network.edges],
        lane_dividers=lane_dividers,
        traffic_lights=static.traffic_lights,
    )
    drivable = unary_union([Polygon(p) for p in drivable_area])
    shapely.prepare(drivable)
    return Town(
        location=location,
        seed=seed,
        network=network,
        map=town_map,
        lane_infos=lane_infos,
        crossings=pedestrian_space.crossings,
        walk_graph=pedestrian_space.walk_graph,
        static=static,
        drivable=drivable,
    )
