"""``EgoStatusProbe``: the planners that read no scene, trained and scored like the probes.

- ``ego_status_mlp``: ``EgoStatusMLP`` regressing the waypoints from the ego status (L2 on valid steps);
- ``constant_velocity`` and ``constant_velocity_yaw_rate``: the ego status extrapolated, no training;
- ``mean_trajectory``: the mean logged trajectory of the training samples, reading neither scene nor ego
  status (the floor every planner must clear).
"""

import functools

import lightning as L
import torch
from torch import nn

from bevjepa.metrics import PlanningMetrics
from bevjepa.probes.ego_status_planners import EgoStatusMLP, constant_velocity_plan
from bevjepa.probes.features import TokenBatch
from bevjepa.probes.optimization import lightning_optimizers

EGO_PLANNERS = ("ego_status_mlp", "constant_velocity", "constant_velocity_yaw_rate", "mean_trajectory")


def mean_trajectory(trajectories: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Per-step mean of (S, K, 2) trajectories over their valid steps: (K, 2) (0 where no step is valid)."""
    weights = valid[..., None].to(trajectories.dtype)
    return (trajectories * weights).sum(0) / weights.sum(0).clamp(min=1)


class EgoStatusProbe(L.LightningModule):
    """Planners without scene features.

    Args:
        train_mean_trajectory: (K, 2) mean logged trajectory of the training samples the probe may read.
        hidden_dim: hidden width of the ego-status MLP.
        step_seconds: time between waypoints.
        learning_rate, weight_decay: AdamW settings (cosine decay to 0 over ``total_steps``).
        total_steps: optimizer steps of the training run.
    """

    def __init__(
        self,
        train_mean_trajectory: torch.Tensor,
        hidden_dim: int = 128,
        step_seconds: float = 0.5,
        learning_rate: float = 1e-3,
        weight_decay: float = 1e-4,
        total_steps: int = 1000,
    ) -> None:
        super().__init__()
        num_steps = train_mean_trajectory.shape[0]
        self.step_seconds = step_seconds
        self.learning_rate, self.weight_decay, self.total_steps = learning_rate, weight_decay, total_steps
        self.mlp = EgoStatusMLP(num_steps, hidden_dim)
        self.register_buffer("train_mean_trajectory", train_mean_trajectory.float().clone())
        self.planning_metrics = nn.ModuleDict({name: PlanningMetrics(num_steps) for name in EGO_PLANNERS})
        self.evaluation: dict[str, float] = {}

    def plans(self, ego_status: torch.Tensor) -> dict[str, torch.Tensor]:
        """Every planner's (B, K, 2) plan from (B, 4) ego status."""
        num_steps = self.train_mean_trajectory.shape[0]
        cv = functools.partial(constant_velocity_plan, ego_status, num_steps, self.step_seconds)
        return {
            "ego_status_mlp": self.mlp(ego_status),
            "constant_velocity": cv(),
            "constant_velocity_yaw_rate": cv(with_yaw_rate=True),
            "mean_trajectory": self.train_mean_trajectory.expand(len(ego_status), -1, -1),
        }

    def training_step(self, batch: TokenBatch, batch_idx: int) -> torch.Tensor:
        errors = torch.linalg.vector_norm(self.mlp(batch.ego_status) - batch.ego_trajectory, dim=-1)  # (B, K)
        weights = batch.valid.to(errors.dtype)
        loss = (errors * weights).sum() / weights.sum().clamp(min=1)
        self.log("train/ego_status_mlp_l2", loss, batch_size=len(errors), prog_bar=True)
        return loss

    def validation_step(self, batch: TokenBatch, batch_idx: int) -> None:
        for name, plan in self.plans(batch.ego_status).items():
            self.planning_metrics[name].update(plan, batch.ego_trajectory, batch.valid, batch.future_boxes)

    def on_validation_epoch_end(self) -> None:
        evaluation = {}
        for name, metric in self.planning_metrics.items():
            evaluation.update({f"plan_{name}_{k}": float(v) for k, v in metric.compute().items()})
            metric.reset()
        self.evaluation = evaluation
        self.log_dict({f"val/{k}": v for k, v in evaluation.items()})

    def configure_optimizers(self) -> dict:
        return lightning_optimizers(
            self.mlp.parameters(), self.learning_rate, self.weight_decay, self.total_steps
        )
