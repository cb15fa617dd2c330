"""``ProbeModule``: probe heads on a frozen encoder's tokens, trained and scored with Lightning.

Heads: occupancy now (4 classes, 255 ignored), map elements (6 layers, multi-label) and the planning-cost
head without and with ego status. The same occupancy head, trained on present tokens only, also decodes a
world model's forecast tokens into future occupancy; a copy of the present prediction (and, as a reference
that no model can beat without motion, a copy of the present *labels*) is scored beside it, and so are the
encoder's tokens of the future keyframes' own sweeps decoded the same way: a perfect forecast, the ceiling of
what the world model could reach on this path.

The module trains on stored tokens (``TokenBatch``, the fast path: encoders are frozen, so their tokens never
change) or on raw ``BevBatch``es through its own frozen ``encoder``.
"""

import functools

import lightning as L
import torch
import torch.nn.functional as F
from torch import nn
from torchmetrics.classification import MulticlassJaccardIndex, MultilabelJaccardIndex

from bevjepa.batch import BevBatch
from bevjepa.encoders.tokens import token_grid_shape
from bevjepa.grid import BevGrid
from bevjepa.probes.features import TokenBatch, probe_tokens
from bevjepa.probes.frozen_encoder import freeze_
from bevjepa.probes.future_occupancy import (
    HORIZON_STEPS,
    decode_future_occupancy,
    future_labels_on_covered_cells,
)
from bevjepa.probes.heads import IGNORE_INDEX, MAP_LAYERS, OCCUPANCY_CLASSES, map_head, occupancy_head
from bevjepa.probes.optimization import lightning_optimizers
from bevjepa.probes.planning_head import PlanDecision, PriorKind
from bevjepa.probes.planning_probe import PlanningCostProbes

FUTURE_KINDS = ("forecast", "encoded_future", "copy_last_prediction", "copy_current_labels")
# Future kinds decoded by the occupancy head from tokens of the future keyframes -> their TokenBatch field.
DECODED_FUTURES = {"forecast": "forecasts", "encoded_future": "encoded_futures"}


def token_batch_from_bev(batch: BevBatch, tokens: torch.Tensor) -> TokenBatch:
    """A raw batch's labels next to tokens computed from it."""
    if batch.labels is None or batch.futures is None:
        raise ValueError(
            "probe batches need labels and future steps (DataModule labels=True, future_steps > 0)"
        )
    labels = batch.labels
    return TokenBatch(
        tokens=tokens,
        occupancy=labels.occupancy.long(),
        map_rasters=labels.map_rasters,
        ego_trajectory=labels.ego_trajectory,
        ego_status=labels.ego_status,
        valid=batch.futures.valid,
        poses=batch.futures.poses,
        future_boxes=labels.future_boxes,
    )


