"""Lanes and lane connectors of a road network, with what traffic needs to know about each.

Lanes run along a road from one intersection's boundary to the next; connectors are the paths through an
intersection from an incoming lane to an outgoing one. Turns towards the curb start and end in the curb
lane, turns across oncoming traffic in the lane next to the road divider, and straight connectors keep
their lane.
"""

from dataclasses import dataclass

import numpy as np

from bevjepa.sim.planar import (
    cubic_bezier,
    offset_polyline,
    resample_polyline,
    strip_polygon,
    vertex_headings,
    wrap_angle,
)
from bevjepa.sim.roads import DIRECTIONS, RoadNetwork
from bevjepa.sim.types import MapLane

_CONNECTOR_SPACING_M = 1.0
# Comfortable lateral acceleration that sets the speed through curves and turns.
_LATERAL_ACCELERATION_MPS2 = 2.0


@dataclass(frozen=True)
class LaneInfo:
    """Where a lane of ``TownMap.lanes`` sits in the road network.

    Attributes:
        edge: road index for a lane, -1 for a connector.
        forward: for a lane, whether it runs from the road's start node to its end node.
        rank: 0 for the curb lane, counting towards the road divider; for a connector, its incoming lane's.
        node: the intersection a lane ends at, or that a connector crosses.
        speed_limit: m/s, lowered where the lane curves.
    """

    edge: int
    forward: bool
    rank: int
    node: int
    speed_limit: float


def build_lanes(network: RoadNetwork) -> tuple[list[MapLane], list[LaneInfo]]:
    """All lanes (first) and connectors (after them) of a network, linked through their successors.

    Args:
        network: the road network.

    Returns:
        The lanes and, for each, its ``LaneInfo``.
    """
    lanes: list[MapLane] = []
    infos: list[LaneInfo] = []
    # Lanes keep to the right (to the left in Singapore) of the road divider, seen along travel.
    side = 1.0 if network.keep_left else -1.0
    for edge_index, edge in enumerate(network.edges):
        n = edge.lanes_per_direction
        for forward in (True, False):
            from_node = edge.start if forward else edge.end
            to_node = edge.end if forward else edge.start
            road = edge.centerline_from(from_node)
            for rank in range(n):
                offset = side * (n - rank - 0.5) * edge.lane_width
                centerline = offset_polyline(road, offset)
                polygon = strip_polygon(centerline, -edge.lane_width / 2, edge.lane_width / 2)
                lanes.append(MapLane(polygon=polygon, centerline=centerline))
                limit = min(edge.speed_limit, _curve_speed(centerline))
                infos.append(LaneInfo(edge_index, forward, rank, to_node, limit))

    for node_index in range(len(network.nodes)):
        incoming = [i for i, info in enumerate(infos) if info.edge >= 0 and info.node == node_index]
        outgoing = [
            i
            for i, info in enumerate(infos)
            if info.edge >= 0 and info.node != node_index and node_index in _ends(network, info.edge)
        ]
        for lane_in in incoming:
            targets = _connector_targets(network, node_index, lane_in, outgoing, infos)
            for lane_out in targets:
                centerline = _connector_centerline(lanes[lane_in].centerline, lanes[lane_out].centerline)
                width = network.edges[infos[lane_in].edge].lane_width
                polygon = strip_polygon(centerline, -width / 2, width / 2)
                lanes[lane_in].successors.append(len(lanes))
                lanes.append(
                    MapLane(polygon=polygon, centerline=centerline, successors=[lane_out], is_connector=True)
                )
                limit = min(network.edges[infos[lane_out].edge].speed_limit, _curve_speed(centerline))
                infos.append(LaneInfo(-1, True, infos[lane_in].rank, node_index, limit))
    return lanes, infos


def _ends(network: RoadNetwork, edge_index: int) -> tuple[int, int]:
    edge = network.edges[edge_index]
    return edge.start, edge.end


def _connector_targets(
    network: RoadNetwork, node_index: int, lane_in: int, outgoing: list[int], infos: list[LaneInfo]
) -> list[int]:
    """Outgoing lanes that ``lane_in`` connects to at ``node_index``."""
    info_in = infos[lane_in]
    arrive_direction = network.edges[info_in.edge].direction_at(node_index)
    lanes_in = network.edges[info_in.edge].lanes_per_direction
    targets = []
    fallback = []
    for lane_out in outgoing:
        info_out = infos[lane_out]
        leave_direction = network.edges[info_out.edge].direction_at(node_index)
        lanes_out = network.edges[info_out.edge].lanes_per_direction
        turn = _turn(arrive_direction, leave_direction, network.keep_left)
        if turn == "u-turn":
            continue
        if info_out.rank == min(info_in.rank, lanes_out - 1):
            fallback.append(lane_out)
        if (
            (turn == "straight" and info_out.rank == min(info_in.rank, lanes_out - 1))
            or (turn == "curb" and info_in.rank == 0 and info_out.rank == 0)
            or (turn == "across" and info_in.rank == lanes_in - 1 and info_out.rank == lanes_out - 1)
        ):
            targets.append(lane_out)
    # A lane that no rule serves (an inner lane at a bend) keeps its rank through the turn.
    return targets or fallback


def _turn(arrive_direction: int, leave_direction: int, keep_left: bool) -> str:
    """``straight``, ``curb`` (towards the curb side), ``across`` (across oncoming traffic) or ``u-turn``."""
    if leave_direction == arrive_direction:
        return "u-turn"
    if leave_direction == (arrive_direction + 2) % 4:
        return "straight"
    travel_in, travel_out = -DIRECTIONS[arrive_direction], DIRECTIONS[leave_direction]
    turns_left = travel_in[0] * travel_out[1] - travel_in[1] * travel_out[0] > 0
    return "curb" if turns_left == keep_left else "across"


def _connector_centerline(lane_in: np.ndarray, lane_out: np.ndarray) -> np.ndarray:
    """(P, 2) smooth path from the end of ``lane_in`` to the start of ``lane_out``, tangent to both."""
    start, end = lane_in[-1], lane_out[0]
    start_heading, end_heading = vertex_headings(lane_in)[-1], vertex_headings(lane_out)[0]
    turning = abs(wrap_angle(end_heading - start_heading)) > 0.2
    # 0.39 x chord approximates a circular arc for a right-angle turn; a straight path gets a third.
    handle = (0.39 if turning else 1 / 3) * np.linalg.norm(end - start)
    curve = cubic_bezier(
        start,
        start + handle * np.array([np.cos(start_heading), np.sin(start_heading)]),
        end - handle * np.array([np.cos(end_heading), np.sin(end_heading)]),
        end,
    )
    return resample_polyline(curve, _CONNECTOR_SPACING_M)


def _curve_speed(centerline: np.ndarray) -> float:
    """Highest speed (m/s) at which the sharpest bend of ``centerline`` stays comfortable."""
    heading = vertex_headings(centerline)
    steps = np.linalg.norm(np.diff(centerline, axis=0), axis=1)
    curvature = np.abs(wrap_angle(np.diff(heading))) / np.maximum(steps, 1e-6)
    return float(np.sqrt(_LATERAL_ACCELERATION_MPS2 / max(curvature.max(), 1e-4)))
