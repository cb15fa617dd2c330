"""BEV visibility by ray casting: which cells of a ``BevGrid`` the LiDAR saw empty, saw occupied, or never saw.

Every return defines a ray from its sweep's sensor origin to the point. Walking each ray through the BEV cells
(Amanatides-Woo traversal) marks the cells it crosses as free and the cell of the return as occupied, unless
heights say otherwise. In BEV a "cell" is a whole vertical column, so heights decide what a ray proves:

- **Local ground.** The ground height of a cell is the lowest return within ``ground_window_m`` of it (the
  lowest return per cell, then a minimum over the window). A single plane at sensor height would be wrong in
  real data: nuScenes roads fall or rise by more than a metre across the 51 m range, so far ground returns
  would read as obstacles or low obstacles as ground. The window reaches past a car's width, so the cells
  under a vehicle still see the road beside it; roads steeper than about 9 % across the window would read as
  low obstacles at its uphill edge (urban roads rarely exceed 6 %).
- **Occupied.** A return whose height above the local ground lies in
  ``[obstacle_min_height_m, obstacle_max_height_m]`` marks its cell occupied. Returns from the road, curbs and
  kerb-side grass (below 0.3 m) do not; nor do overhanging canopies, signs and bridges above 4 m.
- **Free.** A cell crossed by a ray counts as seen empty only where the ray runs at most ``free_max_height_m``
  above the ground (heights interpolated linearly from the sensor, ``sensor_height_m`` above the ground under
  it, to the return): a ray passing over a car roof towards a far wall must not make the ground hidden behind
  the car observed. The cell of a ground return is free; a return above ``obstacle_max_height_m`` only
  crosses its cell.
- Occupied wins over free; cells no ray proves anything about are unobserved. Accumulated sweeps smear
  moving objects over the cells they crossed; ``keyframe_sweep`` gives the snapshot that labels need.

The kernel is serial on purpose: DataLoader workers parallelise over samples, and numba's threading layers
are not fork-safe.
"""

import math
from collections.abc import Sequence

import numba
import numpy as np

from bevjepa.grid import BevGrid
from datamodules.sample_records import FusedPoints

FREE = 0
OCCUPIED = 1
UNOBSERVED = 2

# nuScenes LIDAR_TOP sits 1.84 m above the ego frame origin, which lies on the ground.
NUSCENES_LIDAR_HEIGHT_M = 1.84


@numba.njit(cache=True)
def _lowest_return_per_cell(points: np.ndarray, cells: np.ndarray, height: int, width: int) -> np.ndarray:
    """(H, W) lowest z of the returns in each cell; +inf in cells without returns.

    ``cells`` is ``[x_min, y_min, cell_x, cell_y]``: the grid's corner and BEV cell size.
    """
    lowest = np.full((height, width), np.inf)
    for i in range(points.shape[0]):
        col = int(math.floor((points[i, 0] - cells[0]) / cells[2]))
        row = int(math.floor((points[i, 1] - cells[1]) / cells[3]))
        z = float(points[i, 2])
        if 0 <= col < width and 0 <= row < height and z < lowest[row, col]:
            lowest[row, col] = z
    return lowest


@numba.njit(cache=True)
def _window_minimum(values: np.ndarray, radius: int) -> np.ndarray:
    """(H, W) minimum over the (2 radius + 1)^2 window around each cell (separable: rows, then columns)."""
    height, width = values.shape
    along_rows = np.empty_like(values)
    for row in range(height):
        for col in range(width):
            best = np.inf
            for c in range(max(0, col - radius), min(width, col + radius + 1)):
                best = min(best, values[row, c])
            along_rows[row, col] = best
    result = np.empty_like(values)
    for row in range(height):
        for col in range(width):
            best = np.inf
            for r in range(max(0, row - radius), min(height, row + radius + 1)):
                best = min(best, along_rows[r, col])
            result[row, col] = best
    return result


@numba.njit(cache=True)
def _slab(start: float, delta: float, size: int) -> tuple[float, float]:
    """Parameter interval in which ``start + t delta`` lies within ``[0, size)``; empty when exit <= enter."""
    if delta == 0.0:
        return (-np.inf, np.inf) if 0.0 <= start < size else (np.inf, -np.inf)
    t_a, t_b = (0.0 - start) / delta, (size - start) / delta
    return (t_a, t_b) if t_a <= t_b else (t_b, t_a)


@numba.njit(cache=True)
def _clip_to_grid(u0: float, v0: float, du: float, dv: float, width: int, height: int) -> tuple[float, float]:
    """Parameter interval ``[t_in, t_out]`` within [0, 1] where ``(u0, v0) + t (du, dv)`` lies in the grid."""
    u_in, u_out = _slab(u0, du, width)
    v_in, v_out = _slab(v0, dv, height)
    return max(0.0, u_in, v_in), min(1.0, u_out, v_out)


