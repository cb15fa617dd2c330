"""Ray casting against the simulator's geometry: the ground plane z = 0, oriented boxes, vertical cylinders.

Both the LiDAR and the radar reduce to "nearest hit along each of many rays from one origin". To keep that
fast with hundreds of primitives, the primitives are binned by the azimuth interval they subtend as seen from
the origin (a 1-D angular grid, the natural acceleration structure for rays that all share one origin) and
each bin lists its primitives sorted by their horizontal distance to the origin, so a ray stops scanning as
soon as the next primitive cannot be closer than the hit it already has.

The kernels are serial on purpose: data generation parallelises over scenes in separate processes, and
threads inside each kernel would fight those processes for the same cores (numba's OpenMP layer is also not
fork-safe).

Primitive layouts (global frame): boxes (M, 7) ``[cx, cy, cz, dx, dy, dz, yaw]`` with (cx, cy, cz) the centre;
cylinders (K, 4) ``[x, y, radius, height]`` standing on the ground.
"""

from dataclasses import dataclass

import numba
import numpy as np

from bevjepa.sim.types import RaycastScene

HIT_NONE = 0
HIT_GROUND = 1
HIT_BOX = 2
HIT_CYLINDER = 3

# Hits closer than this are treated as the ray's own origin (numerical noise), not as surfaces.
_MIN_DISTANCE = 1e-6
# Angular bins of the acceleration structure: about the LiDAR's azimuth step (0.33 deg).
DEFAULT_AZIMUTH_BINS = 1024


@numba.njit(cache=True)
def ray_ground(origin: np.ndarray, direction: np.ndarray) -> float:
    """Distance along unit ``direction`` (3,) from ``origin`` (3,) to the plane z = 0; inf if not reached."""
    if direction[2] >= 0.0 or origin[2] <= 0.0:
        return np.inf
    return -origin[2] / direction[2]


@numba.njit(cache=True)
def _slab(o, d, half):
    """Parameter interval (enter, exit) in which o + t d lies within [-half, half]; empty when exit < enter."""
    if abs(d) < 1e-12:
        return (-np.inf, np.inf) if abs(o) <= half else (np.inf, -np.inf)
    t_a = (-half - o) / d
    t_b = (half - o) / d
    return (t_a, t_b) if t_a <= t_b else (t_b, t_a)


@numba.njit(cache=True)
def _ray_box_prepared(origin, direction, prepared_box):
    """Slab test in the box's own frame. ``prepared_box`` is ``[cx, cy, cz, hx, hy, hz, cos, sin]``.

    Returns (distance, nx, ny, nz) with the outward normal of the entry face in the global frame; distance is
    inf on a miss and also when the origin is inside the box (a sensor inside an object sees out of it).
    """
    cos_yaw, sin_yaw = prepared_box[6], prepared_box[7]
    rel_x = origin[0] - prepared_box[0]
    rel_y = origin[1] - prepared_box[1]
    # Rotate the origin and direction by -yaw into the box frame.
    local_dx = cos_yaw * direction[0] + sin_yaw * direction[1]
    local_dy = -sin_yaw * direction[0] + cos_yaw * direction[1]
    enter_x, exit_x = _slab(cos_yaw * rel_x + sin_yaw * rel_y, local_dx, prepared_box[3])
    enter_y, exit_y = _slab(-sin_yaw * rel_x + cos_yaw * rel_y, local_dy, prepared_box[4])
    enter_z, exit_z = _slab(origin[2] - prepared_box[2], direction[2], prepared_box[5])
    t_near = max(enter_x, enter_y, enter_z)
    t_far = min(exit_x, exit_y, exit_z)
    if t_near > t_far or t_near <= _MIN_DISTANCE:
        return np.inf, 0.0, 0.0, 0.0
    # The entry face is the one of the last slab entered; it faces against the ray.
    if t_near == enter_z:
        return t_near, 0.0, 0.0, -1.0 if direction[2] > 0.0 else 1.0
    if t_near == enter_x:
        local_nx, local_ny = (-1.0 if local_dx > 0.0 else 1.0), 0.0
    else:
        local_nx, local_ny = 0.0, (-1.0 if local_dy > 0.0 else 1.0)
    return t_near, cos_yaw * local_nx - sin_yaw * local_ny, sin_yaw * local_nx + cos_yaw * local_ny, 0.0


