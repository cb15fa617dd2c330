"""The geometric layers of a nuScenes map expansion (``node``, ``line``, ``polygon``) and polygon helpers.

nuScenes maps share nodes between touching records: a lane's exit edge is made of nodes that the next
lane, road block or intersection also has on its outline, which is how ``NuScenesMap.get_next_roads``
finds what follows. ``MapGeometryRecords`` keeps one node per point and, once every record exists,
inserts into each polygon outline the nodes of other records that lie on its edges.
"""

import numpy as np
import shapely
from shapely.geometry import LineString, Point, Polygon
from shapely.geometry.polygon import orient
from shapely.ops import unary_union

from bevjepa.sim.nuscenes_tokens import map_token
from bevjepa.sim.types import TownMap

NODE_RESOLUTION_DIGITS = 3  # nodes are merged and stored at millimetre resolution


class MapGeometryRecords:
    """Builds the ``node``, ``line`` and ``polygon`` layers of one map."""

    def __init__(self, seed: int, location: str):
        self.seed, self.location = seed, location
        self.nodes: list[dict] = []
        self.lines: list[dict] = []
        self.polygons: list[dict] = []
        self._node_tokens: dict[tuple[float, float], str] = {}

    def token(self, *parts: object) -> str:
        """A map-expansion token for a record of this map."""
        return map_token(self.seed, self.location, *parts)

    def node(self, x: float, y: float) -> str:
        """Token of the node at (x, y), created on first use."""
        (key,) = np.round(np.array([[x, y]], dtype=np.float64), NODE_RESOLUTION_DIGITS).tolist()
        return self._node_at(tuple(key))

    def _node_at(self, key: tuple[float, float]) -> str:
        if key not in self._node_tokens:
            self._node_tokens[key] = self.token("node", *key)
            self.nodes.append({"token": self._node_tokens[key], "x": key[0], "y": key[1]})
        return self._node_tokens[key]

    def node_chain(self, points: np.ndarray, closed: bool) -> list[str]:
        """Node tokens along (N, 2) ``points``, without repeats; a closed ring does not repeat its start."""
        keys = np.round(np.asarray(points, dtype=np.float64), NODE_RESOLUTION_DIGITS).tolist()
        tokens = [self._node_at((x, y)) for x, y in keys]
        chain = [token for index, token in enumerate(tokens) if index == 0 or token != tokens[index - 1]]
        if closed and len(chain) > 1 and chain[0] == chain[-1]:
            chain.pop()
        return chain

    def line(self, name: tuple, points: np.ndarray) -> str:
        """Add a line through (N, 2) ``points``; returns its token."""
        node_tokens = self.node_chain(points, closed=False)
        if len(node_tokens) < 2:
            raise ValueError(f"{self.location}: line {name} has fewer than two distinct points")
        token = self.token("line", *name)
        self.lines.append({"token": token, "node_tokens": node_tokens})
        return token

    def polygon(self, name: tuple, exterior: np.ndarray, holes: list[np.ndarray] = ()) -> str:
        """Add a polygon with an (N, 2) exterior ring and optional hole rings; returns its token."""
        exterior_tokens = self.node_chain(exterior, closed=True)
        if len(exterior_tokens) < 3:
            raise ValueError(f"{self.location}: polygon {name} has fewer than three distinct vertices")
        token = self.token("polygon", *name)
        hole_records = [{"node_tokens": self.node_chain(hole, closed=True)} for hole in holes]
        self.polygons.append({"token": token, "exterior_node_tokens": exterior_tokens, "holes": hole_records})
        return token

    def share_touching_nodes(self) -> None:
        """Insert into every polygon ring, in order, the nodes lying on its edges (T-junctions)."""
        coords = np.array([[node["x"], node["y"]] for node in self.nodes], dtype=np.float64)  # (K, 2)
        index_of = {node["token"]: index for index, node in enumerate(self.nodes)}
        tree = shapely.STRtree(shapely.points(coords))
        tolerance = 0.5 * 10.0**-NODE_RESOLUTION_DIGITS

        def with_nodes_on_edges(ring: list[str]) -> list[str]:
            ring_nodes = np.array([index_of[token] for token in ring])
            starts, ends = coords[ring_nodes], coords[np.roll(ring_nodes, -1)]  # (R, 2) each
            edges = shapely.linestrings(np.stack([starts, ends], axis=1))
            edge_ids, node_ids = tree.query(edges, predicate="dwithin", distance=tolerance)  # (Q,) each
            points, edge_starts, edge_vectors = (
                coords[node_ids],
                starts[edge_ids],
                ends[edge_ids] - starts[edge_ids],
            )
            away_from_ends = (np.linalg.norm(points - edge_starts, axis=1) > tolerance) & (
                np.linalg.norm(points - ends[edge_ids], axis=1) > tolerance
            )
            along = np.sum((points - edge_starts) * edge_vectors, axis=1) / np.sum(edge_vectors**2, axis=1)
            edge_ids, node_ids, along = (
                edge_ids[away_from_ends],
                node_ids[away_from_ends],
                along[away_from_ends],
            )
            order = np.lexsort((along, edge_ids))
            inserted: dict[int, list[str]] = {}
            for edge, node in zip(edge_ids[order], node_ids[order], strict=True):
                inserted.setdefault(int(edge), []).append(self.nodes[node]["token"])
            result = []
            for edge, token in enumerate(ring):
                result.append(token)
                result.extend(inserted.get(edge, ()))
            return result

        for polygon in self.polygons:
            polygon["exterior_node_tokens"] = with_nodes_on_edges(polygon["exterior_node_tokens"])
            for hole in polygon["holes"]:
                hole["node_tokens"] = with_nodes_on_edges(hole["node_tokens"])


