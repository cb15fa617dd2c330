"""``JEPAPretrainModule``: BEV JEPA pretraining with masked-block, occluded-region and action-conditioned future
targets against an EMA target encoder, VICReg-style regularisation and collapse monitors.

The math lives in plain modules and functions (``SparseBEVEncoder``, ``BEVPredictor``, ``JEPAStep``, the
losses); this module wires them: the EMA update after each optimizer step, the schedules, logging, the
evaluation baselines and the BEV pictures."""

import copy
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import lightning as L
import matplotlib.pyplot as plt
import torch
from lightning.pytorch.loggers import TensorBoardLogger

from bevjepa.batch import BevBatch, FutureFrames, VoxelBatch
from bevjepa.encoders import SparseBEVEncoder
from bevjepa.encoders.tokens import bev_to_tokens, token_grid_shape
from bevjepa.grid import BevGrid
from bevjepa.jepa.ema import ema_update_
from bevjepa.jepa.future_geometry import actions_in_step_frames
from bevjepa.jepa.jepa_step import JEPAOutputs, JEPAStep
from bevjepa.jepa.losses import RegressionKind, layer_normalize
from bevjepa.jepa.masks import FutureTokenSampler, MultiBlockMaskSampler, OccludedTokenSampler
from bevjepa.jepa.monitors import EmbeddingMonitors, embedding_monitors
from bevjepa.jepa.pictures import jepa_picture
from bevjepa.jepa.predictor import BEVPredictor
from bevjepa.optimization import DEFAULT_OPTIMIZER, OptimizerSettings, adamw_warmup_cosine
from bevjepa.schedules import ema_momentum_at

TRAIN_STREAM, VALIDATION_STREAM = 0, 1


@dataclass(frozen=True)
class LossWeights:
    """Weights of the loss terms.

    Attributes:
        masked_block: regression of masked-block targets.
        occluded: regression of occluded-region targets.
        future: regression of future keyframes, teacher-forced (each step from the true previous keyframe).
        rollout: regression of future keyframes rolled out from the context (steps 2 and later).
        unconditioned: regression of future keyframes rolled out from the context without the ego's actions
            (0: not computed). The context must then show how the ego moves, which the action-conditioned
            targets leave out of the encoder.
        variance: VICReg variance hinge on the context embeddings.
        covariance: VICReg covariance penalty on the context embeddings.
    """

    masked_block: float = 1.0
    occluded: float = 1.0
    future: float = 1.0
    rollout: float = 0.5
    unconditioned: float = 0.0
    variance: float = 1.0
    covariance: float = 0.1


DEFAULT_BLOCK_MASKS = MultiBlockMaskSampler()
DEFAULT_OCCLUDED = OccludedTokenSampler()
DEFAULT_FUTURES = FutureTokenSampler()
DEFAULT_LOSS_WEIGHTS = LossWeights()