@numba.njit(cache=True)
def _prepare_boxes(boxes):
    """(M, 7) boxes -> (M, 8) ``[cx, cy, cz, hx, hy, hz, cos(yaw), sin(yaw)]``."""
    prepared = np.empty((boxes.shape[0], 8))
    # Scalar assignments: slice assignment would cost seconds of extra compile time.
    for i in range(boxes.shape[0]):
        for k in range(3):
            prepared[i, k] = boxes[i, k]
            prepared[i, 3 + k] = 0.5 * boxes[i, 3 + k]
        prepared[i, 6] = np.cos(boxes[i, 6])
        prepared[i, 7] = np.sin(boxes[i, 6])
    return prepared


@numba.njit(cache=True)
def ray_box(origin: np.ndarray, direction: np.ndarray, box: np.ndarray) -> tuple[float, float, float, float]:
    """Distance from ``origin`` (3,) along unit ``direction`` (3,) to the oriented ``box`` (7,).

    Returns:
        (distance, nx, ny, nz): inf distance on a miss or when the origin is inside the box; the outward
        normal of the face the ray enters through.
    """
    return _ray_box_prepared(origin, direction, _prepare_boxes(box.reshape(1, 7))[0])


@numba.njit(cache=True)
def ray_cylinder(
    origin: np.ndarray, direction: np.ndarray, cylinder: np.ndarray
) -> tuple[float, float, float, float]:
    """Distance from ``origin`` (3,) along unit ``direction`` (3,) to a vertical ``cylinder`` (4,).

    The cylinder ``[x, y, radius, height]`` spans z in [0, height]; its side and its top cap can be hit.

    Returns:
        (distance, nx, ny, nz): inf distance on a miss or when the origin is inside; the outward normal there.
    """
    rel_x = origin[0] - cylinder[0]
    rel_y = origin[1] - cylinder[1]
    radius, height = cylinder[2], cylinder[3]
    inside_footprint = rel_x * rel_x + rel_y * rel_y <= radius * radius
    if inside_footprint and 0.0 <= origin[2] <= height:
        return np.inf, 0.0, 0.0, 0.0
    best = np.inf
    nx, ny, nz = 0.0, 0.0, 0.0
    a = direction[0] * direction[0] + direction[1] * direction[1]
    if not inside_footprint and a > 1e-18:
        b = 2.0 * (rel_x * direction[0] + rel_y * direction[1])
        c = rel_x * rel_x + rel_y * rel_y - radius * radius
        discriminant = b * b - 4.0 * a * c
        if discriminant >= 0.0:
            t = (-b - np.sqrt(discriminant)) / (2.0 * a)
            z = origin[2] + t * direction[2]
            if t > _MIN_DISTANCE and 0.0 <= z <= height:
                best = t
                nx = (rel_x + t * direction[0]) / radius
                ny = (rel_y + t * direction[1]) / radius
    if origin[2] > height and direction[2] < 0.0:
        t = (height - origin[2]) / direction[2]
        cap_x = rel_x + t * direction[0]
        cap_y = rel_y + t * direction[1]
        if t < best and cap_x * cap_x + cap_y * cap_y <= radius * radius:
            best = t
            nx, ny, nz = 0.0, 0.0, 1.0
    return best, nx, ny, nz


@numba.njit(cache=True)
def _wrap_angle(angle):
    return (angle + np.pi) % (2.0 * np.pi) - np.pi


