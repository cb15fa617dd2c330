"""BEV heads the planning energy reads from predicted tokens: the probe suite's occupancy, map and
planning-cost heads (trained on frozen tokens), and the ego-status MLP of the ego-status-only policy."""

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from bevjepa.probes.ego_status_planners import EgoStatusMLP
from bevjepa.probes.module import ProbeModule

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
            module.occupancy_head, module.map_head, module.planning_heads["cost"].cost_map, ego_status_mlp
        )
        for head in (heads.occupancy, heads.map, heads.cost, heads.ego_status_mlp):
            if head is not None:
                head.eval().requires_grad_(False)
        return heads

    def save(self, path: Path) -> None:
        """Write the heads (whole modules) to ``path``."""
        torch.save(
            {
                "occupancy": self.occupancy,
                "map": self.map,
                "cost": self.cost,
                "ego_status_mlp": self.ego_status_mlp,
            },
            path,
        )

    @classmethod
    def load(cls, path: Path) -> "PlanningHeads":
        """Read heads written by ``save``."""
        return cls(**torch.load(path, map_location="cpu", weights_only=False))

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
