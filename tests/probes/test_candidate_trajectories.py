"""The candidate trajectory set: a stop, straight and curved ones at 0-15 m/s, all drivable."""

import math

import torch

from bevjepa.probes.trajectories import (
    CANDIDATE_ACCELERATIONS_MPS2,
    MAX_CURVATURE_PER_M,
    MAX_LATERAL_ACCELERATION_MPS2,
    arc_positions,
    candidate_trajectories,
)

STEP_S = 0.5


def _with_origin(candidates: torch.Tensor) -> torch.Tensor:
    return torch.cat([torch.zeros(len(candidates), 1, 2), candidates], dim=1)  # (T, 1 + K, 2)


def test_arc_positions_match_the_circle() -> None:
    distance = torch.tensor([0.0, 1.0, 5.0, 20.0], dtype=torch.float64)
    radius = 8.0
    angle = distance / radius
    circle = torch.stack([radius * torch.sin(angle), radius * (1 - torch.cos(angle))], dim=-1)
    assert torch.allclose(arc_positions(distance, torch.tensor(1 / radius, dtype=torch.float64)), circle)
    mirrored = arc_positions(distance, torch.tensor(-1 / radius, dtype=torch.float64))
    assert torch.allclose(mirrored, circle * torch.tensor([1.0, -1.0], dtype=torch.float64))
    straight = arc_positions(distance, torch.tensor(0.0, dtype=torch.float64))
    assert torch.equal(straight, torch.stack([distance, torch.zeros(4, dtype=torch.float64)], dim=-1))


def test_candidates_include_a_stop_and_straight_ones_at_every_speed() -> None:
    candidates = candidate_trajectories(num_steps=6, step_seconds=STEP_S)
    T, K, _ = candidates.shape
    flat = candidates.double().reshape(T, -1)  # (T, 2K); cdist in float32 is off by centimetres
    assert candidates.dtype == torch.float32 and K == 6 and T > 200
    assert torch.equal(candidates[0], torch.zeros(6, 2))  # the stop
    assert not (candidates[1:].abs().amax(dim=(1, 2)) == 0).any()  # only one
    times = STEP_S * torch.arange(1, 7)
    for speed in range(1, 16):
        straight = torch.stack([speed * times, torch.zeros(6)], dim=-1)
        assert (candidates - straight).abs().amax(dim=(1, 2)).min() < 1e-4, (
            f"no straight candidate at {speed} m/s"
        )
    # Left and right turns alike: the set is symmetric about the x axis.
    mirrored = (candidates.double() * torch.tensor([1.0, -1.0], dtype=torch.float64)).reshape(T, -1)
    nearest = torch.cdist(mirrored, flat).amin(dim=1)
    assert nearest.max() < 1e-4
    # Distinct candidates.
    distances = torch.cdist(flat, flat) + torch.eye(T, dtype=torch.float64) * 1e9
    assert distances.min() > 1e-3


def test_candidates_are_smooth_and_drivable() -> None:
    candidates = candidate_trajectories(num_steps=6, step_seconds=STEP_S).double()
    path = _with_origin(candidates)  # (T, 7, 2)
    steps = torch.diff(path, dim=1)  # (T, 6, 2)
    lengths = torch.linalg.vector_norm(steps, dim=-1)  # (T, 6)
    # Speeds within 0 .. 15 m/s + 3 s of the largest acceleration.
    assert (lengths / STEP_S).max() <= 15.0 + 3.0 * max(CANDIDATE_ACCELERATIONS_MPS2) + 1e-4
    # A chord c of an arc of curvature k leaves the tangent at asin(k c / 2): the tightest the steering allows.
    chord_angle = torch.asin((0.5 * MAX_CURVATURE_PER_M * lengths).clamp(max=1.0)) + 1e-5  # (T, 6)
    # Starts along +x.
    first_angle = torch.atan2(steps[:, 0, 1], steps[:, 0, 0])
    moving = lengths[:, 0] > 1e-6
    assert (first_angle[moving].abs() <= chord_angle[moving, 0]).all()
    # No reversing and no sharp turns between consecutive chords.
    cross = steps[:, 1:, 0] * steps[:, :-1, 1] - steps[:, 1:, 1] * steps[:, :-1, 0]
    dot = (steps[:, 1:] * steps[:, :-1]).sum(-1)
    turn = torch.atan2(cross.abs(), dot)  # (T, 5)
    both_moving = (lengths[:, 1:] > 0.05) & (lengths[:, :-1] > 0.05)  # shorter float32 chords point anywhere
    bound = chord_angle[:, 1:] + chord_angle[:, :-1]
    assert (dot[both_moving] > 0).all() and (turn[both_moving] <= bound[both_moving]).all()
    # Accelerations from second differences within the longitudinal and lateral limits (plus discretisation).
    acceleration = torch.linalg.vector_norm(torch.diff(path, n=2, dim=1), dim=-1) / STEP_S**2  # (T, 5)
    limit = math.hypot(max(abs(a) for a in CANDIDATE_ACCELERATIONS_MPS2), MAX_LATERAL_ACCELERATION_MPS2)
    assert acceleration.max() <= limit * 1.05


def test_candidate_set_is_configurable() -> None:
    candidates = candidate_trajectories(
        num_steps=4, step_seconds=1.0, speeds=(0.0, 5.0), accelerations=(0.0,), num_curvatures=3
    )
    # The stop, and at 5 m/s: straight, left and right at the lateral limit (4 / 25 = 0.16 /m).
    assert candidates.shape == (4, 4, 2)
    times = torch.arange(1, 5, dtype=torch.float64)
    left = arc_positions(5.0 * times, torch.tensor(0.16, dtype=torch.float64)).float()
    assert (candidates - left).abs().amax(dim=(1, 2)).min() < 1e-5
