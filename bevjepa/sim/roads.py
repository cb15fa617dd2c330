"""The road network of a town: intersections on a jittered grid joined by curved two-way roads.

Roads leave an intersection along one of the four compass directions and bend smoothly (a cubic Bezier
curve) towards the next intersection, whose position is jittered, so most roads are curved. Each
intersection is the square where its roads overlap, with its corners rounded off by the curb.
"""

from dataclasses import dataclass, field

import numpy as np
import shapely
from shapely.geometry import Polygon
from shapely.geometry.polygon import orient

from bevjepa.sim.planar import cubic_bezier, cumulative_length, resample_polyline, strip_polygon, sub_polyline

# Unit vectors of the compass directions an intersection's roads leave along: east, north, west, south.
DIRECTIONS = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [0.0, -1.0]])
_CENTERLINE_SPACING_M = 2.0


@dataclass(frozen=True)
class RoadNetworkConfig:
    """Layout of the road grid.

    Attributes:
        grid_shape: intersections along x and y.
        spacing_m: range of the distance between neighbouring grid lines.
        jitter_m: largest shift of an intersection away from its grid position.
        margin_m: room between the outermost roads and the map border (for buildings and car parks).
        lane_width_m: range of lane widths; one width per road.
        removed_roads: grid roads left out (never creating a dead end or a disconnected town).
        curb_radius_m: radius of the rounded curb at an intersection's corners.
        arterial_speed_mps, local_speed_mps: speed limits of the two-lane-per-direction arterials (one grid
            row and one grid column) and of the other, one-lane-per-direction roads.
    """

    grid_shape: tuple[int, int] = (3, 3)
    spacing_m: tuple[float, float] = (90.0, 115.0)
    jitter_m: float = 16.0
    margin_m: float = 50.0
    lane_width_m: tuple[float, float] = (3.3, 3.7)
    removed_roads: int = 1
    curb_radius_m: float = 6.0
    arterial_speed_mps: float = 13.9
    local_speed_mps: float = 11.1


@dataclass
class RoadEdge:
    """A two-way road between two intersections.

    Attributes:
        start, end: node indices.
        start_direction, end_direction: compass direction (index into ``DIRECTIONS``) in which the road
            leaves its start node, and in which it leaves its end node (towards the start).
        lanes_per_direction: 1 or 2.
        lane_width: metres.
        speed_limit: m/s.
        centerline: (P, 2) from the start node's boundary to the end node's, the road divider.
    """

    start: int
    end: int
    start_direction: int
    end_direction: int
    lanes_per_direction: int
    lane_width: float
    speed_limit: float
    centerline: np.ndarray = field(repr=False)

    @property
    def half_width(self) -> float:
        """Distance from the centerline to either curb."""
        return self.lanes_per_direction * self.lane_width

    @property
    def length(self) -> float:
        """Length of the centerline."""
        return float(cumulative_length(self.centerline)[-1])

    def direction_at(self, node: int) -> int:
        """Compass direction in which this road leaves ``node``."""
        return self.start_direction if node == self.start else self.end_direction

    def centerline_from(self, node: int) -> np.ndarray:
        """(P, 2) centerline ordered away from ``node``; its left side is the counter-clockwise side."""
        return self.centerline if node == self.start else self.centerline[::-1].copy()

    def strip_from(self, node: int, near: float, far: float, right: float, left: float) -> np.ndarray:
        """Outline of the band ``near..far`` metres along the road from ``node``, ``right..left`` sideways.

        Args:
            node: one of the road's end nodes; arc length and the sides are seen from it.
            near, far: arc lengths from the node's boundary, ``near < far``.
            right, left: sideways offsets (positive to the left), ``right < left``.

        Returns:
            (N, 2) counter-clockwise polygon.
        """
        return strip_polygon(sub_polyline(self.centerline_from(node), near, far), right, left)


@dataclass
class RoadNode:
    """An intersection.

    Attributes:
        position: (2,) its centre.
        radius: distance from the centre to where its roads begin.
        edges: compass direction -> index of the road leaving in that direction.
    """

    position: np.ndarray
    radius: float
    edges: dict[int, int]


@dataclass
class RoadNetwork:
    """Intersections and roads of one town, plus the canvas they lie on."""

    nodes: list[RoadNode]
    edges: list[RoadEdge]
    size_m: tuple[float, float]
    keep_left: bool

    def intersection_polygon(self, node_index: int) -> np.ndarray:
        """(N, 2) counter-clockwise outline of an intersection's drivable surface."""
        return np.asarray(orient(self.intersection_shape(node_index), 1.0).exterior.coords)[:-1]

    def intersection_shape(self, node_index: int) -> Polygon:
        """The intersection as a shapely polygon: the roads' overlap with the curb corners rounded off."""
        node = self.nodes[node_index]
        half_widths = {d: self.edges[e].half_width for d, e in node.edges.items()}
        reach = {}
        for d in range(4):
            if d in half_widths:
                reach[d] = node.radius
            else:  # No road this way: the curb runs straight along the roads on either side.
                reach[d] = max(half_widths[p] for p in ((d + 1) % 4, (d + 3) % 4) if p in half_widths)
        x, y = node.position
        shape = shapely.box(x - reach[2], y - reach[3], x + reach[0], y + reach[1])
        for d in range(4):
            d_next = (d + 1) % 4
            if d in half_widths and d_next in half_widths:
                shape = shape.difference(self._curb_corner(node, d, half_widths[d_next], half_widths[d]))
        return shape

    @staticmethod
    def _curb_corner(
        node: RoadNode, direction: int, half_width_along: float, half_width_across: float
    ) -> Polygon:
        """The area a quarter-ellipse curb cuts from the corner between ``direction`` and the next one."""
        along, across = DIRECTIONS[direction], DIRECTIONS[(direction + 1) % 4]
        corner = node.position + node.radius * (along + across)
        semi_along, semi_across = node.radius - half_width_along, node.radius - half_width_across
        theta = np.linspace(0.0, np.pi / 2, 13)[:, None]
        arc = corner - semi_along * np.cos(theta) * along - semi_across * np.sin(theta) * across
        return Polygon(np.concatenate([corner[None], arc]))


