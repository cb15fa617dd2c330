"""The ``map`` table's semantic-prior mask: a binary PNG of the drivable area at 10 px/m.

Laid out as ``nuscenes.utils.map_mask.MapMask`` reads it (255 = on the mask, row 0 at the top of the
map) and stored under the location's nuScenes v1.0 map token, the only name under which the devkit's
``BitMap(..., 'semantic_prior')`` finds it.
"""

from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from bevjepa.sim.map_geometry import drivable_area_components
from bevjepa.sim.types import TownMap

SEMANTIC_PRIOR_PX_PER_M = 10
SEMANTIC_PRIOR_TOKENS = {
    "singapore-onenorth": "53992ee3023e5494b90c316c183be829",
    "singapore-hollandvillage": "37819e65e09e5547b8a3ceaefba56bb2",
    "singapore-queenstown": "93406b464a165eaba6d9de76ca09f5da",
    "boston-seaport": "36092f0b03a857c6a3403e25b4b7aab3",
}
_SUBPIXEL_BITS = 4


def semantic_prior_mask(town: TownMap) -> np.ndarray:
    """The drivable area rasterised like a nuScenes semantic prior.

    Args:
        town: the town.

    Returns:
        (H, W) uint8, 255 on the drivable area and 0 elsewhere, with W = width * 10 and H = height * 10;
        pixel (row, col) is centred on x = col / 10, y = (H - row) / 10 metres, as MapMask assumes.
    """
    scale = SEMANTIC_PRIOR_PX_PER_M
    width_px, height_px = round(town.size_m[0] * scale), round(town.size_m[1] * scale)
    mask = np.zeros((height_px, width_px), dtype=np.uint8)

    def to_pixels(coords: object) -> np.ndarray:
        xy = np.asarray(coords, dtype=np.float64)[:-1]  # (N, 2) without the closing vertex
        pixels = np.stack([xy[:, 0] * scale, height_px - xy[:, 1] * scale], axis=1)
        return np.round(pixels * (1 << _SUBPIXEL_BITS)).astype(np.int32)

    for part in drivable_area_components(town):
        cv2.fillPoly(mask, [to_pixels(part.exterior.coords)], 255, lineType=cv2.LINE_8, shift=_SUBPIXEL_BITS)
        for hole in part.interiors:
            cv2.fillPoly(mask, [to_pixels(hole.coords)], 0, lineType=cv2.LINE_8, shift=_SUBPIXEL_BITS)
    return mask


def semantic_prior_filename(location: str) -> str:
    """Dataroot-relative path of a location's mask, as the ``map`` table's ``filename`` gives it."""
    return f"maps/{SEMANTIC_PRIOR_TOKENS[location]}.png"


def write_semantic_prior(dataroot: Path, town: TownMap) -> Path:
    """Write ``dataroot/maps/<map token>.png`` for ``town``.

    Args:
        dataroot: the nuScenes dataroot.
        town: the town.

    Returns:
        The written file.
    """
    path = dataroot / semantic_prior_filename(town.location)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(semantic_prior_mask(town), mode="L").save(path, format="PNG")
    return path
