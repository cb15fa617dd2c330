"""The planning-cost probes: cost heads that score the candidate trajectories, their loss and their metrics.

``PlanningCostProbes`` is the part of ``ProbeModule`` that plans; ``PlanningProbeModule`` trains it alone,
for work that reads nothing but a planning score (the suite's choice of candidate prior on training folds).
Training is a classification over candidates whose target is the candidate nearest to the logged trajectory.
"""

import lightning as L
import torch
import torch.nn.functional as F
from torch import nn

from bevjepa.batch import EGO_STATUS_FEATURES
from bevjepa.encoders.tokens import token_grid_shape
from bevjepa.grid import BevGrid
from bevjepa.metrics import PlanningMetrics
from bevjepa.probes.features import TokenBatch
from bevjepa.probes.optimization import lightning_optimizers
from bevjepa.probes.planning_head import (
    NO_TARGET,
    PlanDecision,
    PlanningCostHead,
    PriorKind,
    nearest_candidate,
)

# Planning-cost head name -> whether it reads the ego status.
PLANNING_COST_HEADS = {"cost": False, "cost_with_ego_status": True}


class PlanningCostProbes(nn.Module):
    """Named planning-cost heads on shared candidates, with a ``PlanningMetrics`` each.

    Args:
        embed_dim: D of the tokens.
        token_patch: BEV cells per token side.
        grid: the BEV grid of the labels (with ``token_patch``, it gives the token grid).
        candidates: (T, K, 2) candidate trajectories in the current LiDAR frame.
        hidden_dim: hidden width of the cost-map heads (0: linear).
        prior: the heads' candidate prior, ``scene`` or ``constant``.
        decision: how the heads choose their plan, ``least_expected_distance`` or ``lowest_cost``.
        names: which of ``PLANNING_COST_HEADS`` to build.
    """

    def __init__(
        self,
        embed_dim: int,
        token_patch: int,
        grid: BevGrid,
        candidates: torch.Tensor,
        hidden_dim: int = 0,
        prior: PriorKind = "scene",
        decision: PlanDecision = "least_expected_distance",
        names: tuple[str, ...] = tuple(PLANNING_COST_HEADS),
    ) -> None:
        super().__init__()
        token_shape = token_grid_shape(grid, token_patch)
        unknown = set(names) - set(PLANNING_COST_HEADS)
        if unknown:
            raise ValueError(
                f"unknown planning-cost heads {sorted(unknown)}; known: {list(PLANNING_COST_HEADS)}"
            )
        self.heads = nn.ModuleDict(
            {
                name: PlanningCostHead(
                    embed_dim,
                    token_shape,
                    token_patch,
                    grid,
                    candidates,
                    hidden_dim,
                    ego_status_dim=len(EGO_STATUS_FEATURES) if PLANNING_COST_HEADS[name] else 0,
                    prior=prior,
                    decision=decision,
                )
                for name in names
            }
        )
        self.metrics = nn.ModuleDict({name: PlanningMetrics(candidates.shape[1]) for name in names})

    @property
    def candidates(self) -> torch.Tensor:
        """(T, K, 2) the candidates every head scores."""
        return next(iter(self.heads.values())).candidates

    def losses(self, batch: TokenBatch) -> dict[str, torch.Tensor]:
        """Each head's cross-entropy towards the candidate nearest to the logged trajectory (0 with a
        gradient path where no sample of the batch has a logged future step)."""
        targets = nearest_candidate(self.candidates, batch.ego_trajectory, batch.valid)  # (B,)
        losses = {}
        for name, head in self.heads.items():
            scores, _ = head(batch.tokens, batch.ego_status)
            if (targets != NO_TARGET).any():
                losses[name] = F.cross_entropy(scores, targets, ignore_index=NO_TARGET)
            else:
                losses[name] = scores.sum() * 0
        return losses

    @torch.no_grad()
    def predict(self, batch: TokenBatch) -> dict[str, torch.Tensor]:
        """``plan_<head>`` (B, K, 2) best-scored candidates and ``cost_<head>`` (B, 1, H, W) cost maps."""
        outputs = {}
        for name, head in self.heads.items():
            scores, cost = head(batch.tokens, batch.ego_status)
            outputs[f"plan_{name}"] = head.plan(scores)
            outputs[f"cost_{name}"] = cost
        return outputs

    def update(self, outputs: dict[str, torch.Tensor], batch: TokenBatch) -> None:
        """Score the plans of ``predict`` against the logged trajectories and the agents' boxes."""
        for name, metric in self.metrics.items():
            metric.update(outputs[f"plan_{name}"], batch.ego_trajectory, batch.valid, batch.future_boxes)

    def compute(self) -> dict[str, float]:
        """``plan_<head>_<metric>`` over every update since the last ``compute``; the metrics restart."""
        evaluation = {}
        for name, metric in self.metrics.items():
            evaluation.update({f"plan_{name}_{k}": float(v) for k, v in metric.compute().items()})
            metric.reset()
        return evaluation


class PlanningProbeModule(L.LightningModule):
    """Planning-cost heads alone on stored tokens, trained and scored like ``ProbeModule``'s.

    Args:
        grid, embed_dim, token_patch, candidates, hidden_dim: as ``ProbeModule``'s.
        learning_rate, weight_decay, total_steps: AdamW with cosine decay, as ``ProbeModule``'s.
        planning_prior, planning_decision: the heads' candidate prior and how they choose their plan.
        names: which of ``PLANNING_COST_HEADS`` to train.
    """

    def __init__(
        self,
        grid: BevGrid,
        embed_dim: int,
        token_patch: int,
        candidates: torch.Tensor,
        hidden_dim: int = 0,
        learning_rate: float = 1e-3,
        weight_decay: float = 1e-4,
        total_steps: int = 1000,
        planning_prior: PriorKind = "scene",
        planning_decision: PlanDecision = "least_expected_distance",
        names: tuple[str, ...] = ("cost",),
    ) -> None:
        super().__init__()
        self.learning_rate, self.weight_decay, self.total_steps = learning_rate, weight_decay, total_steps
        self.planning = PlanningCostProbes(
            embed_dim, token_patch, grid, candidates, hidden_dim, planning_prior, planning_decision, names
        )
        self.evaluation: dict[str, float] = {}

    def training_step(self, batch: TokenBatch, batch_idx: int) -> torch.Tensor:
        total = sum(self.planning.losses(batch).values())
        self.log("train/loss", total, batch_size=batch.tokens.shape[0], prog_bar=True)
        return total

    def validation_step(self, batch: TokenBatch, batch_idx: int) -> None:
        self.planning.update(self.planning.predict(batch), batch)

    def on_validation_epoch_end(self) -> None:
        self.evaluation = self.planning.compute()
        self.log_dict({f"val/{k}": v for k, v in self.evaluation.items()})

    def configure_optimizers(self) -> dict:
        return lightning_optimizers(
            self.planning.parameters(), self.learning_rate, self.weight_decay, self.total_steps
        )