def generate_road_network(
    config: RoadNetworkConfig, keep_left: bool, rng: np.random.Generator
) -> RoadNetwork:
    """Lay out a connected road grid without dead ends.

    Args:
        config: grid layout.
        keep_left: True where traffic drives on the left (Singapore), False for the right (Boston).
        rng: source of the layout's randomness.

    Returns:
        The network; every node has at least two roads and every coordinate lies inside ``size_m``.
    """
    nx, ny = config.grid_shape
    grid_x = np.concatenate([[0.0], np.cumsum(rng.uniform(*config.spacing_m, nx - 1))])
    grid_y = np.concatenate([[0.0], np.cumsum(rng.uniform(*config.spacing_m, ny - 1))])
    offset = config.margin_m + config.jitter_m
    positions = {
        (i, j): np.array([grid_x[i], grid_y[j]]) + offset + rng.uniform(-config.jitter_m, config.jitter_m, 2)
        for i in range(nx)
        for j in range(ny)
    }
    size = (float(grid_x[-1] + 2 * offset), float(grid_y[-1] + 2 * offset))

    grid_links = [((i, j), (i + 1, j), 0) for j in range(ny) for i in range(nx - 1)]
    grid_links += [((i, j), (i, j + 1), 1) for i in range(nx) for j in range(ny - 1)]
    grid_links = _remove_links(grid_links, list(positions), config.removed_roads, rng)
    arterial_row, arterial_column = int(rng.integers(ny)), int(rng.integers(nx))

    node_ids = {key: index for index, key in enumerate(positions)}
    links = []
    for a, b, direction in grid_links:
        arterial = (direction == 0 and a[1] == arterial_row) or (direction == 1 and a[0] == arterial_column)
        links.append((node_ids[a], node_ids[b], direction, 2 if arterial else 1))
    lane_widths = rng.uniform(*config.lane_width_m, len(links))

    nodes = [RoadNode(position=positions[key], radius=0.0, edges={}) for key in positions]
    for index, (a, b, direction, _) in enumerate(links):
        nodes[a].edges[direction] = index
        nodes[b].edges[(direction + 2) % 4] = index
    for node_index, node in enumerate(nodes):
        widest = max(
            lanes * lane_widths[i] for i, (a, b, _, lanes) in enumerate(links) if node_index in (a, b)
        )
        node.radius = widest + config.curb_radius_m

    edges = []
    for index, (a, b, direction, lanes) in enumerate(links):
        speed = config.arterial_speed_mps if lanes == 2 else config.local_speed_mps
        back_direction = (direction + 2) % 4
        centerline = _road_centerline(nodes[a], direction, nodes[b], back_direction)
        edges.append(
            RoadEdge(a, b, direction, back_direction, lanes, float(lane_widths[index]), speed, centerline)
        )
    return RoadNetwork(nodes=nodes, edges=edges, size_m=size, keep_left=keep_left)


def _road_centerline(start: RoadNode, start_direction: int, end: RoadNode, end_direction: int) -> np.ndarray:
    """(P, 2) centerline leaving each node along its compass direction and bending in between."""
    p0 = start.position + start.radius * DIRECTIONS[start_direction]
    p3 = end.position + end.radius * DIRECTIONS[end_direction]
    handle = 0.4 * np.linalg.norm(p3 - p0)
    curve = cubic_bezier(
        p0, p0 + handle * DIRECTIONS[start_direction], p3 + handle * DIRECTIONS[end_direction], p3
    )
    return resample_polyline(curve, _CENTERLINE_SPACING_M)


def _remove_links(
    links: list[tuple], keys: list[tuple[int, int]], count: int, rng: np.random.Generator
) -> list[tuple]:
    """Drop up to ``count`` links while every node keeps two links and the grid stays connected."""
    kept = list(links)
    for candidate in [links[i] for i in rng.permutation(len(links))]:
        if count == 0:
            break
        remaining = [link for link in kept if link is not candidate]
        degree = dict.fromkeys(keys, 0)
        for a, b, _ in remaining:
            degree[a] += 1
            degree[b] += 1
        if min(degree.values()) >= 2 and _connected(remaining, keys):
            kept = remaining
            count -= 1
    return kept


def _connected(links: list[tuple], keys: list[tuple[int, int]]) -> bool:
    """Whether the undirected graph of ``links`` over ``keys`` is connected."""
    neighbours = {key: [] for key in keys}
    for a, b, _ in links:
        neighbours[a].append(b)
        neighbours[b].append(a)
    seen, frontier = {keys[0]}, [keys[0]]
    while frontier:
        for other in neighbours[frontier.pop()]:
            if other not in seen:
                seen.add(other)
                frontier.append(other)
    return len(seen) == len(keys)
