"""The map expansion and semantic prior, read back through the devkit's NuScenesMap, MapMask and BitMap."""

import json
import math

import numpy as np
import pytest
import shapely
from handmade_log import LOCATION, make_town
from nuscenes.map_expansion.arcline_path_utils import discretize_lane
from nuscenes.map_expansion.map_api import NuScenesMap
from nuscenes.utils.map_mask import MapMask
from shapely.geometry import LineString, Polygon

from bevjepa.sim.arcline_paths import centerline_to_arcline_paths
from bevjepa.sim.map_expansion import build_map_expansion, write_map_expansion
from bevjepa.sim.semantic_prior import semantic_prior_filename, semantic_prior_mask, write_semantic_prior
from bevjepa.sim.types import RoadSegment, TownMap

# Centred off the town's round coordinates: the devkit cannot rasterise a polygon that only touches a
# patch border (the clipped shape becomes a line).
WHOLE_TOWN = (150.13, 100.07, 199.0, 299.0)  # patch box: x, y, height, width
RASTER_LAYERS = [
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
]
RECORD_FIELDS = {
    "drivable_area": {"token", "polygon_tokens"},
    "road_segment": {"token", "polygon_token", "is_intersection", "drivable_area_token"},
    "road_block": {
        "token",
        "polygon_token",
        "from_edge_line_token",
        "to_edge_line_token",
        "road_segment_token",
    },
    "lane": {
        "token",
        "polygon_token",
        "lane_type",
        "from_edge_line_token",
        "to_edge_line_token",
        "left_lane_divider_segments",
        "right_lane_divider_segments",
    },
    "ped_crossing": {"token", "polygon_token", "road_segment_token"},
    "walkway": {"token", "polygon_token"},
    "stop_line": {
        "token",
        "polygon_token",
        "stop_line_type",
        "ped_crossing_tokens",
        "traffic_light_tokens",
        "road_block_token",
    },
    "carpark_area": {"token", "polygon_token", "orientation", "road_block_token"},
    "road_divider": {"token", "line_token", "road_segment_token"},
    "lane_divider": {"token", "line_token", "lane_divider_segments"},
    "traffic_light": {"token", "line_token", "traffic_light_type", "from_road_block_token", "items", "pose"},
    "lane_connector": {"token", "polygon_token"},
}


@pytest.fixture(scope="module")
def town() -> TownMap:
    return make_town()


@pytest.fixture(scope="module")
def dataroot(tmp_path_factory, town):
    root = tmp_path_factory.mktemp("maps")
    write_map_expansion(root, town, seed=5)
    write_semantic_prior(root, town)
    return root


@pytest.fixture(scope="module")
def nusc_map(dataroot) -> NuScenesMap:
    return NuScenesMap(dataroot=str(dataroot), map_name=LOCATION)


def _lane_token(nusc_map: NuScenesMap, town: TownMap, index: int) -> str:
    layer = "lane_connector" if town.lanes[index].is_connector else "lane"
    ordinary = sum(not lane.is_connector for lane in town.lanes[:index])
    return getattr(nusc_map, layer)[index - ordinary if layer == "lane_connector" else ordinary]["token"]


def test_every_layer_has_the_nuscenes_record_fields(dataroot, nusc_map, town):
    raw = json.loads((dataroot / "maps" / "expansion" / f"{LOCATION}.json").read_text())
    assert raw["version"] == "1.3" and raw["canvas_edge"] == list(town.size_m)
    for layer, fields in RECORD_FIELDS.items():
        assert raw[layer], layer
        assert all(set(record) == fields for record in raw[layer]), layer
    counts = {
        "lane": sum(not lane.is_connector for lane in town.lanes),
        "lane_connector": sum(lane.is_connector for lane in town.lanes),
        "road_block": len(town.road_blocks),
        "ped_crossing": len(town.ped_crossings),
        "stop_line": len(town.stop_lines),
        "traffic_light": len(town.traffic_lights),
        "lane_divider": len(town.lane_dividers),
    }
    assert {layer: len(raw[layer]) for layer in counts} == counts
    assert (
        set(raw["connectivity"])
        == set(raw["arcline_path_3"])
        == {r["token"] for r in raw["lane"] + raw["lane_connector"]}
    )
    assert len(nusc_map.drivable_area) == 1  # the touching road rectangles merge into one area


def test_map_masks_are_non_empty_and_match_the_geometry(nusc_map, town):
    masks = nusc_map.get_map_mask(WHOLE_TOWN, 0.0, RASTER_LAYERS, canvas_size=None)  # 10 px/m
    assert masks.shape == (len(RASTER_LAYERS), 1990, 2990)
    assert all(mask.any() for mask in masks), [
        name for name, mask in zip(RASTER_LAYERS, masks, strict=True) if not mask.any()
    ]
    drivable_area_m2 = shapely.unary_union([Polygon(ring) for ring in town.drivable_area]).area
    assert masks[0].sum() / 100.0 == pytest.approx(drivable_area_m2, rel=0.01)
    crossing = masks[RASTER_LAYERS.index("ped_crossing")].sum() / 100.0
    assert crossing == pytest.approx(Polygon(town.ped_crossings[0]).area, rel=0.05)
    rotated = nusc_map.get_map_mask((120.3, 100.2, 40.0, 40.0), 30.0, ["lane_divider", "road_divider"])
    assert rotated.shape == (2, 100, 100) and rotated.any(axis=(1, 2)).all()


