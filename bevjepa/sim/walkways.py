"""Pedestrian space of a town: crossings, stop lines, walkways and the network pedestrians walk on.

Every road end at an intersection gets a zebra crossing a metre beyond the intersection and a stop line
just behind it on the incoming half. Walkways run beside every road and round every corner. Pedestrians
walk along walkway paths between the crossings' ends, which are the vertices of the walk graph.
"""

from dataclasses import dataclass

import numpy as np
import shapely
from shapely.geometry import LineString, Polygon
from shapely.geometry.polygon import orient
from shapely.ops import substring, unary_union

from bevjepa.sim.planar import offset_polyline, resample_polyline, sub_polyline
from bevjepa.sim.roads import RoadNetwork

# Distances from an intersection's boundary along a road, in metres.
CROSSING_NEAR_M, CROSSING_FAR_M = 1.0, 5.0
STOP_LINE_NEAR_M, STOP_LINE_FAR_M = 5.5, 6.0
_CROSSING_MIDDLE_M = 0.5 * (CROSSING_NEAR_M + CROSSING_FAR_M)
# How much road each intersection's walkway patch is built around (the rest of a road has its strips).
_STUB_M = 6.0
_PATH_SPACING_M = 1.0


@dataclass(frozen=True)
class WalkwayConfig:
    """Widths of the pedestrian space: the walkway, and how far from the curb pedestrians walk."""

    width_m: float = 3.5
    walking_offset_m: float = 1.75


@dataclass
class CrossingSite:
    """A zebra crossing where road ``edge`` meets intersection ``node``; ``polygon`` is (N, 2)."""

    node: int
    edge: int
    polygon: np.ndarray


@dataclass
class WalkGraph:
    """Where pedestrians can walk.

    Attributes:
        vertices: (V, 2) the walking points at both ends of every crossing.
        paths: polyline (P, 2) of each walk-graph edge, from ``ends[i, 0]`` to ``ends[i, 1]``.
        ends: (E, 2) int vertex indices of each path.
        crossing: (E,) index into the town's crossings for a path over a crossing, -1 on walkways.
        incident: for each vertex, the paths that touch it.
    """

    vertices: np.ndarray
    paths: list[np.ndarray]
    ends: np.ndarray
    crossing: np.ndarray
    incident: list[list[int]]


@dataclass
class PedestrianSpace:
    """Crossings, stop lines, walkway polygons and the walk graph of a road network."""

    crossings: list[CrossingSite]
    stop_lines: list[np.ndarray]
    walkways: list[np.ndarray]
    walk_graph: WalkGraph


def build_pedestrian_space(network: RoadNetwork, config: WalkwayConfig) -> PedestrianSpace:
    """Crossings, stop lines and walkways around every intersection and along every road.

    Args:
        network: the road network.
        config: walkway widths.

    Returns:
        The pedestrian space; crossings are ordered by node, then by compass direction.
    """
    crossings, stop_lines, walkways = [], [], []
    vertex_of: dict[tuple[int, int, int], int] = {}
    vertices, paths, ends, crossing_of_path = [], [], [], []

    def add_path(points: np.ndarray, a: int, b: int, crossing: int) -> None:
        paths.append(points)
        ends.append((a, b))
        crossing_of_path.append(crossing)

    for node_index, node in enumerate(network.nodes):
        for direction in sorted(node.edges):
            edge_index = node.edges[direction]
            edge = network.edges[edge_index]
            h = edge.half_width
            crossings.append(
                CrossingSite(
                    node_index,
                    edge_index,
                    edge.strip_from(node_index, CROSSING_NEAR_M, CROSSING_FAR_M, -h, h),
                )
            )
            # Traffic keeping right (left) of travel arrives on the left (right) of the road seen from here.
            arriving_half = (-h, 0.0) if network.keep_left else (0.0, h)
            stop_lines.append(edge.strip_from(node_index, STOP_LINE_NEAR_M, STOP_LINE_FAR_M, *arriving_half))
            for side in (1, -1):
                vertex_of[(node_index, edge_index, side)] = len(vertices)
                vertices.append(_walking_point(network, node_index, direction, side, config))
            left, right = vertex_of[(node_index, edge_index, 1)], vertex_of[(node_index, edge_index, -1)]
            add_path(np.stack([vertices[left], vertices[right]]), left, right, len(crossings) - 1)

        patch_paths, patch_walkways = _intersection_walkways(network, node_index, config)
        walkways.extend(patch_walkways)
        for (direction_from, direction_to), points in patch_paths.items():
            a = vertex_of[(node_index, node.edges[direction_from], 1)]
            b = vertex_of[(node_index, node.edges[direction_to], -1)]
            add_path(points, a, b, -1)

    for edge_index, edge in enumerate(network.edges):
        h, length = edge.half_width, edge.length
        for side in (1, -1):
            along = sub_polyline(edge.centerline, _CROSSING_MIDDLE_M, length - _CROSSING_MIDDLE_M)
            points = resample_polyline(
                offset_polyline(along, side * (h + config.walking_offset_m)), _PATH_SPACING_M
            )
            add_path(
                points,
                vertex_of[(edge.start, edge_index, side)],
                vertex_of[(edge.end, edge_index, -side)],
                -1,
            )
            band = (h, h + config.width_m) if side == 1 else (-h - config.width_m, -h)
            walkways.append(edge.strip_from(edge.start, _STUB_M, length - _STUB_M, *band))

    incident: list[list[int]] = [[] for _ in vertices]
    for path_index, (a, b) in enumerate(ends):
        incident[a].append(path_index)
        incident[b].append(path_index)
    graph = WalkGraph(
        vertices=np.array(vertices),
        paths=paths,
        ends=np.array(ends, dtype=np.int64),
        crossing=np.array(crossing_of_path, dtype=np.int64),
        incident=incident,
    )
    return PedestrianSpace(crossings=crossings, stop_lines=stop_lines, walkways=walkways, walk_graph=graph)


