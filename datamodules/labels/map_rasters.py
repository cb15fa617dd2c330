"""HD-map rasters on the BEV grid (probe labels): drivable_area, ped_crossing, walkway, stop_line,
carpark_area and divider (road_divider + lane_divider), aligned with the current keyframe's LiDAR frame.

The rasters are exactly what ``NuScenesMap.get_map_mask`` returns for the patch ``map_patch`` describes: the
same shapely clipping, rotation and scaling, the same OpenCV filling (polygons with rounded vertices, lines 2
pixels wide). Two things differ, neither in the output:
- the map's geometries are built once per map and looked up with an R-tree instead of rebuilding and clipping
  every record of the layer for every sample;
- a line clipped into several pieces is drawn piece by piece, where the devkit fails under shapely 2.

``get_map_mask`` samples pixel ``(r, c)`` at the patch's local point ``(c, r)`` pixel units from its corner, a
pixel's corner rather than its centre, so the patch is shifted by half a cell to sample the BEV cell centres.
"""

import math
import weakref
from dataclasses import dataclass

import cv2
import numpy as np
from nuscenes.map_expansion.map_api import NuScenesMap, NuScenesMapExplorer
from shapely import affinity
from shapely.geometry import MultiPolygon, Polygon
from shapely.geometry.base import BaseGeometry
from shapely.strtree import STRtree

from bevjepa.grid import BevGrid

MAP_LAYERS = ("drivable_area", "ped_crossing", "walkway", "stop_line", "carpark_area", "divider")
_DIVIDER_LAYERS = ("road_divider", "lane_divider")
_LINE_THICKNESS_PX = 2  # the devkit's ``mask_for_lines``


@dataclass(frozen=True)
class _LayerIndex:
    """A map layer's geometries in record order, and an R-tree over them."""

    geometries: list[BaseGeometry]
    tree: STRtree


_INDEX_CACHE: "weakref.WeakKeyDictionary[NuScenesMap, dict[str, _LayerIndex]]" = weakref.WeakKeyDictionary()


def _layer_geometries(nusc_map: NuScenesMap, layer: str) -> list[BaseGeometry]:
    """The geometries ``get_map_mask`` would draw for a layer, in its order and with its filters."""
    records = getattr(nusc_map, layer)
    if layer == "drivable_area":
        return [nusc_map.extract_polygon(token) for record in records for token in record["polygon_tokens"]]
    if layer in nusc_map.non_geometric_polygon_layers:
        polygons = (nusc_map.extract_polygon(record["polygon_token"]) for record in records)
        return [polygon for polygon in polygons if polygon.is_valid]
    lines = (nusc_map.extract_line(record["line_token"]) for record in records)
    return [line for line in lines if not line.is_empty]


def _layer_index(nusc_map: NuScenesMap, layer: str) -> _LayerIndex:
    layers = _INDEX_CACHE.setdefault(nusc_map, {})
    if layer not in layers:
        geometries = _layer_geometries(nusc_map, layer)
        layers[layer] = _LayerIndex(geometries, STRtree(geometries))
    return layers[layer]


def map_patch(lidar_to_global: np.ndarray, grid: BevGrid) -> tuple[tuple[float, float, float, float], float]:
    """The ``get_map_mask`` arguments whose pixels are the grid's BEV cells.

    Args:
        lidar_to_global: (4, 4) pose of the LiDAR frame; its yaw orients the patch (the map is 2-D, so pitch
            and roll are left out).
        grid: the grid.

    Returns:
        ``(patch_box, patch_angle)``: ``(x_centre, y_centre, height, width)`` in global metres and the angle in
        degrees, for ``get_map_mask(patch_box, patch_angle, layers, canvas_size=grid.bev_shape)``.
    """
    height, width = grid.bev_shape
    cell_x, cell_y = grid.bev_cell_size
    x_min, y_min, _, x_max, y_max, _ = grid.point_cloud_range
    yaw = math.atan2(lidar_to_global[1, 0], lidar_to_global[0, 0])
    # Pixel (r, c) of the devkit sits at its corner: shift the patch by half a cell to sample cell centres.
    offset_x, offset_y = (x_min + x_max + cell_x) / 2, (y_min + y_max + cell_y) / 2
    centre_x = lidar_to_global[0, 3] + math.cos(yaw) * offset_x - math.sin(yaw) * offset_y
    centre_y = lidar_to_global[1, 3] + math.sin(yaw) * offset_x + math.cos(yaw) * offset_y
    return (centre_x, centre_y, height * cell_y, width * cell_x), math.degrees(yaw)