@numba.njit(cache=True)
def _box_azimuth_span(origin, box):
    """Horizontal distance from the origin to a prepared box's footprint, the azimuth of its centre and the
    angular offsets (low <= 0 <= high) of its extreme corners from that azimuth."""
    rel_x, rel_y = box[0] - origin[0], box[1] - origin[1]
    gap_x = max(abs(box[6] * rel_x + box[7] * rel_y) - box[3], 0.0)
    gap_y = max(abs(-box[7] * rel_x + box[6] * rel_y) - box[4], 0.0)
    center_azimuth = np.arctan2(rel_y, rel_x)
    low, high = 0.0, 0.0
    for corner in range(4):
        sx = box[3] if corner & 1 else -box[3]
        sy = box[4] if corner & 2 else -box[4]
        corner_x = rel_x + box[6] * sx - box[7] * sy
        corner_y = rel_y + box[7] * sx + box[6] * sy
        offset = _wrap_angle(np.arctan2(corner_y, corner_x) - center_azimuth)
        low, high = min(low, offset), max(high, offset)
    return np.sqrt(gap_x * gap_x + gap_y * gap_y), center_azimuth, low, high


@numba.njit(cache=True)
def _cylinder_azimuth_span(origin, cylinder):
    """Like ``_box_azimuth_span`` for a cylinder ``[x, y, radius, height]``."""
    rel_x, rel_y = cylinder[0] - origin[0], cylinder[1] - origin[1]
    centre_distance = np.sqrt(rel_x * rel_x + rel_y * rel_y)
    half_angle = np.arcsin(min(cylinder[2] / max(centre_distance, 1e-12), 1.0))
    return max(centre_distance - cylinder[2], 0.0), np.arctan2(rel_y, rel_x), -half_angle, half_angle


@numba.njit(cache=True)
def _build_azimuth_bins(origin, prepared_boxes, cylinders, max_range, n_bins):
    """Bin primitives (boxes first, then cylinders) by the azimuth interval they subtend from ``origin``.

    Returns:
        bin_start (n_bins + 1,) int64 and bin_items (L,) int64 in CSR layout, each bin's primitives sorted by
        ``min_distance``; min_distance (M + K,) horizontal distance from the origin to each footprint, and
        top (M + K,) the height of each primitive's top.
    """
    n_boxes = prepared_boxes.shape[0]
    n_primitives = n_boxes + cylinders.shape[0]
    min_distance = np.empty(n_primitives)
    top = np.empty(n_primitives)
    first_bin = np.zeros(n_primitives, dtype=np.int64)
    last_bin = np.full(n_primitives, -1, dtype=np.int64)  # empty span: culled
    bin_width = 2.0 * np.pi / n_bins
    for p in range(n_primitives):
        if p < n_boxes:
            distance, center_azimuth, low, high = _box_azimuth_span(origin, prepared_boxes[p])
            top[p] = prepared_boxes[p, 2] + prepared_boxes[p, 5]
        else:
            distance, center_azimuth, low, high = _cylinder_azimuth_span(origin, cylinders[p - n_boxes])
            top[p] = cylinders[p - n_boxes, 3]
        min_distance[p] = distance
        if distance > max_range:
            continue
        if distance == 0.0:  # the footprint covers the origin: it may be seen in any direction
            first_bin[p], last_bin[p] = 0, n_bins - 1
            continue
        # A little slack so rays grazing an edge are never lost to rounding.
        first_bin[p] = int(np.floor((center_azimuth + low - 1e-9) / bin_width))
        last_bin[p] = int(np.floor((center_azimuth + high + 1e-9) / bin_width))
        if last_bin[p] - first_bin[p] >= n_bins:
            first_bin[p], last_bin[p] = 0, n_bins - 1
    bin_start = np.zeros(n_bins + 1, dtype=np.int64)
    for p in range(n_primitives):
        for k in range(first_bin[p], last_bin[p] + 1):
            bin_start[k % n_bins + 1] += 1
    for b in range(n_bins):
        bin_start[b + 1] += bin_start[b]
    fill = bin_start[:-1].copy()
    bin_items = np.empty(bin_start[-1], dtype=np.int64)
    for p in range(n_primitives):
        for k in range(first_bin[p], last_bin[p] + 1):
            b = k % n_bins
            bin_items[fill[b]] = p
            fill[b] += 1
    # Bins hold a handful of items: insertion sort is quick, and np.argsort would add seconds of compile time.
    for b in range(n_bins):
        for j in range(bin_start[b] + 1, bin_start[b + 1]):
            item = bin_items[j]
            i = j - 1
            while i >= bin_start[b] and min_distance[bin_items[i]] > min_distance[item]:
                bin_items[i + 1] = bin_items[i]
                i -= 1
            bin_items[i + 1] = item
    return bin_start, bin_items, min_distance, top


