"""Sampling-based optimisers over action sequences: the cross-entropy method (CEM) and random shooting.

Both minimise a batched energy ``(B, S, H, A) -> (B, S)`` over sequences of ``H`` actions of ``A`` values
within box bounds, for ``B`` independent problems at once, with every candidate of an iteration evaluated in
one call (on whatever device the energy runs). Randomness comes from an explicit ``torch.Generator``.
"""

from dataclasses import dataclass

import torch

from bevjepa.planning.types import Energy


@dataclass(frozen=True)
class ActionBounds:
    """Box bounds of one action: ``low[a] <= action[a] <= high[a]``."""

    low: tuple[float, ...]
    high: tuple[float, ...]

    def __post_init__(self) -> None:
        if len(self.low) != len(self.high) or any(
            lo > hi for lo, hi in zip(self.low, self.high, strict=True)
        ):
            raise ValueError(
                f"action bounds need low <= high of equal length, got {self.low} and {self.high}"
            )

    def tensors(self, device: torch.device | str = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
        """(A,) low and high."""
        return torch.tensor(self.low, device=device), torch.tensor(self.high, device=device)


# Bounds of the ego's controls ``[acceleration (m/s^2), yaw_rate (rad/s)]``: the vehicle's braking and
# acceleration limits, and the yaw rate of a tight urban turn.
CONTROL_BOUNDS = ActionBounds((-8.0, -0.8), (3.0, 0.8))


@dataclass(frozen=True)
class CEMSettings:
    """Settings of the cross-entropy method.

    Attributes:
        horizon: H, actions per sequence.
        samples: S, candidate sequences per iteration (the current mean is always one of them).
        elites: best candidates whose statistics become the next distribution.
        iterations: refinement rounds.
        momentum: share of the old mean and std kept at each update (0: the elites' statistics alone).
        initial_std: per-action standard deviation of the first distribution, as a share of the bounds' width.
        min_std: floor of the standard deviation, as a share of the bounds' width.
    """

    horizon: int = 6
    samples: int = 64
    elites: int = 12
    iterations: int = 3
    momentum: float = 0.1
    initial_std: float = 0.3
    min_std: float = 0.02

    def __post_init__(self) -> None:
        if not 1 <= self.elites <= self.samples or self.iterations < 1 or self.horizon < 1:
            raise ValueError("CEM needs 1 <= elites <= samples, at least one iteration and a horizon >= 1")
        if not 0.0 <= self.momentum < 1.0:
            raise ValueError(f"momentum must lie in [0, 1), got {self.momentum}")


@dataclass
class PlanResult:
    """What an optimiser returns.

    Attributes:
        actions: (B, H, A) the best sequence found.
        energy: (B,) its energy.
        candidates: (B, S, H, A) the candidates of the last iteration.
        candidate_energy: (B, S) their energies.
    """

    actions: torch.Tensor
    energy: torch.Tensor
    candidates: torch.Tensor
    candidate_energy: torch.Tensor


def shift_plan(actions: torch.Tensor) -> torch.Tensor:
    """A warm start for the next replanning: ``(B, H, A)`` moved one step earlier, the last step repeated."""
    return torch.cat([actions[:, 1:], actions[:, -1:]], dim=1)


def _best_of(candidates: torch.Tensor, energy: torch.Tensor, best: PlanResult | None) -> PlanResult:
    """The best sequence of ``candidates (B, S, H, A)`` with ``energy (B, S)``, or the previous best."""
    index = energy.argmin(dim=1)  # (B,)
    rows = torch.arange(len(index), device=energy.device)
    actions, value = candidates[rows, index], energy[rows, index]
    if best is not None:
        better = value < best.energy
        actions = torch.where(better[:, None, None], actions, best.actions)
        value = torch.where(better, value, best.energy)
    return PlanResult(actions, value, candidates, energy)


class CrossEntropyMethod:
    """CEM: sample Gaussian sequences around a mean, refit mean and std to the elites, repeat.

    Args:
        bounds: box bounds of one action (samples are clipped to them).
        settings: the CEM settings.
    """

    def __init__(self, bounds: ActionBounds, settings: CEMSettings = CEMSettings()) -> None:
        self.bounds = bounds
        self.settings = settings

    @property
    def evaluations(self) -> int:
        """Candidate sequences evaluated per plan (per problem)."""
        return self.settings.samples * self.settings.iterations

    def plan(
        self,
        energy: Energy,
        batch_size: int,
        generator: torch.Generator,
        warm_start: torch.Tensor | None = None,
        device: torch.device | str = "cpu",
    ) -> PlanResult:
        """Minimise ``energy``.

        Args:
            energy: (B, S, H, A) candidates -> (B, S) energies.
            batch_size: B, independent problems.
            generator: the source of randomness (on ``device``).
            warm_start: (B, H, A) the first mean (e.g. ``shift_plan`` of the previous plan); None: the middle
                of the bounds.
            device: where candidates are made.

        Returns:
            The best sequence seen over all iterations, and the last iteration's candidates.
        """
        settings = self.settings
        low, high = self.bounds.tensors(device)
        width = high - low
        shape = (batch_size, settings.horizon, len(low))
        mean = warm_start.clone() if warm_start is not None else ((low + high) / 2).expand(shape).clone()
        std = (settings.initial_std * width).expand(shape).clone()
        best = None
        for _ in range(settings.iterations):
            noise = torch.randn(
                (batch_size, settings.samples - 1, *shape[1:]), generator=generator, device=device
            )
            # The distribution may leave the bounds; its draws are evaluated clipped to them, and the
            # refit uses the draws themselves, so a mean pressing against a bound does not lose its spread.
            draws = torch.cat([mean[:, None], mean[:, None] + std[:, None] * noise], dim=1)  # (B, S, H, A)
            candidates = draws.clamp(low, high)
            values = energy(candidates)  # (B, S)
            best = _best_of(candidates, values, best)
            elite_index = values.topk(settings.elites, dim=1, largest=False).indices  # (B, E)
            elites = torch.gather(
                draws, 1, elite_index[:, :, None, None].expand(-1, -1, *shape[1:])
            )  # (B, E, H, A)
            keep = settings.momentum
            mean = keep * mean + (1 - keep) * elites.mean(dim=1)
            std = (keep * std + (1 - keep) * elites.std(dim=1, unbiased=False)).clamp(
                min=settings.min_std * width
            )
        return best


class RandomShooting:
    """Random shooting: uniform sequences within the bounds (plus the warm start), the best one kept.

    Args:
        bounds: box bounds of one action.
        horizon: H.
        samples: S, candidate sequences per plan.
    """

    def __init__(self, bounds: ActionBounds, horizon: int = 6, samples: int = 192) -> None:
        self.bounds = bounds
        self.horizon = horizon
        self.samples = samples

    @property
    def evaluations(self) -> int:
        """Candidate sequences evaluated per plan (per problem)."""
        return self.samples

    def plan(
        self,
        energy: Energy,
        batch_size: int,
        generator: torch.Generator,
        warm_start: torch.Tensor | None = None,
        device: torch.device | str = "cpu",
    ) -> PlanResult:
        """Minimise ``energy`` by sampling (arguments as ``CrossEntropyMethod.plan``)."""
        low, high = self.bounds.tensors(device)
        shape = (batch_size, self.samples, self.horizon, len(low))
        candidates = low + (high - low) * torch.rand(shape, generator=generator, device=device)
        if warm_start is not None:
            candidates[:, 0] = warm_start
        return _best_of(candidates, energy(candidates), None)
