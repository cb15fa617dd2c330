"""The probe suite: every method's heads trained on stored frozen tokens at each label fraction, scored on the
held-out split, next to the planners that read no scene.

Every run has the same number of optimizer steps whatever its label fraction (samples are drawn with
replacement from the kept subset), so a fraction changes what a probe may read, not how long it trains.

The planning-cost head's candidate prior (``scene`` or ``constant``) is chosen per method on folds of the
training split, never on the held-out split: the scene prior lets informative features prefer slower or
faster candidates, but on features that carry little it fits noise.
"""

import dataclasses
import functools
import math
from dataclasses import dataclass, field

import lightning as L
import torch
from torch.utils.data import DataLoader, RandomSampler
from tqdm.auto import tqdm

from bevjepa.batch import EGO_SPEED
from bevjepa.grid import BevGrid
from bevjepa.probes.ego_speed_probe import ego_speed_r2
from bevjepa.probes.ego_status_probe import EgoStatusProbe, mean_trajectory
from bevjepa.probes.features import SplitFeatures, token_batch
from bevjepa.probes.future_occupancy import HORIZON_STEPS
from bevjepa.probes.label_subsets import label_subset
from bevjepa.probes.module import ProbeModule
from bevjepa.probes.planning_head import (
    NUSCENES_EGO_POSE_IN_LIDAR,
    PLAN_DECISIONS,
    PRIOR_KINDS,
    PlanDecision,
    PriorKind,
    candidates_in_lidar_frame,
)
from bevjepa.probes.planning_probe import PlanningProbeModule
from bevjepa.probes.ridge_planner import ridge_planner_evaluation
from bevjepa.probes.trajectories import candidate_trajectories


@dataclass(frozen=True)
class ProbeSettings:
    """How the probes train.

    Attributes:
        steps: optimizer steps of every probe run (each method, each label fraction).
        batch_size: samples per optimizer step.
        eval_batch_size: samples per evaluation batch.
        learning_rate: AdamW peak learning rate (cosine decay to 0).
        weight_decay: AdamW weight decay.
        hidden_dim: hidden width of the heads (0: linear probes).
        ego_hidden_dim: hidden width of the ego-status MLP planner.
        label_fractions: shares of the training samples the probes may read.
        seed: seeds head initialisation, label subsets and sample order.
        head_seeds: every probe trains this many times, with seeds ``seed``, ``seed + 1``, ... (same label
            subset); results are the mean over them, with the standard deviation beside each metric.
        forecast_steps: future keyframes the world model forecasts (1 s, 2 s, 3 s are steps 2, 4, 6).
        step_seconds: time between future keyframes.
        ego_pose_in_lidar: ``(x, y, yaw)`` of the ego frame in the LiDAR frame (moves the candidates).
        readout_ridge: regularisation of the closed-form readouts (the ridge planners, the ego-speed probe),
            relative to the mean squared norm of each centred feature block (``KernelRidge``).
        planning_priors: the planning-cost priors to choose from (one: no choice is made).
        planning_decision: how the cost heads choose their plan, ``least_expected_distance`` (the candidate
            nearest, in expectation, to the one the head believes will be driven) or ``lowest_cost``.
        selection_folds: folds of the training split (contiguous blocks of samples) the choice is scored on.
    """

    steps: int = 300
    batch_size: int = 16
    eval_batch_size: int = 32
    learning_rate: float = 3e-3
    weight_decay: float = 1e-4
    hidden_dim: int = 0
    ego_hidden_dim: int = 128
    label_fractions: tuple[float, ...] = (0.01, 0.1, 1.0)
    seed: int = 0
    head_seeds: int = 1
    forecast_steps: int = 6
    step_seconds: float = 0.5
    ego_pose_in_lidar: tuple[float, float, float] = NUSCENES_EGO_POSE_IN_LIDAR
    readout_ridge: float = 1.0
    planning_priors: tuple[PriorKind, ...] = PRIOR_KINDS
    selection_folds: int = 3
    planning_decision: PlanDecision = "least_expected_distance"

    def __post_init__(self) -> None:
        if self.head_seeds < 1:
            raise ValueError(f"head_seeds must be at least 1, got {self.head_seeds}")
        unknown = set(self.planning_priors) - set(PRIOR_KINDS)
        if not self.planning_priors or unknown:
            raise ValueError(f"planning_priors must be some of {PRIOR_KINDS}, got {self.planning_priors}")
        if self.planning_decision not in PLAN_DECISIONS:
            raise ValueError(
                f"planning_decision must be one of {PLAN_DECISIONS}, got {self.planning_decision!r}"
            )
        if len(self.planning_priors) > 1 and self.selection_folds < 2:
            raise ValueError(f"choosing a planning prior needs at least 2 folds, got {self.selection_folds}")


