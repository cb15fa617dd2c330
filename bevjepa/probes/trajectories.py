"""A fixed set of candidate ego trajectories for planners that score trajectories instead of regressing one.

Each candidate drives the ego origin along a circular arc (constant curvature, the straight line included)
with a constant acceleration from an initial speed, stopping where the speed reaches zero (no reversing).
Speeds span 0 to 15 m/s and beyond under acceleration; curvatures are bounded by the steering lock and by a
lateral acceleration comfortable at the candidate's highest speed, so every candidate is one a car can drive.
"""

from collections.abc import Sequence

import torch

# A Renault Zoe turns on a ~5.3 m radius: 0.2 /m is about its tightest path of the rear axle.
MAX_CURVATURE_PER_M = 0.2
MAX_LATERAL_ACCELERATION_MPS2 = 4.0
CANDIDATE_SPEEDS_MPS = tuple(float(v) for v in range(16))
CANDIDATE_ACCELERATIONS_MPS2 = (-3.0, -1.5, 0.0, 1.5)


def arc_positions(distance: torch.Tensor, curvature: torch.Tensor) -> torch.Tensor:
    """Points reached after driving ``distance`` along arcs of ``curvature`` from the origin, heading +x.

    Args:
        distance: (..., K) path length driven.
        curvature: signed 1/radius (positive turns left), broadcastable against ``distance``.

    Returns:
        (..., K, 2) ``[x, y]``; exact for zero curvature too.
    """
    angle = curvature * distance  # heading change
    # sin(a) / c = d * sinc(a / pi) and (1 - cos a) / c = c d^2 / 2 * sinc(a / 2 pi)^2, both finite at c = 0.
    x = distance * torch.sinc(angle / torch.pi)
    y = 0.5 * curvature * distance**2 * torch.sinc(angle / (2 * torch.pi)) ** 2
    return torch.stack([x, y], dim=-1)


def candidate_trajectories(
    num_steps: int = 6,
    step_seconds: float = 0.5,
    speeds: Sequence[float] = CANDIDATE_SPEEDS_MPS,
    accelerations: Sequence[float] = CANDIDATE_ACCELERATIONS_MPS2,
    num_curvatures: int = 9,
    max_curvature: float = MAX_CURVATURE_PER_M,
    max_lateral_acceleration: float = MAX_LATERAL_ACCELERATION_MPS2,
) -> torch.Tensor:
    """The candidate set: every initial speed x acceleration x curvature, each driven one way only once.

    Args:
        num_steps: K waypoints, at ``step_seconds`` apart from now.
        step_seconds: time between waypoints.
        speeds: initial speeds (m/s).
        accelerations: longitudinal accelerations (m/s^2); a decelerating candidate stops and stays.
        num_curvatures: curvatures per (speed, acceleration), evenly spaced between the left and right limits
            (odd: the straight one is among them).
        max_curvature: steering limit (1/m).
        max_lateral_acceleration: bound on speed^2 x curvature at the candidate's highest speed (m/s^2).

    Returns:
        (T, K, 2) float32 waypoints of the ego origin in the ego frame now (origin now, x forward, y left) for
        the T distinct candidates; the first is the stop (all waypoints at the origin), the straight ones stay
        on y = 0. Planners that work in the LiDAR frame move them there.
    """
    times = step_seconds * torch.arange(1, num_steps + 1, dtype=torch.float64)  # (K,)
    initial = torch.tensor(speeds, dtype=torch.float64)[:, None]  # (S, 1)
    acceleration = torch.tensor(accelerations, dtype=torch.float64)[None, :]  # (1, A)
    # Time at which a decelerating candidate stops (infinite otherwise).
    stop_time = torch.where(acceleration < 0, initial / -acceleration.clamp(max=-1e-9), torch.inf)  # (S, A)
    moving_time = torch.minimum(times, stop_time[..., None])  # (S, A, K)
    distance = initial[..., None] * moving_time + 0.5 * acceleration[..., None] * moving_time**2  # (S, A, K)
    top_speed = torch.maximum(initial, initial + acceleration * times[-1]).clamp(min=0.0)  # (S, A)
    limit = torch.minimum(
        torch.full_like(top_speed, max_curvature), max_lateral_acceleration / top_speed.clamp(min=1e-9) ** 2
    )  # (S, A)
    fractions = torch.linspace(-1.0, 1.0, num_curvatures, dtype=torch.float64)  # (C,)
    curvature = limit[..., None] * fractions  # (S, A, C)
    local = arc_positions(distance[:, :, None, :], curvature[..., None])  # (S, A, C, K, 2)
    local = local.reshape(-1, num_steps, 2)
    moves = distance[:, :, None, -1].expand(-1, -1, num_curvatures).reshape(-1) > 0  # (S * A * C,)
    stop = torch.zeros(1, num_steps, 2, dtype=torch.float64)
    distinct = torch.unique(local[moves].round(decimals=6), dim=0)  # sorted, so the set is order-free
    return torch.cat([stop, distinct]).float()