@numba.njit(cache=True)
def _ray_bin(direction, n_bins):
    bin_index = int(np.floor(np.arctan2(direction[1], direction[0]) / (2.0 * np.pi / n_bins)))
    return bin_index % n_bins


@numba.njit(cache=True)
def _climb(direction):
    """Height gained per metre of horizontal travel; -inf for rays that do not rise."""
    if direction[2] <= 0.0:
        return -np.inf
    return direction[2] / max(np.sqrt(direction[0] * direction[0] + direction[1] * direction[1]), 1e-12)


@numba.njit(cache=True)
def _hit_primitive(origin, direction, p, prepared_boxes, cylinders):
    n_boxes = prepared_boxes.shape[0]
    if p < n_boxes:
        return _ray_box_prepared(origin, direction, prepared_boxes[p])
    return ray_cylinder(origin, direction, cylinders[p - n_boxes])


@numba.njit(cache=True)
def _cast_rays_kernel(origin, directions, max_ranges, boxes, cylinders, n_bins):
    prepared_boxes = _prepare_boxes(boxes)
    n_boxes = boxes.shape[0]
    bin_start, bin_items, min_distance, top = _build_azimuth_bins(
        origin, prepared_boxes, cylinders, max_ranges.max(), n_bins
    )
    n_rays = directions.shape[0]
    distance = np.full(n_rays, np.inf)
    kind = np.zeros(n_rays, dtype=np.int8)
    index = np.full(n_rays, -1, dtype=np.int32)
    cos_incidence = np.zeros(n_rays)
    for r in range(n_rays):
        direction = directions[r]
        best = ray_ground(origin, direction)
        best_kind, best_index, best_cos = HIT_GROUND, -1, -direction[2]
        if best > max_ranges[r]:
            best, best_kind, best_cos = max_ranges[r], HIT_NONE, 0.0
        b = _ray_bin(direction, n_bins)
        climb = _climb(direction)
        for j in range(bin_start[b], bin_start[b + 1]):
            p = bin_items[j]
            if min_distance[p] >= best:
                break  # items are sorted by distance: nothing further along can be nearer
            if origin[2] + min_distance[p] * climb > top[p]:
                continue  # a rising ray already passes over it (most rays above the horizon over cars)
            t, nx, ny, nz = _hit_primitive(origin, direction, p, prepared_boxes, cylinders)
            if t < best:
                best = t
                best_kind = HIT_BOX if p < n_boxes else HIT_CYLINDER
                best_index = p if p < n_boxes else p - n_boxes
                best_cos = -(nx * direction[0] + ny * direction[1] + nz * direction[2])
        if best_kind != HIT_NONE:
            distance[r], kind[r], index[r], cos_incidence[r] = best, best_kind, best_index, best_cos
    return distance, kind, index, cos_incidence


@numba.njit(cache=True)
def _box_hit_counts_kernel(origin, directions, max_range, boxes, cylinders, n_bins):
    prepared_boxes = _prepare_boxes(boxes)
    n_boxes = boxes.shape[0]
    bin_start, bin_items, min_distance, top = _build_azimuth_bins(
        origin, prepared_boxes, cylinders, max_range, n_bins
    )
    unobstructed = np.zeros(n_boxes, dtype=np.int64)
    first = np.zeros(n_boxes, dtype=np.int64)
    for r in range(directions.shape[0]):
        direction = directions[r]
        # The ground belongs to every world, so it limits what a ray could reach even in an empty one.
        limit = min(ray_ground(origin, direction), max_range)
        best, best_p = limit, -1
        b = _ray_bin(direction, n_bins)
        climb = _climb(direction)
        for j in range(bin_start[b], bin_start[b + 1]):
            p = bin_items[j]
            if min_distance[p] >= limit:
                break
            if origin[2] + min_distance[p] * climb > top[p]:
                continue
            t = _hit_primitive(origin, direction, p, prepared_boxes, cylinders)[0]
            if t < limit and p < n_boxes:
                unobstructed[p] += 1
            if t < best:
                best, best_p = t, p
        if 0 <= best_p < n_boxes:
            first[best_p] += 1
    return unobstructed, first


