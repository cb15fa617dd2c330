"""BEV heads the planning energy reads from predicted tokens: the probe suite's occupancy, map and
planning-cost heads (trained on frozen tokens with the suite's own training), and the ego-status MLP of the
ego-status-only policy."""

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from bevjepa.grid import BevGrid
from bevjepa.probes.ego_status_planners import EgoStatusMLP
from bevjepa.probes.features import SplitFeatures, SplitLabels
from bevjepa.probes.heads import TokenCellHead, map_head, occupancy_head
from bevjepa.probes.module import ProbeModule
from bevjepa.probes.optimization import adamw_with_cosine_decay
from bevjepa.probes.suite import ProbeSettings, train_probe

FREE_CLASS = 0
DRIVABLE_LAYER = 0


@dataclass
class PlanningHeads:
    """The heads, frozen.

    Attributes:
        occupancy: tokens (M, N, D) -> class logits (M, 4, H, W) (free, vehicle, vulnerable road user, static).
        map: tokens -> layer logits (M, 6, H, W) (drivable area first).
        cost: tokens -> planning cost (M, 1, H, W).
        ego_status_mlp: (B, 4) ego status -> (B, K, 2) waypoints in the LiDAR frame, or None.
    """

    occupancy: nn.Module
    map: nn.Module
    cost: nn.Module
    ego_status_mlp: EgoStatusMLP | None = None

    @classmethod
    def from_probe_module(
        cls, module: ProbeModule, ego_status_mlp: EgoStatusMLP | None = None
    ) -> "PlanningHeads":
        """The heads of a trained ``ProbeModule`` (its planning-cost head without ego status)."""
        heads = cls(
            module.occupancy_head, module.map_head, module.planning.heads["cost"].cost_map, ego_status_mlp
        )
        for head in (heads.occupancy, heads.map, heads.cost, heads.ego_status_mlp):
            if head is not None:
                head.eval().requires_grad_(False)
        return heads

    def save(self, path: Path) -> None:
        """Write the heads' weights and shapes to ``path``."""
        cost = self.cost
        hidden = cost.net[0].out_features if isinstance(cost.net, nn.Sequential) else 0
        mlp = self.ego_status_mlp
        torch.save(
            {
                "shape": {
                    "embed_dim": cost.standardize.num_features,
                    "token_shape": list(cost.token_shape),
                    "patch": cost.patch,
                    "hidden_dim": hidden,
                },
                "ego_status_mlp": None
                if mlp is None
                else {"num_steps": mlp.num_steps, "hidden": mlp.layers[0].out_features},
                "weights": {
                    "occupancy": self.occupancy.state_dict(),
                    "map": self.map.state_dict(),
                    "cost": cost.state_dict(),
                    "ego_status_mlp": None if mlp is None else mlp.state_dict(),
                },
            },
            path,
        )

    @classmethod
    def load(cls, path: Path) -> "PlanningHeads":
        """Read heads written by ``save``."""
        stored = torch.load(path, map_location="cpu", weights_only=True)
        shape, weights = stored["shape"], stored["weights"]
        arguments = (shape["embed_dim"], tuple(shape["token_shape"]), shape["patch"])
        heads = {
            "occupancy": occupancy_head(*arguments, shape["hidden_dim"]),
            "map": map_head(*arguments, shape["hidden_dim"]),
            "cost": TokenCellHead(*arguments, 1, shape["hidden_dim"]),
        }
        for name, head in heads.items():
            head.load_state_dict(weights[name])
            head.eval().requires_grad_(False)
        mlp = None
        if stored["ego_status_mlp"] is not None:
            mlp = EgoStatusMLP(**stored["ego_status_mlp"])
            mlp.load_state_dict(weights["ego_status_mlp"])
            mlp.eval().requires_grad_(False)
        return cls(**heads, ego_status_mlp=mlp)

    def to(self, device: torch.device | str) -> "PlanningHeads":
        for head in (self.occupancy, self.map, self.cost, self.ego_status_mlp):
            if head is not None:
                head.to(device)
        return self

    def collision_map(self, tokens: torch.Tensor) -> torch.Tensor:
        """(M, H, W) probability that a cell holds something (any class but free)."""
        return 1 - self.occupancy(tokens).softmax(dim=1)[:, FREE_CLASS]

    def off_road_map(self, tokens: torch.Tensor) -> torch.Tensor:
        """(M, H, W) probability that a cell is not drivable."""
        return 1 - self.map(tokens)[:, DRIVABLE_LAYER].sigmoid()

    def cost_map(self, tokens: torch.Tensor) -> torch.Tensor:
        """(M, H, W) planning cost."""
        return self.cost(tokens)[:, 0]


def train_ego_status_mlp(
    labels: SplitLabels, steps: int, hidden: int, learning_rate: float, batch_size: int, seed: int
) -> EgoStatusMLP:
    """Fit the ego-status MLP to the logged trajectories (mean L2 over valid steps), AdamW with cosine decay.

    Args:
        labels: a split's stacked labels (ego status now, logged trajectory, valid steps).
        steps, batch_size: optimizer steps and samples per step (drawn with replacement, seeded).
        hidden: hidden width.
        learning_rate: AdamW peak.
        seed: initialisation and sampling seed.

    Returns:
        The trained MLP, frozen.
    """
    generator = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        mlp = EgoStatusMLP(labels.future_steps, hidden)
    optimizer, schedule = adamw_with_cosine_decay(mlp.parameters(), learning_rate, 1e-4, steps)
    valid = labels.valid.float()
    for _ in range(steps):
        index = torch.randint(len(labels), (batch_size,), generator=generator)
        errors = torch.linalg.vector_norm(
            mlp(labels.ego_status[index]) - labels.ego_trajectory[index], dim=-1
        )
        loss = (errors * valid[index]).sum() / valid[index].sum().clamp(min=1)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
    return mlp.eval().requires_grad_(False)


def train_planning_heads(
    features: SplitFeatures,
    method: str,
    grid: BevGrid,
    token_patch: int,
    settings: ProbeSettings,
    ego_status_steps: int,
) -> PlanningHeads:
    """Train the probe suite's heads on a method's frozen tokens (all labels) and the ego-status MLP.

    Args:
        features: the training split's tokens and labels.
        method: whose tokens.
        grid: the labels' BEV grid.
        token_patch: BEV cells per token side.
        settings: the probe training settings.
        ego_status_steps: optimizer steps of the ego-status MLP.

    Returns:
        The heads.
    """
    everything = torch.arange(len(features.labels))
    module = train_probe(features, method, everything, grid, token_patch, settings)
    mlp = train_ego_status_mlp(
        features.labels,
        ego_status_steps,
        settings.ego_hidden_dim,
        settings.learning_rate,
        settings.batch_size,
        settings.seed,
    )
    return PlanningHeads.from_probe_module(module, mlp)