def _left_normal(road: np.ndarray, arc_length: float) -> np.ndarray:
    """(2,) unit normal to the left of ``road`` at ``arc_length``."""
    piece = sub_polyline(road, max(arc_length - 0.5, 0.0), arc_length + 0.5)
    tangent = piece[-1] - piece[0]
    tangent = tangent / np.linalg.norm(tangent)
    return np.array([-tangent[1], tangent[0]])


def _intersection_walkways(
    network: RoadNetwork, node_index: int, config: WalkwayConfig
) -> tuple[dict[tuple[int, int], np.ndarray], list[np.ndarray]]:
    """Walking paths round the corners of one intersection, and the walkway polygons there.

    Returns:
        ``{(direction, next direction counter-clockwise): (P, 2) path}`` from the left walking point of the
        first road to the right walking point of the next, and the walkway polygons.
    """
    node = network.nodes[node_index]
    stubs = [
        network.edges[e].strip_from(
            node_index, 0.0, _STUB_M, -network.edges[e].half_width, network.edges[e].half_width
        )
        for e in node.edges.values()
    ]
    core = unary_union([network.intersection_shape(node_index), *[Polygon(s) for s in stubs]])
    ring = LineString(orient(core.buffer(config.walking_offset_m, join_style="mitre"), 1.0).exterior.coords)

    directions = sorted(node.edges)
    paths = {}
    for i, direction in enumerate(directions):
        next_direction = directions[(i + 1) % len(directions)]
        start = _walking_point(network, node_index, direction, 1, config)
        end = _walking_point(network, node_index, next_direction, -1, config)
        start_at, end_at = ring.project(shapely.Point(start)), ring.project(shapely.Point(end))
        if end_at >= start_at:
            pieces = [substring(ring, start_at, end_at)]
        else:  # The way round passes the ring's first vertex.
            pieces = [substring(ring, start_at, ring.length), substring(ring, 0.0, end_at)]
        points = np.concatenate([np.asarray(piece.coords) for piece in pieces])
        paths[(direction, next_direction)] = resample_polyline(_drop_repeats(points), _PATH_SPACING_M)

    reach = _STUB_M + config.width_m + 1.0
    roads_nearby = [
        Polygon(
            network.edges[e].strip_from(
                node_index, 0.0, reach, -network.edges[e].half_width, network.edges[e].half_width
            )
        )
        for e in node.edges.values()
    ]
    patch = core.buffer(config.width_m, join_style="mitre").difference(unary_union([core, *roads_nearby]))
    polygons = [patch] if patch.geom_type == "Polygon" else list(patch.geoms)
    walkways = [np.asarray(orient(p, 1.0).exterior.coords)[:-1] for p in polygons if p.area > 1.0]
    return paths, walkways


def _walking_point(
    network: RoadNetwork, node_index: int, direction: int, side: int, config: WalkwayConfig
) -> np.ndarray:
    """(2,) walking point on ``side`` (+1 left, -1 right) of the crossing of the road leaving ``direction``.

    The walking points are the vertices of the walk graph.
    """
    edge = network.edges[network.nodes[node_index].edges[direction]]
    road = edge.centerline_from(node_index)
    centre = sub_polyline(road, 0.0, _CROSSING_MIDDLE_M)[-1]
    return centre + side * (edge.half_width + config.walking_offset_m) * _left_normal(
        road, _CROSSING_MIDDLE_M
    )


def _drop_repeats(points: np.ndarray) -> np.ndarray:
    """(M, 2) the polyline without consecutive duplicate vertices."""
    keep = np.concatenate([[True], np.linalg.norm(np.diff(points, axis=0), axis=1) > 1e-6])
    return points[keep]