class ProbeModule(L.LightningModule):
    """Frozen encoder + probe heads.

    Args:
        grid: the BEV grid of the labels.
        embed_dim: D of the tokens.
        token_patch: BEV cells per token side.
        candidates: (T, K, 2) candidate trajectories in the current LiDAR frame.
        encoder: the frozen encoder, read only for raw ``BevBatch``es (None: the module sees stored tokens).
        hidden_dim: hidden width of the heads (0: linear probes).
        learning_rate: AdamW peak learning rate (cosine decay to 0 over ``total_steps``).
        weight_decay: AdamW weight decay.
        total_steps: optimizer steps of the training run.
        planning_prior: the planning-cost heads' candidate prior, ``scene`` or ``constant``.
        planning_decision: how they choose their plan, ``least_expected_distance`` or ``lowest_cost``.
    """

    def __init__(
        self,
        grid: BevGrid,
        embed_dim: int,
        token_patch: int,
        candidates: torch.Tensor,
        encoder: nn.Module | None = None,
        hidden_dim: int = 0,
        learning_rate: float = 1e-3,
        weight_decay: float = 1e-4,
        total_steps: int = 1000,
        planning_prior: PriorKind = "scene",
        planning_decision: PlanDecision = "least_expected_distance",
    ) -> None:
        super().__init__()
        self.grid = grid
        self.token_patch = token_patch
        self.learning_rate, self.weight_decay, self.total_steps = learning_rate, weight_decay, total_steps
        self.encoder = freeze_(encoder) if encoder is not None else None
        token_shape = token_grid_shape(grid, token_patch)
        # The planning heads draw their initial weights first, so that a PlanningProbeModule built under the
        # same seed starts (and, on the same batches, trains) its scene-only head exactly as this one does.
        self.planning = PlanningCostProbes(
            embed_dim, token_patch, grid, candidates, hidden_dim, planning_prior, planning_decision
        )
        self.occupancy_head = occupancy_head(embed_dim, token_shape, token_patch, hidden_dim)
        self.map_head = map_head(embed_dim, token_shape, token_patch, hidden_dim)
        occupancy_iou = functools.partial(
            MulticlassJaccardIndex,
            num_classes=len(OCCUPANCY_CLASSES),
            ignore_index=IGNORE_INDEX,
            average="none",
        )
        self.occupancy_iou = occupancy_iou()
        self.map_iou = MultilabelJaccardIndex(num_labels=len(MAP_LAYERS), average="none")
        self.future_iou = nn.ModuleDict(
            {f"{kind}_{horizon}": occupancy_iou() for kind in FUTURE_KINDS for horizon in HORIZON_STEPS}
        )
        self.evaluation: dict[str, float] = {}

    def train(self, mode: bool = True) -> "ProbeModule":
        """Heads follow ``mode``; the frozen encoder stays in evaluation mode (its BatchNorm statistics fixed)."""
        super().train(mode)
        if self.encoder is not None:
            self.encoder.eval()
        return self

    # ----------------------------------------------------------------------------------------- batches
    def _tokens(self, batch: TokenBatch | BevBatch) -> TokenBatch:
        if isinstance(batch, TokenBatch):
            return batch
        if self.encoder is None:
            raise ValueError("this ProbeModule has no encoder: give it stored tokens (TokenBatch)")
        return token_batch_from_bev(batch, probe_tokens(self.encoder, self.token_patch, batch.voxels))

    def losses(self, batch: TokenBatch) -> dict[str, torch.Tensor]:
        """Training losses of every head on one batch."""
        tokens = batch.tokens
        occupancy_logits = self.occupancy_head(tokens)  # (B, 4, H, W)
        losses = {
            "occupancy": F.cross_entropy(occupancy_logits, batch.occupancy[:, 0], ignore_index=IGNORE_INDEX),
            "map": F.binary_cross_entropy_with_logits(self.map_head(tokens), batch.map_rasters.float()),
        }
        return losses | self.planning.losses(batch)

    def training_step(self, batch: TokenBatch | BevBatch, batch_idx: int) -> torch.Tensor:
        batch = self._tokens(batch)
        losses = self.losses(batch)
        total = sum(losses.values())
        size = batch.tokens.shape[0]
        self.log("train/loss", total, batch_size=size, prog_bar=True)
        self.log_dict({f"train/{name}_loss": value for name, value in losses.items()}, batch_size=size)
        return total

    # -------------------------------------------------------------------------------------- evaluation
    @torch.no_grad()
    def predict_batch(self, batch: TokenBatch) -> dict[str, torch.Tensor]:
        """Every head's output on one batch: occupancy classes now ``(B, H, W)``, map layers ``(B, 6, H, W)``
        bool, plans ``(B, K, 2)`` and cost maps ``(B, 1, H, W)`` per planning head, and with forecasts (or
        encoded futures) their future class maps ``(B, K', H, W)`` in the current frame."""
        outputs = {
            "occupancy": self.occupancy_head(batch.tokens).argmax(dim=1),
            "map": self.map_head(batch.tokens) > 0,
        }
        outputs |= self.planning.predict(batch)
        for kind, field_name in DECODED_FUTURES.items():
            future_tokens = getattr(batch, field_name)
            if future_tokens is not None:
                outputs[kind] = decode_future_occupancy(
                    self.occupancy_head, future_tokens, batch.poses, batch.valid, self.grid
                )
        return outputs

    def on_validation_epoch_start(self) -> None:
        self._updated_futures: set[str] = set()

    def validation_step(self, batch: TokenBatch | BevBatch, batch_idx: int) -> None:
        batch = self._tokens(batch)
        outputs = self.predict_batch(batch)
        self.occupancy_iou.update(outputs["occupancy"], batch.occupancy[:, 0])
        self.map_iou.update(outputs["map"].long(), batch.map_rasters.long())
        self.planning.update(outputs, batch)
        self._update_future_occupancy(batch, outputs)

    def _update_future_occupancy(self, batch: TokenBatch, outputs: dict[str, torch.Tensor]) -> None:
        future_labels = future_labels_on_covered_cells(
            batch.occupancy[:, 1:], batch.poses, batch.valid, self.grid
        )  # (B, K, H, W)
        now_labels = batch.occupancy[:, 0]
        # A copied label map has no class for its ignored cells: those score as free, the common case.
        now_labels_filled = torch.where(now_labels == IGNORE_INDEX, torch.zeros_like(now_labels), now_labels)
        for horizon, step in HORIZON_STEPS.items():
            if step > future_labels.shape[1]:
                continue
            target = future_labels[:, step - 1]
            predictions = {
                "copy_last_prediction": outputs["occupancy"],
                "copy_current_labels": now_labels_filled,
            }
            for kind in DECODED_FUTURES:
                decoded = outputs.get(kind)
                if decoded is not None and step <= decoded.shape[1]:
                    predicted = decoded[:, step - 1]
                    predictions[kind] = torch.where(predicted == IGNORE_INDEX, 0, predicted)
            for kind, prediction in predictions.items():
                self.future_iou[f"{kind}_{horizon}"].update(prediction, target)
                self._updated_futures.add(f"{kind}_{horizon}")

    def on_validation_epoch_end(self) -> None:
        evaluation: dict[str, float] = {}
        occupancy = self.occupancy_iou.compute()
        evaluation.update(
            {f"occupancy_iou_{c}": float(v) for c, v in zip(OCCUPANCY_CLASSES, occupancy, strict=True)}
        )
        evaluation["occupancy_miou"] = float(occupancy.mean())
        evaluation["occupancy_miou_objects"] = float(occupancy[1:].mean())
        layers = self.map_iou.compute()
        evaluation.update({f"map_iou_{name}": float(v) for name, v in zip(MAP_LAYERS, layers, strict=True)})
        evaluation["map_miou"] = float(layers.mean())
        evaluation.update(self.planning.compute())
        for key in sorted(self._updated_futures):
            iou = self.future_iou[key].compute()
            evaluation[f"future_{key}_miou"] = float(iou.mean())
            evaluation[f"future_{key}_miou_objects"] = float(iou[1:].mean())
            self.future_iou[key].reset()
        self.occupancy_iou.reset()
        self.map_iou.reset()
        self.evaluation = evaluation
        self.log_dict({f"val/{k}": v for k, v in evaluation.items()})

    # ------------------------------------------------------------------------------------- optimisation
    def configure_optimizers(self) -> dict:
        trainable = [p for p in self.parameters() if p.requires_grad]
        return lightning_optimizers(trainable, self.learning_rate, self.weight_decay, self.total_steps)