@numba.njit(cache=True)
def _mark_crossed_cells(
    u0: float, v0: float, du: float, dv: float, t_start: float, t_stop: float, free: np.ndarray
) -> None:
    """Mark free every cell that ``(u0, v0) + t (du, dv)`` crosses for t in ``[t_start, t_stop]``."""
    height, width = free.shape
    col = min(max(int(math.floor(u0 + t_start * du)), 0), width - 1)
    row = min(max(int(math.floor(v0 + t_start * dv)), 0), height - 1)
    step_col, step_row = (1 if du > 0.0 else -1), (1 if dv > 0.0 else -1)
    # Parameter at which the ray crosses the next column / row boundary, and between two boundaries.
    t_next_col = ((col + (1 if du > 0.0 else 0)) - u0) / du if du != 0.0 else np.inf
    t_next_row = ((row + (1 if dv > 0.0 else 0)) - v0) / dv if dv != 0.0 else np.inf
    t_step_col = abs(1.0 / du) if du != 0.0 else np.inf
    t_step_row = abs(1.0 / dv) if dv != 0.0 else np.inf
    while True:
        free[row, col] = True
        if t_next_col < t_next_row:
            if t_next_col >= t_stop:
                return
            col += step_col
            t_next_col += t_step_col
            if col < 0 or col >= width:
                return
        else:
            if t_next_row >= t_stop:
                return
            row += step_row
            t_next_row += t_step_row
            if row < 0 or row >= height:
                return


@numba.njit(cache=True)
def _cast_rays(
    points: np.ndarray,
    sweep_index: np.ndarray,
    origins: np.ndarray,
    cells: np.ndarray,
    ground: np.ndarray,
    sensor_height: float,
    obstacle_min: float,
    obstacle_max: float,
    free_max: float,
    free: np.ndarray,
    occupied: np.ndarray,
) -> None:
    """Trace every return's ray in cell units (u along x, v along y) and fill the ``free`` and ``occupied``
    (H, W) masks in place. ``cells`` is ``[x_min, y_min, cell_x, cell_y]``."""
    height, width = ground.shape
    for i in range(points.shape[0]):
        s = sweep_index[i]
        u0, v0, z0 = (
            (origins[s, 0] - cells[0]) / cells[2],
            (origins[s, 1] - cells[1]) / cells[3],
            origins[s, 2],
        )
        u1, v1, z1 = (points[i, 0] - cells[0]) / cells[2], (points[i, 1] - cells[1]) / cells[3], points[i, 2]
        du, dv = u1 - u0, v1 - v0
        t_in, t_out = _clip_to_grid(u0, v0, du, dv, width, height)
        if t_in >= t_out:
            continue
        end_col, end_row = int(math.floor(u1)), int(math.floor(v1))
        # Height above ground along the ray is linear in t: sensor_height at the origin, h_known at t_known
        # (the return, or where the ray leaves the grid when the return lies outside it).
        if 0 <= end_col < width and 0 <= end_row < height:
            t_known, h_known = 1.0, z1 - ground[end_row, end_col]
            if obstacle_min <= h_known <= obstacle_max:
                occupied[end_row, end_col] = True
            elif h_known < obstacle_min:
                free[end_row, end_col] = True
        else:
            t_known = t_out
            exit_col = min(max(int(math.floor(u0 + t_out * du)), 0), width - 1)
            exit_row = min(max(int(math.floor(v0 + t_out * dv)), 0), height - 1)
            exit_ground = ground[exit_row, exit_col]
            if exit_ground == np.inf:
                exit_ground = z0 - sensor_height
            h_known = z0 + t_out * (z1 - z0) - exit_ground
        h_slope = (h_known - sensor_height) / t_known if t_known > 0.0 else 0.0
        # Only the part of the ray at most free_max above ground clears the cells it crosses.
        t_start, t_stop = t_in, t_out
        if h_slope < 0.0:
            t_start = max(t_start, (free_max - sensor_height) / h_slope)
        elif h_slope > 0.0:
            t_stop = min(t_stop, (free_max - sensor_height) / h_slope)
        elif sensor_height > free_max:
            continue
        if t_start <= t_stop:
            _mark_crossed_cells(u0, v0, du, dv, t_start, t_stop, free)