@dataclass
class SuiteResults:
    """What the suite measured.

    Attributes:
        probes: method -> label fraction -> metric name -> value (``ProbeModule.evaluation``, the mean over
            the head seeds; ``{name}_std`` the standard deviation across them; and the ridge planners'
            ``plan_ridge*`` metrics, which have no seed).
        ego_status_planners: label fraction -> metric name -> value (``EgoStatusProbe.evaluation``, likewise).
        ego_speed_r2: method -> R^2 of the ego-speed probe on the held-out split (all training labels).
        planning_priors: method -> ``{"chosen": kind, "fold_l2": {kind: scene-only L2}}``, the planning-cost
            prior its probes use and how each candidate prior scored on the training folds.
        modules: method -> the probe module trained on all the labels (for pictures).
    """

    probes: dict[str, dict[float, dict[str, float]]] = field(default_factory=dict)
    ego_status_planners: dict[float, dict[str, float]] = field(default_factory=dict)
    ego_speed_r2: dict[str, float] = field(default_factory=dict)
    planning_priors: dict[str, dict] = field(default_factory=dict)
    modules: dict[str, ProbeModule] = field(default_factory=dict)


def _trainer(steps: int | None = None) -> L.Trainer:
    return L.Trainer(
        accelerator="cpu",
        devices=1,
        max_steps=steps if steps is not None else -1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
    )


def _train_loader(
    features: SplitFeatures, method: str | None, subset: torch.Tensor, settings: ProbeSettings
) -> DataLoader:
    sampler = RandomSampler(
        subset.tolist(),
        replacement=True,
        num_samples=settings.steps * settings.batch_size,
        generator=torch.Generator().manual_seed(settings.seed),
    )
    return DataLoader(
        subset.tolist(),
        batch_size=settings.batch_size,
        sampler=sampler,
        collate_fn=functools.partial(token_batch, features, method),
    )


def _eval_loader(
    features: SplitFeatures, method: str | None, settings: ProbeSettings, indices: torch.Tensor | None
) -> DataLoader:
    return DataLoader(
        list(range(len(features.labels))) if indices is None else indices.tolist(),
        batch_size=settings.eval_batch_size,
        shuffle=False,
        collate_fn=functools.partial(token_batch, features, method),
    )


def probe_candidates(settings: ProbeSettings, num_steps: int) -> torch.Tensor:
    """The fixed candidate trajectories in the LiDAR frame: (T, K, 2)."""
    candidates = candidate_trajectories(num_steps=num_steps, step_seconds=settings.step_seconds)
    return candidates_in_lidar_frame(candidates, settings.ego_pose_in_lidar)