def _polygon_parts(geometry: BaseGeometry) -> MultiPolygon:
    if geometry.geom_type == "Polygon":
        return MultiPolygon([geometry])
    if geometry.geom_type == "MultiPolygon":
        return geometry
    return MultiPolygon([part for part in geometry.geoms if isinstance(part, Polygon)])


def _draw_lines(geometry: BaseGeometry, mask: np.ndarray) -> None:
    if hasattr(geometry, "geoms"):
        for part in geometry.geoms:
            _draw_lines(part, mask)
        return
    # Truncating float pixel coordinates to int32, as the devkit does.
    coords = np.asarray(list(geometry.coords), np.int32).reshape(-1, 2)
    cv2.polylines(mask, [coords], False, 1, _LINE_THICKNESS_PX)


def _layer_mask(
    nusc_map: NuScenesMap,
    layer: str,
    patch_box: tuple[float, float, float, float],
    patch_angle: float,
    canvas_size: tuple[int, int],
) -> np.ndarray:
    """(H, W) uint8 mask of one map layer: ``get_map_mask``'s steps, in the same order."""
    index = _layer_index(nusc_map, layer)
    patch_x, patch_y, patch_h, patch_w = patch_box
    patch = NuScenesMapExplorer.get_patch_coord(patch_box, patch_angle)
    local_patch = NuScenesMapExplorer.get_patch_coord((0.0, 0.0, patch_h, patch_w))
    is_polygon = layer in nusc_map.non_geometric_polygon_layers
    mask = np.zeros(canvas_size, np.uint8)
    # Record order matters for polygons: a later polygon's holes clear what earlier ones filled.
    for position in np.sort(index.tree.query(patch)):
        geometry = index.geometries[position].intersection(patch)
        if geometry.is_empty:
            continue
        geometry = affinity.rotate(geometry, -patch_angle, origin=(patch_x, patch_y), use_radians=False)
        geometry = affinity.affine_transform(geometry, [1.0, 0.0, 0.0, 1.0, -patch_x, -patch_y])
        if is_polygon and geometry.geom_type == "Polygon":
            geometry = MultiPolygon([geometry])
        geometry = geometry.intersection(local_patch)
        if geometry.is_empty:
            continue
        geometry = affinity.affine_transform(geometry, [1.0, 0.0, 0.0, 1.0, patch_w / 2.0, patch_h / 2.0])
        geometry = affinity.scale(
            geometry, xfact=canvas_size[1] / patch_w, yfact=canvas_size[0] / patch_h, origin=(0, 0)
        )
        if is_polygon:
            mask = NuScenesMapExplorer.mask_for_polygons(_polygon_parts(geometry), mask)
        else:
            _draw_lines(geometry, mask)
    return mask


def map_rasters(nusc_map: NuScenesMap, lidar_to_global: np.ndarray, grid: BevGrid) -> np.ndarray:
    """Map-element rasters of the grid's BEV cells.

    Args:
        nusc_map: the map of the keyframe's location.
        lidar_to_global: (4, 4) pose of the keyframe's LIDAR_TOP frame.
        grid: the grid.

    Returns:
        (6, H, W) bool in ``MAP_LAYERS`` order, rows along the LiDAR frame's y, columns along its x.
    """
    patch_box, patch_angle = map_patch(lidar_to_global, grid)
    canvas_size = grid.bev_shape
    rasters = []
    for layer in MAP_LAYERS:
        parts = _DIVIDER_LAYERS if layer == "divider" else (layer,)
        raster = np.zeros(canvas_size, dtype=bool)
        for part in parts:
            raster |= _layer_mask(nusc_map, part, patch_box, patch_angle, canvas_size).astype(bool)
        rasters.append(raster)
    return np.stack(rasters)
