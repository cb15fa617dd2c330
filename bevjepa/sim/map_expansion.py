"""A TownMap as the nuScenes map expansion file ``maps/expansion/<location>.json``.

It holds every layer ``nuscenes.map_expansion.map_api.NuScenesMap`` reads, with the record fields of the
nuScenes v1.3 map files: the geometric layers (``map_geometry``), the semantic layers pointing at them,
lane ``connectivity`` and lane centre lines as ``arcline_path_3`` (``arcline_paths``). What the town does
not say explicitly is derived from its geometry: the direction of travel of a road block from the lanes
running through it, the road segment or drivable area a record lies on from overlaps, a stop line's
cause from the traffic lights and pedestrian crossings next to it.
"""

import json
import math
from pathlib import Path

import numpy as np
import shapely
from shapely.geometry import LineString, Point, Polygon
from shapely.ops import unary_union

from bevjepa.sim.arcline_paths import centerline_to_arcline_paths
from bevjepa.sim.map_geometry import (
    MapGeometryRecords,
    counter_clockwise,
    drivable_area_components,
    end_edges,
    most_overlapping,
    side_edges,
)
from bevjepa.sim.types import LOCATIONS, MapLane, TownMap

MAP_EXPANSION_VERSION = "1.3"
LANE_DIVIDER_TYPE = "DOUBLE_DASHED_WHITE"
ROAD_DIVIDER_TYPE = "SINGLE_SOLID_YELLOW"
_DIVIDER_SNAP_M = 0.3  # a lane edge this close to a painted divider runs along it
_TRAFFIC_LIGHT_HEIGHT_M = 2.4
_TRAFFIC_LIGHT_BULBS = (("RED", 0.632), ("YELLOW", 0.381), ("GREEN", 0.13))
_SEMANTIC_LAYERS = (
    "drivable_area",
    "road_segment",
    "road_block",
    "lane",
    "ped_crossing",
    "walkway",
    "stop_line",
    "carpark_area",
    "road_divider",
    "lane_divider",
    "traffic_light",
    "lane_connector",
)
Block = tuple[str, Polygon, np.ndarray]  # token, outline, unit direction of travel


def _wrap_angle(angle: float) -> float:
    return (angle + math.pi) % (2.0 * math.pi) - math.pi


def _edge(ring: np.ndarray, index: int) -> np.ndarray:
    return ring[[index, (index + 1) % len(ring)]]  # (2, 2)


def _travel_through(
    block: Polygon, lanes: list[MapLane], lane_middles: np.ndarray, lane_outlines: list[Polygon]
) -> tuple[np.ndarray, np.ndarray] | None:
    """Where the chain of ordinary lanes running through ``block`` enters and leaves it, if any lane does.

    Args:
        block: the road block's outline.
        lanes: every lane of the town.
        lane_middles, lane_outlines: (L,) midpoints of the lanes' centre lines and their outlines.
    """
    is_ordinary = np.array([not lane.is_connector for lane in lanes], dtype=bool)
    inside = np.flatnonzero(is_ordinary & shapely.contains(block.buffer(0.1), lane_middles)).tolist()
    if not inside:
        return None
    first = max(inside, key=lambda index: lane_outlines[index].intersection(block).area)
    last, seen = first, {first}
    predecessors = {successor: index for index in inside for successor in lanes[index].successors}
    while predecessors.get(first) is not None and predecessors[first] not in seen:
        first = predecessors[first]
        seen.add(first)
    while following := [index for index in lanes[last].successors if index in inside and index not in seen]:
        last = following[0]
        seen.add(last)
    return np.asarray(lanes[first].centerline[0], float), np.asarray(lanes[last].centerline[-1], float)


def _approach_block(position: np.ndarray, heading: np.ndarray, blocks: list[Block]) -> str:
    """The nearest road block (within 40 m) whose traffic runs along ``heading``."""
    best_token, best_distance = "", 40.0
    for token, polygon, direction in blocks:
        distance = polygon.distance(Point(position))
        if float(direction @ heading) > 0.7 and distance < best_distance:
            best_token, best_distance = token, distance
    return best_token