def drivable_area_components(town: TownMap) -> list[Polygon]:
    """The drivable area as disjoint polygons with holes: the union of ``town.drivable_area``.

    Args:
        town: the town.

    Returns:
        Shapely polygons, exteriors counter-clockwise.
    """
    union = unary_union([Polygon(ring).buffer(0) for ring in town.drivable_area])
    parts = [union] if isinstance(union, Polygon) else list(getattr(union, "geoms", []))
    return [orient(part, 1.0) for part in parts if isinstance(part, Polygon) and not part.is_empty]


def counter_clockwise(ring: np.ndarray) -> np.ndarray:
    """The (N, 2) ring, reversed if it runs clockwise."""
    ring = np.asarray(ring, dtype=np.float64)
    x, y = ring[:, 0], ring[:, 1]
    signed_area = 0.5 * np.sum(x * np.roll(y, -1) - np.roll(x, -1) * y)
    return ring if signed_area >= 0 else ring[::-1]


def most_overlapping(geometry: Polygon | LineString, candidates: list[tuple[str, Polygon]]) -> str:
    """Token of the candidate sharing the most area (length, for a line) with ``geometry``; '' if none."""
    best_token, best_overlap = "", 0.0
    for token, candidate in candidates:
        shared = geometry.intersection(candidate)
        overlap = shared.length if isinstance(geometry, LineString) else shared.area
        if overlap > best_overlap:
            best_token, best_overlap = token, overlap
    return best_token


def _edge_distances(ring: np.ndarray, point: np.ndarray) -> np.ndarray:
    """(N,) distance from ``point`` to each edge (i, i+1) of the (N, 2) ring."""
    edges = shapely.linestrings(np.stack([ring, np.roll(ring, -1, axis=0)], axis=1))
    return shapely.distance(edges, Point(point))


def end_edges(ring: np.ndarray, start: np.ndarray, end: np.ndarray) -> tuple[int, int]:
    """Edges of a counter-clockwise ring through which travel from ``start`` to ``end`` enters and leaves.

    Args:
        ring: (N, 2) outline.
        start, end: (2,) where the travel begins and ends, on or near the outline.

    Returns:
        Indices i of the entry and exit edges (i, i+1): the edges closest to ``start`` and ``end``, the exit
        being the closest other edge should both be the same one.
    """
    from_edge = int(np.argmin(_edge_distances(ring, start)))
    to_distances = _edge_distances(ring, end)
    to_distances[from_edge] = np.inf
    return from_edge, int(np.argmin(to_distances))


def side_edges(
    count: int, from_edge: int, to_edge: int
) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """Vertex pairs of the boundary edges left and right of the travel direction, each in travel order.

    A counter-clockwise ring keeps its interior on the left, so after the entry edge it runs forward along
    the right-hand boundary, crosses the exit edge and comes back along the left-hand boundary.

    Args:
        count: number of ring vertices.
        from_edge, to_edge: the entry and exit edges.

    Returns:
        (left, right) lists of (vertex, next vertex) index pairs.
    """
    right_count, left_count = (to_edge - from_edge - 1) % count, (from_edge - to_edge - 1) % count
    right = [(i % count, (i + 1) % count) for i in range(from_edge + 1, from_edge + 1 + right_count)]
    left_ring_order = [(i % count, (i + 1) % count) for i in range(to_edge + 1, to_edge + 1 + left_count)]
    return [(b, a) for a, b in reversed(left_ring_order)], right