@dataclass
class RayHits:
    """Nearest hit of each ray.

    Attributes:
        distance: (R,) metres along the ray, inf where nothing was hit within range.
        kind: (R,) int8, one of ``HIT_NONE``, ``HIT_GROUND``, ``HIT_BOX``, ``HIT_CYLINDER``.
        index: (R,) int32 row of the hit box or cylinder in the scene, -1 otherwise.
        cos_incidence: (R,) cosine between the ray and the surface normal (1 = head-on), 0 where no hit.
    """

    distance: np.ndarray
    kind: np.ndarray
    index: np.ndarray
    cos_incidence: np.ndarray


def _scene_arrays(scene: RaycastScene) -> tuple[np.ndarray, np.ndarray]:
    boxes = np.ascontiguousarray(scene.boxes, dtype=np.float64).reshape(-1, 7)
    cylinders = np.ascontiguousarray(scene.cylinders, dtype=np.float64).reshape(-1, 4)
    return boxes, cylinders


def cast_rays(
    scene: RaycastScene,
    origin: np.ndarray,
    directions: np.ndarray,
    max_ranges: np.ndarray,
    n_bins: int = DEFAULT_AZIMUTH_BINS,
) -> RayHits:
    """Nearest hit of each ray against the ground, the scene's boxes and its cylinders.

    Args:
        scene: what the rays can hit besides the ground, global frame.
        origin: (3,) common origin of the rays, global frame.
        directions: (R, 3) unit directions, global frame.
        max_ranges: (R,) farthest distance each ray can report.
        n_bins: azimuth bins of the acceleration structure (speed only; results do not depend on it).

    Returns:
        The nearest hit of each ray.
    """
    boxes, cylinders = _scene_arrays(scene)
    directions = np.ascontiguousarray(directions, dtype=np.float64).reshape(-1, 3)
    max_ranges = np.ascontiguousarray(max_ranges, dtype=np.float64).reshape(-1)
    if directions.shape[0] == 0:
        return RayHits(np.zeros(0), np.zeros(0, np.int8), np.zeros(0, np.int32), np.zeros(0))
    distance, kind, index, cos_incidence = _cast_rays_kernel(
        np.ascontiguousarray(origin, dtype=np.float64), directions, max_ranges, boxes, cylinders, n_bins
    )
    return RayHits(distance, kind, index, cos_incidence)


def box_hit_counts(
    scene: RaycastScene,
    origin: np.ndarray,
    directions: np.ndarray,
    max_range: float,
    n_bins: int = DEFAULT_AZIMUTH_BINS,
) -> tuple[np.ndarray, np.ndarray]:
    """For each box, how many rays reach it in an empty world and how many hit it first in this scene.

    The "empty world" keeps the ground plane: a box beyond where a ray meets the ground is not expected.

    Args:
        scene: the scene, global frame.
        origin: (3,) common origin of the rays, global frame.
        directions: (R, 3) unit directions, global frame.
        max_range: farthest distance a ray can report.
        n_bins: azimuth bins of the acceleration structure.

    Returns:
        unobstructed (M,) int64 rays that hit the box with nothing else but the ground present, and first
        (M,) int64 rays whose nearest hit in the scene is the box; first <= unobstructed.
    """
    boxes, cylinders = _scene_arrays(scene)
    directions = np.ascontiguousarray(directions, dtype=np.float64).reshape(-1, 3)
    return _box_hit_counts_kernel(
        np.ascontiguousarray(origin, dtype=np.float64), directions, float(max_range), boxes, cylinders, n_bins
    )