def _governs(
    stop_centre: np.ndarray, approach: np.ndarray | None, light: np.ndarray, light_yaw: float
) -> bool:
    """Whether a traffic light at ``light`` governs the traffic halting at a stop line."""
    offset = light - stop_centre
    if approach is None:
        return float(np.linalg.norm(offset)) < 15.0
    along = float(offset @ approach)
    across = abs(float(offset @ np.array([-approach[1], approach[0]])))
    facing = math.cos(light_yaw) * approach[0] + math.sin(light_yaw) * approach[1]
    return facing > 0.7 and -3.0 < along < 40.0 and across < 15.0


class _ExpansionBuilder:
    """Fills the semantic layers of one town, in dependency order."""

    def __init__(self, town: TownMap, seed: int):
        if town.location not in LOCATIONS:
            raise ValueError(f"location {town.location!r} is not one of the devkit's {LOCATIONS}")
        self.town = town
        self.geometry = MapGeometryRecords(seed, town.location)
        self.layers: dict[str, list[dict]] = {layer: [] for layer in _SEMANTIC_LAYERS}
        self.lane_tokens = [self.geometry.token("lane", index) for index in range(len(town.lanes))]
        centre_lines = [LineString(lane.centerline) for lane in town.lanes]
        self.lane_middles = shapely.line_interpolate_point(centre_lines, 0.5, normalized=True)  # (L,)
        self.lane_outlines = [Polygon(lane.polygon).buffer(0) for lane in town.lanes]
        self.dividers = {
            kind: unary_union([LineString(line) for line in lines]) if lines else None
            for kind, lines in (
                (LANE_DIVIDER_TYPE, town.lane_dividers),
                (ROAD_DIVIDER_TYPE, town.road_dividers),
            )
        }

    def polygon_record(self, layer: str, index: int, ring: np.ndarray, **fields: object) -> dict:
        record = {"token": self.geometry.token(layer, index)}
        record["polygon_token"] = self.geometry.polygon((layer, index), ring)
        record.update(fields)
        self.layers[layer].append(record)
        return record

    def drivable_areas(self) -> list[tuple[str, Polygon]]:
        areas = []
        for index, part in enumerate(drivable_area_components(self.town)):
            holes = [np.asarray(hole.coords) for hole in part.interiors]
            polygon_token = self.geometry.polygon(
                ("drivable_area", index), np.asarray(part.exterior.coords), holes
            )
            token = self.geometry.token("drivable_area", index)
            self.layers["drivable_area"].append({"token": token, "polygon_tokens": [polygon_token]})
            areas.append((token, part))
        return areas

    def divider_segments(self, ring: np.ndarray, edges: list[tuple[int, int]]) -> list[dict]:
        """``*_lane_divider_segments``: both nodes of each boundary edge running along a painted divider."""
        if not edges:
            return []
        pairs = np.array(edges)  # (E, 2) vertex indices
        middles = shapely.points((ring[pairs[:, 0]] + ring[pairs[:, 1]]) / 2.0)
        kinds = np.full(len(pairs), "", dtype=object)
        for kind, union in reversed(self.dividers.items()):  # the first kind wins where both are near
            if union is not None:
                kinds[shapely.distance(union, middles) < _DIVIDER_SNAP_M] = kind
        return [
            {"node_token": self.geometry.node(*ring[vertex]), "segment_type": kind}
            for (a, b), kind in zip(edges, kinds, strict=True)
            if kind
            for vertex in (a, b)
        ]

    def lanes(self) -> None:
        for index, lane in enumerate(self.town.lanes):
            ring = counter_clockwise(lane.polygon)
            record = {
                "token": self.lane_tokens[index],
                "polygon_token": self.geometry.polygon(("lane", index), ring),
            }
            if lane.is_connector:
                self.layers["lane_connector"].append(record)
                continue
            from_edge, to_edge = end_edges(ring, lane.centerline[0], lane.centerline[-1])
            left, right = side_edges(len(ring), from_edge, to_edge)
            record["lane_type"] = "CAR"
            record["from_edge_line_token"] = self.geometry.line(("lane_from", index), _edge(ring, from_edge))
            record["to_edge_line_token"] = self.geometry.line(("lane_to", index), _edge(ring, to_edge))
            record["left_lane_divider_segments"] = self.divider_segments(ring, left)
            record["right_lane_divider_segments"] = self.divider_segments(ring, right)
            self.layers["lane"].append(record)

    def road_blocks(self, segments: list[tuple[str, Polygon]]) -> list[Block]:
        blocks = []
        for index, ring in enumerate(self.town.road_blocks):
            ring = counter_clockwise(ring)
            outline = Polygon(ring).buffer(0)
            travel = _travel_through(outline, self.town.lanes, self.lane_middles, self.lane_outlines)
            if travel is None:  # no lane says which way: take the shortest edge as the entry
                from_edge = int(np.argmin(np.linalg.norm(np.roll(ring, -1, axis=0) - ring, axis=1)))
                travel = (_edge(ring, from_edge).mean(axis=0), np.asarray(outline.centroid.coords[0]))
                travel = (travel[0], travel[0] + 2.0 * (travel[1] - travel[0]))
            from_edge, to_edge = end_edges(ring, *travel)
            record = self.polygon_record(
                "road_block",
                index,
                ring,
                from_edge_line_token=self.geometry.line(("road_block_from", index), _edge(ring, from_edge)),
                to_edge_line_token=self.geometry.line(("road_block_to", index), _edge(ring, to_edge)),
                road_segment_token=most_overlapping(outline, segments),
            )
            direction = _edge(ring, to_edge).mean(axis=0) - _edge(ring, from_edge).mean(axis=0)
            blocks.append((record["token"], outline, direction / max(float(np.linalg.norm(direction)), 1e-9)))
        return blocks

    def traffic_lights(self, blocks: list[Block]) -> None:
        for index, light in enumerate(self.town.traffic_lights):
            position = np.asarray(light.position, dtype=np.float64)
            heading = np.array([math.cos(light.yaw), math.sin(light.yaw)])
            across = np.array([-heading[1], heading[0]]) * 0.5
            bulbs = [
                {
                    "color": color,
                    "shape": "CIRCLE",
                    "rel_pos": {"tx": 0.0, "ty": 0.0, "tz": height, "rx": 0.0, "ry": 0.0, "rz": 0.0},
                    "to_road_block_tokens": [],
                }
                for color, height in _TRAFFIC_LIGHT_BULBS
            ]
            x, y, facing = float(position[0]), float(position[1]), _wrap_angle(light.yaw + math.pi)
            line = np.stack([position - across, position + across])
            self.layers["traffic_light"].append(
                {
                    "token": self.geometry.token("traffic_light", index),
                    "line_token": self.geometry.line(("traffic_light", index), line),
                    "traffic_light_type": "VERTICAL",
                    "from_road_block_token": _approach_block(position, heading, blocks),
                    "items": bulbs,
                    # The lamp faces the traffic it controls, against the direction of approach.
                    "pose": {
                        "tx": x,
                        "ty": y,
                        "tz": _TRAFFIC_LIGHT_HEIGHT_M,
                        "rx": 0.0,
                        "ry": 0.0,
                        "rz": facing,
                    },
                }
            )

    def stop_lines(self, blocks: list[Block], crossings: list[tuple[str, Polygon]]) -> None:
        lights = list(zip(self.layers["traffic_light"], self.town.traffic_lights, strict=True))
        for index, ring in enumerate(self.town.stop_lines):
            outline = Polygon(ring).buffer(0)
            block_token = most_overlapping(outline, [(token, polygon) for token, polygon, _ in blocks])
            approach = next((direction for token, _, direction in blocks if token == block_token), None)
            centre = np.asarray(outline.centroid.coords[0])
            light_tokens = [
                record["token"]
                for record, light in lights
                if _governs(centre, approach, np.asarray(light.position, float), light.yaw)
            ]
            crossing_tokens = [token for token, polygon in crossings if polygon.distance(outline) < 5.0]
            if light_tokens:
                stop_type, crossing_tokens = "TRAFFIC_LIGHT", []
            else:
                stop_type = "PED_CROSSING" if crossing_tokens else "STOP_SIGN"
            self.polygon_record(
                "stop_line",
                index,
                counter_clockwise(ring),
                stop_line_type=stop_type,
                ped_crossing_tokens=crossing_tokens,
                traffic_light_tokens=light_tokens,
                road_block_token=block_token,
            )

    def dividers_layers(self, segments: list[tuple[str, Polygon]]) -> None:
        for index, line in enumerate(self.town.road_dividers):
            self.layers["road_divider"].append(
                {
                    "token": self.geometry.token("road_divider", index),
                    "line_token": self.geometry.line(("road_divider", index), line),
                    "road_segment_token": most_overlapping(LineString(line), segments),
                }
            )
        for index, line in enumerate(self.town.lane_dividers):
            line_token = self.geometry.line(("lane_divider", index), line)
            node_tokens = self.geometry.lines[-1]["node_tokens"]
            kinds = [LANE_DIVIDER_TYPE] * (len(node_tokens) - 1) + ["NIL"]  # the last node starts no segment
            self.layers["lane_divider"].append(
                {
                    "token": self.geometry.token("lane_divider", index),
                    "line_token": line_token,
                    "lane_divider_segments": [
                        {"node_token": node, "segment_type": kind}
                        for node, kind in zip(node_tokens, kinds, strict=True)
                    ],
                }
            )

    def connectivity(self) -> dict[str, dict[str, list[str]]]:
        incoming: list[list[str]] = [[] for _ in self.town.lanes]
        for index, lane in enumerate(self.town.lanes):
            for successor in lane.successors:
                incoming[successor].append(self.lane_tokens[index])
        return {
            token: {"incoming": incoming[index], "outgoing": [self.lane_tokens[s] for s in lane.successors]}
            for index, (token, lane) in enumerate(zip(self.lane_tokens, self.town.lanes, strict=True))
        }