def test_records_and_geometry_in_a_patch(nusc_map):
    patch = (140.0, 90.0, 160.0, 110.0)
    records = nusc_map.get_records_in_patch(patch, nusc_map.non_geometric_layers + ["lane_connector"])
    for layer in (
        "drivable_area",
        "road_segment",
        "lane",
        "ped_crossing",
        "stop_line",
        "road_divider",
        "traffic_light",
    ):
        assert records[layer], layer
    assert len(records["lane_connector"]) == 8
    geometry = dict(nusc_map.get_map_geom((150.1, 100.1, 20.0, 20.0), 0.0, ["ped_crossing", "lane_divider"]))
    assert geometry["ped_crossing"] and geometry["lane_divider"]
    assert nusc_map.record_on_point(110.0, 98.25, "drivable_area") != ""
    assert nusc_map.record_on_point(110.0, 120.0, "drivable_area") == ""


def test_discretized_lanes_follow_the_centre_lines(nusc_map, town):
    for index, lane in enumerate(town.lanes):
        token = _lane_token(nusc_map, town, index)
        poses = np.array(nusc_map.discretize_lanes([token], 0.5)[token])  # (P, 3) x, y, yaw
        centre_line = LineString(lane.centerline)
        # The rebuilt arcs follow the true curve; the polyline's 0.9 m chords cut 2 cm inside the 5.25 m turn.
        assert shapely.distance(centre_line, shapely.points(poses[:, :2])).max() < 0.025
        np.testing.assert_allclose(poses[[0, -1], :2], lane.centerline[[0, -1]], atol=1e-6)
        direction = np.diff(lane.centerline[:2], axis=0)[0]
        assert abs(math.remainder(poses[0, 2] - math.atan2(direction[1], direction[0]), math.tau)) < 0.1


def test_closest_lane_and_connectivity(nusc_map, town):
    for index, lane in enumerate(town.lanes):
        token = _lane_token(nusc_map, town, index)
        x, y = LineString(lane.centerline).interpolate(0.5, normalized=True).coords[0]
        if not lane.is_connector:  # connectors overlap their neighbours inside the intersection
            assert nusc_map.get_closest_lane(x, y, radius=2.0) == token
        successors = [_lane_token(nusc_map, town, s) for s in lane.successors]
        assert nusc_map.get_outgoing_lane_ids(token) == successors
        for successor in successors:
            assert token in nusc_map.get_incoming_lane_ids(successor)
        assert nusc_map.get_arcline_path(token)


def test_touching_records_share_nodes(nusc_map, town):
    """A lane's exit edge lies on the intersection's outline, so get_next_roads finds the intersection."""
    next_roads = nusc_map.get_next_roads(110.0, 98.25)
    intersection = next(r for r in nusc_map.road_segment if r["is_intersection"])
    assert next_roads["road_segment"] == [intersection["token"]]
    lane = nusc_map.lane[1]
    exit_nodes = nusc_map.get("line", lane["to_edge_line_token"])["node_tokens"]
    assert set(exit_nodes) <= set(intersection["exterior_node_tokens"])


def test_stop_lines_name_their_cause(nusc_map):
    light, crossing = nusc_map.stop_line
    assert light["stop_line_type"] == "TRAFFIC_LIGHT" and light["cue"] == nusc_map.traffic_light
    assert crossing["stop_line_type"] == "PED_CROSSING" and crossing["cue"] == nusc_map.ped_crossing
    assert nusc_map.traffic_light[0]["from_road_block_token"] == light["road_block_token"] != ""


def test_lane_divider_segments_follow_the_painted_lines(nusc_map):
    outer, inner = nusc_map.lane[0], nusc_map.lane[1]  # eastbound lanes of the west arm

    def ys_and_types(segment_nodes: list[dict], segments: list[dict]) -> set:
        return {
            (node["y"], segment["segment_type"])
            for node, segment in zip(segment_nodes, segments, strict=True)
        }

    assert ys_and_types(inner["left_lane_divider_segment_nodes"], inner["left_lane_divider_segments"]) == {
        (100.0, "SINGLE_SOLID_YELLOW")
    }
    assert ys_and_types(inner["right_lane_divider_segment_nodes"], inner["right_lane_divider_segments"]) == {
        (96.5, "DOUBLE_DASHED_WHITE")
    }
    assert outer["right_lane_divider_segments"] == []  # the kerb side has no painted line