def bev_visibility(
    fused: FusedPoints,
    grid: BevGrid,
    sensor_height_m: float = NUSCENES_LIDAR_HEIGHT_M,
    ground_window_m: float = 2.0,
    obstacle_min_height_m: float = 0.3,
    obstacle_max_height_m: float = 4.0,
    free_max_height_m: float = 1.5,
) -> np.ndarray:
    """Free / occupied / unobserved state of every BEV cell, by ray casting each return from its sensor origin.

    Args:
        fused: LiDAR points (N, >=3) of one or several sweeps in one frame, with ``sweep_index`` (N,) and the
            sensor origin of every sweep ``sensor_origins`` (S, 3) in that frame.
        grid: the grid whose ``bev_shape`` cells are classified (points outside it still clear the cells their
            rays cross inside it).
        sensor_height_m: height of the sensor above the ground under it.
        ground_window_m: half-width of the window whose lowest return is a cell's ground height.
        obstacle_min_height_m: lowest height above ground that makes a return an obstacle.
        obstacle_max_height_m: highest height above ground that makes a return an obstacle.
        free_max_height_m: a ray clears the cells it crosses only where it runs at most this high above ground.

    Returns:
        (H, W) uint8 with ``FREE``, ``OCCUPIED`` or ``UNOBSERVED`` per cell, rows along y, columns along x.

    Raises:
        ValueError: inconsistent shapes, a sweep index without an origin, or non-finite coordinates.
    """
    points = np.asarray(fused.points)
    sweep_index = np.asarray(fused.sweep_index)
    origins = np.asarray(fused.sensor_origins, dtype=np.float64).reshape(-1, 3)
    if points.ndim != 2 or points.shape[1] < 3 or sweep_index.shape != (len(points),):
        raise ValueError(
            f"bev_visibility needs points (N, >=3) and sweep_index (N,), got {points.shape} and "
            f"{sweep_index.shape}"
        )
    if len(points) and (sweep_index.min() < 0 or sweep_index.max() >= len(origins)):
        raise ValueError(
            f"sweep_index spans [{sweep_index.min()}, {sweep_index.max()}] but there are {len(origins)} "
            "sensor origins"
        )
    if not np.isfinite(points[:, :3]).all() or not np.isfinite(origins).all():
        raise ValueError("bev_visibility got NaN or infinite point or sensor-origin coordinates")

    height, width = grid.bev_shape
    cell_x, cell_y = grid.bev_cell_size
    cells = np.array([grid.point_cloud_range[0], grid.point_cloud_range[1], cell_x, cell_y])
    window_cells = max(1, math.ceil(ground_window_m / min(cell_x, cell_y) - 1e-9))
    ground = _window_minimum(_lowest_return_per_cell(points, cells, height, width), window_cells)  # (H, W)

    free = np.zeros((height, width), dtype=np.bool_)
    occupied = np.zeros((height, width), dtype=np.bool_)
    _cast_rays(
        points,
        sweep_index,
        origins,
        cells,
        ground,
        float(sensor_height_m),
        float(obstacle_min_height_m),
        float(obstacle_max_height_m),
        float(free_max_height_m),
        free,
        occupied,
    )
    visibility = np.full((height, width), UNOBSERVED, dtype=np.uint8)
    visibility[free] = FREE
    visibility[occupied] = OCCUPIED
    return visibility


def target_view_visibility(views: Sequence[FusedPoints], grid: BevGrid, **options: float) -> np.ndarray:
    """Visibility of a target view that aggregates several keyframes (past, present and future).

    Args:
        views: each keyframe's fused LiDAR points, already transformed into the current keyframe's LiDAR
            frame (points and sensor origins alike).
        grid: the grid.
        **options: the height options of ``bev_visibility``.

    Returns:
        (H, W) uint8 ``FREE`` / ``OCCUPIED`` / ``UNOBSERVED``: the rays of all views traced together, with one
        local ground estimated from all their returns.
    """
    if not views:
        raise ValueError("target_view_visibility needs at least one view")
    sweep_offsets = np.cumsum([0] + [len(view.sensor_origins) for view in views[:-1]])
    combined = FusedPoints(
        points=np.concatenate([np.asarray(view.points)[:, :3] for view in views]),
        sweep_index=np.concatenate(
            [
                np.asarray(view.sweep_index, dtype=np.int64) + offset
                for view, offset in zip(views, sweep_offsets, strict=True)
            ]
        ),
        sensor_origins=np.concatenate([np.asarray(view.sensor_origins).reshape(-1, 3) for view in views]),
    )
    return bev_visibility(combined, grid, **options)


def keyframe_sweep(fused: FusedPoints) -> FusedPoints:
    """The keyframe sweep alone (``sweep_index == 0``): a snapshot in which moving objects do not smear, as
    occupancy labels need."""
    keep = np.asarray(fused.sweep_index) == 0
    return FusedPoints(
        points=np.asarray(fused.points)[keep],
        sweep_index=np.asarray(fused.sweep_index)[keep],
        sensor_origins=np.asarray(fused.sensor_origins)[:1],
    )