def build_map_expansion(town: TownMap, seed: int) -> dict:
    """The map expansion JSON content of ``town``.

    Args:
        town: the town; its location must be one the devkit accepts.
        seed: dataset seed, part of every token.

    Returns:
        A JSON-serialisable dict with every layer NuScenesMap reads.
    """
    builder = _ExpansionBuilder(town, seed)
    drivable = builder.drivable_areas()
    segments = []
    for index, segment in enumerate(town.road_segments):
        outline = Polygon(segment.polygon).buffer(0)
        record = builder.polygon_record(
            "road_segment",
            index,
            counter_clockwise(segment.polygon),
            is_intersection=bool(segment.is_intersection),
            drivable_area_token=most_overlapping(outline, drivable),
        )
        segments.append((record["token"], outline))
    builder.lanes()
    blocks = builder.road_blocks(segments)
    crossings = []
    for index, ring in enumerate(town.ped_crossings):
        outline = Polygon(ring).buffer(0)
        segment_token = most_overlapping(outline, segments)
        record = builder.polygon_record(
            "ped_crossing", index, counter_clockwise(ring), road_segment_token=segment_token
        )
        crossings.append((record["token"], outline))
    for index, ring in enumerate(town.walkways):
        builder.polygon_record("walkway", index, counter_clockwise(ring))
    builder.traffic_lights(blocks)
    builder.stop_lines(blocks, crossings)
    for index, ring in enumerate(town.carpark_areas):
        rectangle = np.asarray(Polygon(ring).minimum_rotated_rectangle.exterior.coords)[:3]  # (3, 2)
        sides = np.diff(rectangle, axis=0)  # (2, 2)
        long_side = sides[int(np.argmax(np.linalg.norm(sides, axis=1)))]
        orientation = _wrap_angle(math.atan2(long_side[1], long_side[0]))  # the direction cars park along
        builder.polygon_record(
            "carpark_area", index, counter_clockwise(ring), orientation=orientation, road_block_token=""
        )
    builder.dividers_layers(segments)
    builder.geometry.share_touching_nodes()
    arcline_paths = {
        token: centerline_to_arcline_paths(lane.centerline)
        for token, lane in zip(builder.lane_tokens, town.lanes, strict=True)
    }
    return {
        "version": MAP_EXPANSION_VERSION,
        "canvas_edge": [float(town.size_m[0]), float(town.size_m[1])],
        "polygon": builder.geometry.polygons,
        "line": builder.geometry.lines,
        "node": builder.geometry.nodes,
        **builder.layers,
        "connectivity": builder.connectivity(),
        "arcline_path_3": arcline_paths,
    }


def write_map_expansion(dataroot: Path, town: TownMap, seed: int) -> Path:
    """Write ``dataroot/maps/expansion/<location>.json``.

    Args:
        dataroot: the nuScenes dataroot.
        town: the town.
        seed: dataset seed.

    Returns:
        The written file.
    """
    path = dataroot / "maps" / "expansion" / f"{town.location}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(build_map_expansion(town, seed)))  # dumps, unlike dump, encodes in C
    return path