def test_drivable_area_holes(tmp_path):
    """Four roads around a block: the drivable area is one polygon with the block as its hole."""
    horizontal, vertical = (
        np.array([[0, 0], [40, 0], [40, 8], [0, 8]], float),
        np.array([[0, 0], [8, 0], [8, 40], [0, 40]], float),
    )
    roads = [horizontal + [10, 10], horizontal + [10, 42], vertical + [10, 10], vertical + [42, 10]]
    empty = dict(road_blocks=[], lanes=[], ped_crossings=[], walkways=[], stop_lines=[], carpark_areas=[])
    town = TownMap(
        location=LOCATION,
        size_m=(60.0, 60.0),
        drivable_area=roads,
        road_segments=[RoadSegment(road, False) for road in roads],
        road_dividers=[],
        lane_dividers=[],
        traffic_lights=[],
        **empty,
    )
    write_map_expansion(tmp_path, town, seed=0)
    write_semantic_prior(tmp_path, town)
    nusc_map = NuScenesMap(str(tmp_path), LOCATION)
    (area,) = nusc_map.drivable_area
    polygon = nusc_map.extract_polygon(area["polygon_tokens"][0])
    assert len(polygon.interiors) == 1 and polygon.area == pytest.approx(40 * 40 - 24 * 24)
    assert nusc_map.record_on_point(30.0, 30.0, "drivable_area") == ""
    mask = MapMask(str(tmp_path / semantic_prior_filename(LOCATION)))
    assert not mask.is_on_mask(30.0, 30.0).any() and mask.is_on_mask(12.0, 30.0).all()


def test_semantic_prior_matches_the_drivable_area(dataroot, town):
    mask = MapMask(str(dataroot / semantic_prior_filename(LOCATION)))
    assert mask.mask().shape == (2000, 3000) and set(np.unique(mask.mask())) == {0, 255}
    area = shapely.unary_union([Polygon(ring) for ring in town.drivable_area])
    rng = np.random.default_rng(0)
    points = rng.uniform([0, 0], town.size_m, size=(4000, 2))
    clear_of_edges = shapely.distance(area.boundary, shapely.points(points)) > 0.1
    inside = shapely.contains(area, shapely.points(points))
    on_mask = mask.is_on_mask(points[:, 0], points[:, 1])
    np.testing.assert_array_equal(on_mask[clear_of_edges], inside[clear_of_edges])
    assert inside.any() and (~inside).any()
    np.testing.assert_array_equal(semantic_prior_mask(town), mask.mask())


def test_arcline_paths_rebuild_arcs_exactly_and_curves_closely():
    rng = np.random.default_rng(1)
    angles = np.concatenate([[0.0], np.sort(rng.uniform(0, np.pi / 2, 20)), [np.pi / 2]])  # uneven spacing
    circle = np.stack([50 + 12 * np.cos(angles), 40 + 12 * np.sin(angles)], axis=1)
    for points, shape in ((circle, "LSL"), (circle[::-1], "RSR")):
        (path,) = centerline_to_arcline_paths(points)
        assert path["shape"] == shape and path["radius"] == pytest.approx(12.0)
        poses = np.array(discretize_lane([path], 0.3))
        np.testing.assert_allclose(np.hypot(poses[:, 0] - 50, poses[:, 1] - 40), 12.0, atol=1e-9)
    straight = np.stack([np.linspace(0, 30, 31), np.full(31, 5.0)], axis=1)
    (path,) = centerline_to_arcline_paths(straight)
    assert path["segment_length"] == [0.0, 30.0, 0.0] and path["start_pose"] == [0.0, 5.0, 0.0]
    s_curve = np.stack([np.linspace(0, 40, 81), 3 * np.sin(np.linspace(0, 2 * np.pi, 81))], axis=1)
    paths = centerline_to_arcline_paths(s_curve)
    poses = np.array(discretize_lane(paths, 0.25))
    assert (
        len(paths) < 20 and shapely.distance(LineString(s_curve), shapely.points(poses[:, :2])).max() < 0.02
    )
    kinked = np.array([[0, 0], [10, 0], [10, 10]], float)
    poses = np.array(discretize_lane(centerline_to_arcline_paths(kinked), 0.25))
    assert shapely.distance(LineString(kinked), shapely.points(poses[:, :2])).max() < 3.0
    np.testing.assert_allclose(poses[-1, :2], [10, 10], atol=1e-9)


def test_same_town_same_json_and_seed_changes_tokens(town):
    first, second = (
        json.dumps(build_map_expansion(town, seed=1)),
        json.dumps(build_map_expansion(town, seed=1)),
    )
    assert first == second
    other = build_map_expansion(town, seed=2)
    assert other["lane"][0]["token"] != json.loads(first)["lane"][0]["token"]
    assert len(other["node"]) == len(json.loads(first)["node"])


def test_unknown_location_is_refused(town):
    with pytest.raises(ValueError, match="not one of"):
        build_map_expansion(TownMap(**{**town.__dict__, "location": "paris"}), seed=0)