def train_probe(
    train: SplitFeatures,
    method: str,
    subset: torch.Tensor,
    grid: BevGrid,
    token_patch: int,
    settings: ProbeSettings,
    planning_prior: PriorKind = "scene",
    module_class: type[ProbeModule] | type[PlanningProbeModule] = ProbeModule,
) -> ProbeModule | PlanningProbeModule:
    """Train one method's heads on the training samples ``subset``: every probe head (``ProbeModule``) or the
    scene-only planning-cost head alone (``PlanningProbeModule``), from the same seeded initialisation."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(settings.seed)
        module = module_class(
            grid,
            train.tokens[method].shape[-1],
            token_patch,
            probe_candidates(settings, train.labels.future_steps),
            hidden_dim=settings.hidden_dim,
            learning_rate=settings.learning_rate,
            weight_decay=settings.weight_decay,
            total_steps=settings.steps,
            planning_prior=planning_prior,
            planning_decision=settings.planning_decision,
        )
    _trainer(settings.steps).fit(module, _train_loader(train, method, subset, settings))
    return module


def evaluate(
    module: L.LightningModule,
    features: SplitFeatures,
    method: str | None,
    settings: ProbeSettings,
    indices: torch.Tensor | None = None,
) -> dict:
    """Score a trained probe on a split (or on its samples ``indices``): its ``evaluation`` dict."""
    _trainer().validate(module, _eval_loader(features, method, settings, indices), verbose=False)
    return dict(module.evaluation)


def training_folds(num_samples: int, folds: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """``folds`` contiguous blocks of the samples as ``(fit, held_out)`` index pairs. Samples come in dataset
    order, scene after scene, so a block keeps scenes (and the synthetic splits' towns) together."""
    block = torch.arange(num_samples) * folds // num_samples
    pairs = [(torch.nonzero(block != k)[:, 0], torch.nonzero(block == k)[:, 0]) for k in range(folds)]
    return [(fit, held_out) for fit, held_out in pairs if len(fit) and len(held_out)]


def longest_horizon_l2(evaluation: dict[str, float], head: str = "cost") -> float:
    """A planning head's L2 averaged over the waypoints up to the longest horizon that was scored (NaN if
    none was)."""
    prefix = f"plan_{head}_l2_avg_"
    values = [evaluation[f"{prefix}{h}"] for h in reversed(HORIZON_STEPS) if f"{prefix}{h}" in evaluation]
    return next((v for v in values if math.isfinite(v)), float("nan"))


def choose_planning_prior(
    train: SplitFeatures, method: str, grid: BevGrid, token_patch: int, settings: ProbeSettings
) -> tuple[PriorKind, dict[str, float]]:
    """The planning-cost prior whose scene-only head plans best (L2 at the longest horizon, mean over the
    folds of the training split), and every candidate prior's score; the first of ``planning_priors`` where
    no fold could be scored."""
    if len(settings.planning_priors) == 1:
        return settings.planning_priors[0], {}
    scores = {}
    for kind in settings.planning_priors:
        errors = [
            longest_horizon_l2(
                evaluate(
                    train_probe(train, method, fit, grid, token_patch, settings, kind, PlanningProbeModule),
                    train,
                    method,
                    settings,
                    held_out,
                )
            )
            for fit, held_out in training_folds(len(train.labels), settings.selection_folds)
        ]
        finite = [e for e in errors if math.isfinite(e)]
        scores[kind] = sum(finite) / len(finite) if finite else float("nan")
    scored = {kind: value for kind, value in scores.items() if math.isfinite(value)}
    chosen = min(scored, key=scored.get) if scored else settings.planning_priors[0]
    return chosen, scores


def run_probe_suite(
    train: SplitFeatures,
    val: SplitFeatures,
    grid: BevGrid,
    token_patch: int,
    settings: ProbeSettings,
    progress: bool = True,
) -> SuiteResults:
    """Train and score every method's probes and ridge planners at every label fraction, the planners without
    a scene, and how much of the ego's speed each method's tokens show.

    Args:
        train: training-split features (every method's tokens).
        val: held-out split features.
        grid: the BEV grid of the labels.
        token_patch: BEV cells per token side.
        settings: training settings.
        progress: show a progress bar over the runs.

    Returns:
        The results, with the all-labels probe modules.
    """
    results = SuiteResults()
    for method in tqdm(train.tokens, desc="choosing planning priors", disable=not progress):
        chosen, scores = choose_planning_prior(train, method, grid, token_patch, settings)
        results.planning_priors[method] = {"chosen": chosen, "fold_l2": scores}
    fractions = sorted(settings.label_fractions)
    runs = [(method, fraction) for method in train.tokens for fraction in fractions]
    runs += [(None, fraction) for fraction in fractions]
    for method, fraction in tqdm(runs, desc="probes", disable=not progress):
        subset = label_subset(len(train.labels), fraction, settings.seed)
        evaluations = []
        for repeat in range(settings.head_seeds):
            seeded = dataclasses.replace(settings, seed=settings.seed + repeat)
            if method is None:
                module = train_ego_status_probe(train, subset, seeded)
            else:
                prior = results.planning_priors[method]["chosen"]
                module = train_probe(train, method, subset, grid, token_patch, seeded, prior)
                if fraction == fractions[-1] and repeat == 0:
                    results.modules[method] = module
            evaluations.append(evaluate(module, val, method, seeded))
        summary = mean_and_spread(evaluations)
        if method is None:
            results.ego_status_planners[fraction] = summary
        else:
            summary |= ridge_planner_evaluation(train, method, subset, val, settings.readout_ridge)
            results.probes.setdefault(method, {})[fraction] = summary
    for method in train.tokens:
        results.ego_speed_r2[method] = ego_speed_r2(
            train.tokens[method],
            train.labels.ego_status[:, EGO_SPEED],
            val.tokens[method],
            val.labels.ego_status[:, EGO_SPEED],
            settings.readout_ridge,
        )
    return results


def train_ego_status_probe(
    train: SplitFeatures, subset: torch.Tensor, settings: ProbeSettings
) -> EgoStatusProbe:
    """Train the planners that read no scene (the ego-status MLP; the others have nothing to learn)."""
    labels = train.labels
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(settings.seed)
        module = EgoStatusProbe(
            mean_trajectory(labels.ego_trajectory[subset], labels.valid[subset]),
            hidden_dim=settings.ego_hidden_dim,
            step_seconds=settings.step_seconds,
            learning_rate=settings.learning_rate,
            weight_decay=settings.weight_decay,
            total_steps=settings.steps,
        )
    _trainer(settings.steps).fit(module, _train_loader(train, None, subset, settings))
    return module


def mean_and_spread(evaluations: list[dict[str, float]]) -> dict[str, float]:
    """Several seeds' evaluations of one probe as one: each metric's mean, and ``{metric}_std`` (the standard
    deviation across seeds, 0 for one seed). NaN metrics (horizons without samples) stay NaN."""
    summary: dict[str, float] = {}
    for key in evaluations[0]:
        values = torch.tensor([e[key] for e in evaluations], dtype=torch.float64)
        summary[key] = float(values.mean())
        summary[f"{key}_std"] = float(values.std(correction=0))
    return summary
