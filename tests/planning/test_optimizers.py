"""CEM and random shooting on energies whose minimum is known."""

import pytest
import torch

from bevjepa.planning.optimizers import (
    ActionBounds,
    CEMSettings,
    CrossEntropyMethod,
    RandomShooting,
    shift_plan,
)

BOUNDS = ActionBounds((-3.0, -1.0), (3.0, 1.0))


def quadratic(targets: torch.Tensor):
    """Energy ``sum (x - target)^2`` of each problem's candidates; targets (B, H, A)."""

    def energy(candidates: torch.Tensor) -> torch.Tensor:  # (B, S, H, A) -> (B, S)
        return (candidates - targets[:, None]).pow(2).sum(dim=(-1, -2))

    return energy


def test_cem_finds_the_minimum_of_a_quadratic_for_each_problem() -> None:
    targets = torch.tensor(
        [[[1.0, 0.5]] * 4, [[-2.0, -0.3], [0.0, 0.2], [2.5, 0.9], [-1.0, 0.0]]]
    )  # (2, 4, 2)
    cem = CrossEntropyMethod(
        BOUNDS, CEMSettings(horizon=4, samples=64, elites=16, iterations=15, min_std=1e-3)
    )
    result = cem.plan(quadratic(targets), 2, torch.Generator().manual_seed(0))
    assert result.actions.shape == (2, 4, 2) and result.candidates.shape == (2, 64, 4, 2)
    assert (result.actions - targets).abs().max() < 0.05
    assert torch.allclose(result.energy, quadratic(targets)(result.actions[:, None])[:, 0])


def test_cem_keeps_to_the_bounds_and_beats_random_shooting_at_equal_budget() -> None:
    outside = torch.tensor([[[5.0, -2.0]] * 3])  # the constrained minimum is the corner (3, -1)
    settings = CEMSettings(horizon=3, samples=64, elites=8, iterations=8)
    cem = CrossEntropyMethod(BOUNDS, settings).plan(quadratic(outside), 1, torch.Generator().manual_seed(1))
    assert torch.allclose(cem.actions, torch.tensor([[[3.0, -1.0]] * 3]), atol=1e-2)
    assert (cem.candidates[..., 0].abs() <= 3.0).all() and (cem.candidates[..., 1].abs() <= 1.0).all()

    inside = torch.tensor([[[0.7, -0.4]] * 3])
    rs = RandomShooting(BOUNDS, horizon=3, samples=settings.samples * settings.iterations)
    cem = CrossEntropyMethod(BOUNDS, settings)
    assert rs.evaluations == cem.evaluations
    rs_energy = rs.plan(quadratic(inside), 1, torch.Generator().manual_seed(2)).energy
    cem_energy = cem.plan(quadratic(inside), 1, torch.Generator().manual_seed(2)).energy
    assert cem_energy < rs_energy / 10


def test_a_warm_start_at_the_optimum_is_kept_and_is_deterministic() -> None:
    target = torch.tensor([[[1.0, 0.1], [1.5, 0.2]]])
    cem = CrossEntropyMethod(BOUNDS, CEMSettings(horizon=2, samples=16, elites=4, iterations=2))
    result = cem.plan(quadratic(target), 1, torch.Generator().manual_seed(3), warm_start=target)
    assert torch.equal(result.actions, target) and result.energy.item() == 0.0
    again = cem.plan(quadratic(target), 1, torch.Generator().manual_seed(3), warm_start=target)
    assert torch.equal(result.candidates, again.candidates)
    rs = RandomShooting(BOUNDS, horizon=2, samples=8).plan(
        quadratic(target), 1, torch.Generator().manual_seed(3), warm_start=target
    )
    assert torch.equal(rs.actions, target)
    assert torch.equal(shift_plan(target), torch.tensor([[[1.5, 0.2], [1.5, 0.2]]]))


def test_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="elites"):
        CEMSettings(samples=4, elites=8)
    with pytest.raises(ValueError, match="bounds"):
        ActionBounds((1.0,), (0.0,))
