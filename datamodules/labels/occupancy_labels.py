"""BEV occupancy labels for probes (never for pretraining): free, vehicle, vulnerable road user, static obstacle.

A label combines two sources on one ``BevGrid``:
- annotation boxes give the class of the cells under them (their footprint, as ``boxes_to_bev_mask``), whether
  or not rays reached those cells: the far half of a car is hidden by its near side yet is still car;
- LiDAR visibility (``datamodules.visibility``) gives the rest: free cells are ``FREE``, occupied cells no box
  explains are ``STATIC_OBSTACLE`` (walls, poles, parked structure: returns above ground), and unobserved cells
  are ``IGNORE``. Occupied cells that merely touch a box (the object's returns across a cell border) are
  ``IGNORE`` rather than a spurious ring of static obstacle around every object.

Pass the visibility of the keyframe sweep alone (``visibility.keyframe_sweep``): accumulated sweeps smear moving
objects along their path, and that smear would read as static obstacle.
"""

from collections.abc import Sequence

import numpy as np

from bevjepa.geometry.bev_raster import boxes_to_bev_mask
from bevjepa.grid import BevGrid
from datamodules.visibility import FREE as VISIBLE_FREE
from datamodules.visibility import OCCUPIED as VISIBLE_OCCUPIED

FREE = 0
VEHICLE = 1
VULNERABLE = 2
STATIC_OBSTACLE = 3
IGNORE = 255
CLASS_NAMES = {FREE: "free", VEHICLE: "vehicle", VULNERABLE: "vulnerable", STATIC_OBSTACLE: "static_obstacle"}

# nuScenes detection class names (as in exported frames) and the unknown-class marker of such exports.
_DETECTION_CLASSES = {
    "car": VEHICLE,
    "truck": VEHICLE,
    "bus": VEHICLE,
    "trailer": VEHICLE,
    "construction_vehicle": VEHICLE,
    "pedestrian": VULNERABLE,
    "bicycle": VULNERABLE,
    "motorcycle": VULNERABLE,
    "barrier": STATIC_OBSTACLE,
    "traffic_cone": STATIC_OBSTACLE,
    "ignored": None,
}
# Full nuScenes category names by prefix, most specific first. Two-wheelers are vulnerable road users.
_CATEGORY_PREFIXES = (
    ("vehicle.bicycle", VULNERABLE),
    ("vehicle.motorcycle", VULNERABLE),
    ("vehicle.", VEHICLE),
    ("human.pedestrian.", VULNERABLE),
    ("animal", VULNERABLE),
    ("movable_object.", STATIC_OBSTACLE),
    ("static_object.", STATIC_OBSTACLE),
)


def occupancy_class(category: str) -> int | None:
    """The occupancy class of a nuScenes category.

    Args:
        category: a full category name (``vehicle.car``, ``human.pedestrian.adult``, ...) or a detection class
            name (``car``, ``pedestrian``, ``traffic_cone``, ...).

    Returns:
        ``VEHICLE``, ``VULNERABLE`` or ``STATIC_OBSTACLE``; None for ``ignored`` (an object of unknown class).

    Raises:
        ValueError: a name outside the nuScenes taxonomy.
    """
    if category in _DETECTION_CLASSES:
        return _DETECTION_CLASSES[category]
    for prefix, label in _CATEGORY_PREFIXES:
        if category.startswith(prefix):
            return label
    raise ValueError(f"{category!r} is not a nuScenes category or detection class name")


def occupancy_label(
    boxes_lidar: np.ndarray,
    categories: Sequence[str],
    visibility: np.ndarray,
    grid: BevGrid,
    box_margin_m: float = 0.25,
) -> np.ndarray:
    """The BEV occupancy label of one keyframe.

    Args:
        boxes_lidar: (M, 7) annotation boxes in the grid's frame.
        categories: M category names (see ``occupancy_class``).
        visibility: (H, W) ``datamodules.visibility`` states of the same frame.
        grid: the grid.
        box_margin_m: occupied cells within this distance of a box (beyond the cells it covers) are ignored.

    Returns:
        (H, W) int64 with ``FREE``, ``VEHICLE``, ``VULNERABLE``, ``STATIC_OBSTACLE`` or ``IGNORE``.
    """
    boxes_lidar = np.asarray(boxes_lidar, dtype=np.float64).reshape(-1, 7)
    if len(categories) != len(boxes_lidar):
        raise ValueError(f"{len(boxes_lidar)} boxes but {len(categories)} categories")
    if visibility.shape != grid.bev_shape:
        raise ValueError(f"visibility of shape {visibility.shape} does not match the grid's {grid.bev_shape}")
    classes = [occupancy_class(category) for category in categories]

    label = np.full(grid.bev_shape, IGNORE, dtype=np.int64)
    label[visibility == VISIBLE_FREE] = FREE
    label[visibility == VISIBLE_OCCUPIED] = STATIC_OBSTACLE
    # A cell touches a box when its centre lies within half a cell diagonal of the box's outline.
    grown = boxes_lidar.copy()
    grown[:, 3:5] += 2 * (box_margin_m + 0.5 * float(np.hypot(*grid.bev_cell_size)))
    near_boxes = boxes_to_bev_mask(grown, grid)
    label[near_boxes & (visibility == VISIBLE_OCCUPIED)] = IGNORE
    # Later classes win where boxes overlap: a cyclist's rider over its bicycle, a pedestrian by a car.
    for occupancy in (None, STATIC_OBSTACLE, VEHICLE, VULNERABLE):
        selected = np.array([c == occupancy for c in classes], dtype=bool)
        if selected.any():
            label[boxes_to_bev_mask(boxes_lidar[selected], grid)] = IGNORE if occupancy is None else occupancy
    return label


def occupancy_labels_over_time(
    boxes_per_step: Sequence[tuple[np.ndarray, Sequence[str]]],
    visibility_per_step: Sequence[np.ndarray],
    grid: BevGrid,
) -> np.ndarray:
    """Occupancy labels of several keyframes (now and each future step), all in the current frame.

    Args:
        boxes_per_step: K pairs ``(boxes (M_k, 7), categories)`` in the current keyframe's frame.
        visibility_per_step: K (H, W) visibilities of each keyframe's own sweep, aligned into the current frame.
        grid: the grid.

    Returns:
        (K, H, W) int64 labels.
    """
    if len(boxes_per_step) != len(visibility_per_step):
        raise ValueError(f"{len(boxes_per_step)} box sets but {len(visibility_per_step)} visibilities")
    height, width = grid.bev_shape
    labels = [
        occupancy_label(boxes, categories, visibility, grid)
        for (boxes, categories), visibility in zip(boxes_per_step, visibility_per_step, strict=True)
    ]
    return np.stack(labels) if labels else np.zeros((0, height, width), dtype=np.int64)