class JEPAPretrainModule(L.LightningModule):
    """Pretrains a sparse BEV encoder by predicting target-encoder embeddings of hidden BEV tokens.

    Args:
        grid: the voxel grid (linked from the DataModule).
        in_channels: per-voxel features (linked from the DataModule).
        encoder: builds the context encoder from ``(grid, in_channels)``; the target encoder is its EMA copy.
        predictor: builds the predictor from ``(token_shape, embed_dim)``; None bypasses it (each target is
            predicted by the context embedding at its token, carried along the ego motion for future steps: a
            collapse baseline, not a method).
        token_patch: BEV cells per token side (1: a token per BEV cell).
        block_masks: masked-block target sampler.
        occluded_targets: occluded-region target sampler; None to leave them out.
        future_targets: future-keyframe target sampler; None to leave them out.
        occupied_min_height: voxel-column height (m) that marks a future cell as occupied (target weights).
        regression: ``"smooth_l1"`` or ``"l1"`` on layer-normalised targets.
        smooth_l1_beta: smooth-L1 threshold.
        loss_weights: weights of the loss terms.
        ema_momentum: ``(start, end)`` of the target encoder's momentum schedule.
        optimizer: AdamW and learning-rate schedule settings.
        seed: seed of the target samplers (with the stream, step and sample index).
        monitor_every_n_steps: training steps between collapse monitors.
        monitor_max_tokens: tokens per set of embeddings the monitors look at.
        picture_every_n_epochs: validation epochs between BEV pictures (0: never).
    """

    def __init__(
        self,
        grid: BevGrid,
        in_channels: int,
        encoder: Callable[[BevGrid, int], SparseBEVEncoder] = SparseBEVEncoder,
        predictor: Callable[[tuple[int, int], int], BEVPredictor] | None = BEVPredictor,
        token_patch: int = 1,
        block_masks: MultiBlockMaskSampler = DEFAULT_BLOCK_MASKS,
        occluded_targets: OccludedTokenSampler | None = DEFAULT_OCCLUDED,
        future_targets: FutureTokenSampler | None = DEFAULT_FUTURES,
        occupied_min_height: float = 0.6,
        regression: RegressionKind = "smooth_l1",
        smooth_l1_beta: float = 1.0,
        loss_weights: LossWeights = DEFAULT_LOSS_WEIGHTS,
        ema_momentum: tuple[float, float] = (0.996, 1.0),
        optimizer: OptimizerSettings = DEFAULT_OPTIMIZER,
        seed: int = 0,
        monitor_every_n_steps: int = 25,
        monitor_max_tokens: int = 2048,
        picture_every_n_epochs: int = 1,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        # Settings live in attributes: through the CLI ``hparams`` holds their config values, not the objects.
        self.grid = grid
        self.token_patch = token_patch
        self.token_shape = token_grid_shape(grid, token_patch)
        self.loss_weights = loss_weights
        self.ema_momentum = tuple(ema_momentum)
        self.optimizer_settings = optimizer
        self.seed = seed
        self.monitor_every_n_steps = monitor_every_n_steps
        self.monitor_max_tokens = monitor_max_tokens
        self.picture_every_n_epochs = picture_every_n_epochs
        self.encoder = encoder(grid, in_channels)
        self.target_encoder = copy.deepcopy(self.encoder).requires_grad_(False)
        self.predictor = (
            predictor(self.token_shape, self.encoder.embed_dim) if predictor is not None else None
        )
        if self.predictor is not None and loss_weights.unconditioned <= 0:
            # No rollout without actions is trained: its "not given" code stays out of the optimiser (DDP
            # requires every trained parameter to take part in the loss).
            self.predictor.unknown_action.requires_grad_(False)
        self.jepa = JEPAStep(
            grid=grid,
            token_patch=token_patch,
            block_masks=block_masks,
            occluded_targets=occluded_targets,
            future_targets=future_targets,
            occupied_min_height=occupied_min_height,
            regression=regression,
            smooth_l1_beta=smooth_l1_beta,
            seed=seed,
            unconditioned_rollout=loss_weights.unconditioned > 0,
        )

    def forward(self, batch: BevBatch) -> torch.Tensor:
        """BEV embedding map of the current keyframe from the target encoder: (B, D, H, W)."""
        return self.target_encoder(batch.voxels)

    def probe_encoder(self) -> SparseBEVEncoder:
        """The encoder whose frozen features probes read: the EMA target encoder (as I-JEPA evaluates)."""
        return self.target_encoder

    @torch.no_grad()
    def predict_future_tokens(self, voxels: VoxelBatch, futures: FutureFrames, steps: int) -> torch.Tensor:
        """The world model's forecast: the current keyframe's whole context rolled out with the logged actions.

        Args:
            voxels: the current keyframe's voxels (nothing hidden).
            futures: the future keyframes' poses and actions (their voxels are not read).
            steps: keyframes to predict, at most the predictor's ``max_time_offset``.

        Returns:
            (B, K, N, D) predicted layer-normalised target-encoder tokens of keyframes t+1 ... t+K, step k in
            keyframe k's own LiDAR frame (``futures.poses[:, k]`` maps it into the current frame).
        """
        if self.predictor is not None and steps > self.predictor.max_time_offset:
            raise ValueError(
                f"the predictor was trained for {self.predictor.max_time_offset} future steps, not {steps}"
            )
        context_tokens = bev_to_tokens(self.encoder(voxels), self.token_patch)  # (B, N, D)
        known = torch.ones(context_tokens.shape[:2], dtype=torch.bool, device=context_tokens.device)
        actions = actions_in_step_frames(futures.actions[:, :steps], futures.poses[:, :steps])  # (B, K, 4)

        def predict(source, source_known, kind, time_offset, step_actions=None):
            if self.predictor is None:
                return layer_normalize(source)
            return self.predictor(source, source_known, kind, time_offset, step_actions)

        return torch.stack(self.jepa.rollout(predict, context_tokens, known, actions), dim=1)

    # ----------------------------------------------------------------------------------------- training
    def _total_steps(self) -> int:
        total = self.optimizer_settings.total_steps
        return int(total) if total is not None else int(self.trainer.estimated_stepping_batches)

    def _first_sample_index(self, batch: BevBatch) -> int:
        return self.global_rank * batch.voxels.batch_size

    def _weighted_total(self, outputs: JEPAOutputs) -> torch.Tensor:
        weights = self.loss_weights
        return (
            weights.masked_block * outputs.losses["masked_block"]
            + weights.occluded * outputs.losses["occluded"]
            + weights.future * outputs.losses["future"]
            + weights.rollout * outputs.losses["rollout"]
            + weights.unconditioned * outputs.losses["unconditioned"]
            + weights.variance * outputs.losses["variance"]
            + weights.covariance * outputs.losses["covariance"]
        )

    def run_jepa(
        self,
        batch: BevBatch,
        stream: int,
        step: int,
        evaluate: bool = False,
        other_actions: torch.Tensor | None = None,
    ) -> JEPAOutputs:
        """One JEPA step with this module's networks (``stream`` 0 trains, 1 evaluates; ``step`` keys the
        masks; ``evaluate`` and ``other_actions`` as in ``JEPAStep.__call__``)."""
        return self.jepa(
            batch,
            encoder=self.encoder,
            target_encoder=self.target_encoder,
            predictor=self.predictor,
            stream=stream,
            step=step,
            first_index=self._first_sample_index(batch),
            evaluate=evaluate,
            other_actions=other_actions,
        )

    def training_step(self, batch: BevBatch, batch_idx: int) -> dict:
        outputs = self.run_jepa(batch, TRAIN_STREAM, self.global_step)
        loss = self._weighted_total(outputs)
        batch_size = batch.voxels.batch_size
        self.log("train/loss", loss, batch_size=batch_size, prog_bar=True)
        self.log_dict({f"train/{k}_loss": v for k, v in outputs.losses.items()}, batch_size=batch_size)
        self.log("train/ema_momentum", self._momentum(), batch_size=batch_size)
        result: dict = {"loss": loss}
        if self.global_step % self.monitor_every_n_steps == 0:
            monitors = self._monitors(outputs)
            for name, values in monitors.items():
                self.log_dict(
                    {f"monitor/{name}_{k}": v for k, v in values.as_dict().items()}, batch_size=batch_size
                )
            result["monitors"] = monitors
        return result

    def _monitors(self, outputs: JEPAOutputs) -> dict[str, EmbeddingMonitors]:
        sets = {
            "context": outputs.context_tokens[outputs.known],
            "target": outputs.target_tokens.flatten(0, 1),
            "prediction": outputs.block_prediction.flatten(0, 1),
        }
        generator = torch.Generator().manual_seed(self.seed + self.global_step)
        monitors = {}
        for name, embeddings in sets.items():
            keep = torch.randperm(len(embeddings), generator=generator)[: self.monitor_max_tokens]
            monitors[name] = embedding_monitors(embeddings.detach()[keep.to(embeddings.device)])
        return monitors

    def _momentum(self) -> float:
        start, end = self.ema_momentum
        return ema_momentum_at(self.global_step, start, end, self._total_steps())

    def optimizer_step(self, *args, **kwargs) -> None:
        """The optimizer step, then the target encoder's EMA update (once per optimizer step)."""
        momentum = self._momentum()
        super().optimizer_step(*args, **kwargs)
        ema_update_(
            self.target_encoder,
            self.encoder,
            momentum,
            reduce_mean=lambda tensor: self.trainer.strategy.reduce(tensor, reduce_op="mean"),
        )

    def configure_optimizers(self) -> dict:
        return adamw_warmup_cosine(self, self.optimizer_settings, self._total_steps())

    # --------------------------------------------------------------------------------------- evaluation
    def on_validation_epoch_start(self) -> None:
        self._validation_targets: list[torch.Tensor] = []
        self._validation_actions: list[torch.Tensor] = []

    def _actions_of_earlier_samples(self, batch: BevBatch, batch_idx: int) -> torch.Tensor | None:
        """Step-frame actions (B, K, 4) of random earlier validation samples (seeded by the batch index): a
        counterfactual that differs more than the neighbouring keyframes of one batch; None for the first batch.
        """
        steps = self.jepa.future_steps
        if not steps or batch.futures is None:
            return None
        if self._validation_actions:
            bank = torch.cat(self._validation_actions)  # (M, K, 4)
            generator = torch.Generator().manual_seed(self.seed + batch_idx)
            chosen = bank[torch.randint(len(bank), (batch.voxels.batch_size,), generator=generator)]
        else:
            chosen = None
        futures = batch.futures
        local = actions_in_step_frames(futures.actions[:, :steps], futures.poses[:, :steps])  # (B, K, 4)
        complete = futures.valid[:, :steps].all(dim=1)
        self._validation_actions.append(local[complete].cpu())
        return chosen.to(local.device) if chosen is not None else None

    def validation_step(self, batch: BevBatch, batch_idx: int) -> None:
        self._evaluate(batch, batch_idx, "val")

    def test_step(self, batch: BevBatch, batch_idx: int) -> None:
        self._evaluate(batch, batch_idx, "test")

    def on_test_epoch_start(self) -> None:
        self.on_validation_epoch_start()

    def _evaluate(self, batch: BevBatch, batch_idx: int, stage: str) -> None:
        other_actions = self._actions_of_earlier_samples(batch, batch_idx)
        outputs = self.run_jepa(
            batch, VALIDATION_STREAM, batch_idx, evaluate=True, other_actions=other_actions
        )
        batch_size = batch.voxels.batch_size
        metrics = {f"{stage}/loss": self._weighted_total(outputs)}
        metrics.update({f"{stage}/{k}_loss": v for k, v in outputs.losses.items()})
        metrics.update({f"{stage}/{k}": v for k, v in outputs.evaluation.items()})
        self.log_dict(metrics, batch_size=batch_size, sync_dist=True)
        generator = torch.Generator().manual_seed(self.seed + batch_idx)
        targets = outputs.target_tokens.flatten(0, 1)
        keep = torch.randperm(len(targets), generator=generator)[: max(self.monitor_max_tokens // 8, 1)]
        self._validation_targets.append(targets[keep.to(targets.device)].float().cpu())
        pictures = self.picture_every_n_epochs
        if batch_idx == 0 and stage == "val" and pictures and self.current_epoch % pictures == 0:
            self._save_picture(outputs)

    def _log_validation_monitors(self, stage: str) -> None:
        tokens = torch.cat(self._validation_targets)[: self.monitor_max_tokens]
        if len(tokens) > 1:
            values = embedding_monitors(tokens).as_dict()
            self.log_dict({f"{stage}/target_{k}": v for k, v in values.items()}, sync_dist=True)

    def on_validation_epoch_end(self) -> None:
        self._log_validation_monitors("val")

    def on_test_epoch_end(self) -> None:
        self._log_validation_monitors("test")

    def _save_picture(self, outputs: JEPAOutputs) -> None:
        if self.trainer.sanity_checking or not self.trainer.is_global_zero:
            return
        figure = jepa_picture(
            self.grid,
            self.token_shape,
            context=outputs.context_tokens[0],
            target=layer_normalize(outputs.target_tokens[0]),
            prediction=outputs.block_prediction[0],
            error=outputs.block_error[0],
            hidden=~outputs.known[0],
            title=f"epoch {self.current_epoch}, step {self.global_step}: masked-block prediction",
        )
        if isinstance(self.logger, TensorBoardLogger):
            self.logger.experiment.add_figure("val/bev_picture", figure, self.global_step, close=False)
        folder = Path(self.trainer.log_dir or self.trainer.default_root_dir) / "bev_pictures"
        folder.mkdir(parents=True, exist_ok=True)
        figure.savefig(folder / f"epoch{self.current_epoch:03d}_step{self.global_step:06d}.png", dpi=80)
        plt.close(figure)

    def predict_step(self, batch: BevBatch, batch_idx: int) -> torch.Tensor:
        """Target-encoder tokens of the current keyframe: (B, N, D)."""
        return bev_to_tokens(self(batch), self.token_patch)
