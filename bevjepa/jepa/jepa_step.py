"""One JEPA step on a batch, free of Lightning: sample the targets, hide their voxels from the context encoder,
encode context and targets, predict every target kind and compute the losses (and, for evaluation, the
baselines that say whether the predictor learned anything)."""

from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn

from bevjepa.batch import BevBatch
from bevjepa.encoders.tokens import (
    bev_to_tokens,
    gather_tokens,
    indices_to_mask,
    pool_cells_to_tokens,
    token_bev_grid,
    token_grid_shape,
)
from bevjepa.grid import BevGrid
from bevjepa.jepa.future_geometry import actions_in_step_frames, ego_motion_compensate
from bevjepa.jepa.losses import (
    RegressionKind,
    covariance_loss,
    layer_normalize,
    regression_error,
    variance_loss,
    weighted_mean,
)
from bevjepa.jepa.masks import (
    OCCUPIED,
    UNOBSERVED,
    FutureTokenSampler,
    MultiBlockMaskSampler,
    OccludedTokenSampler,
    TargetTokens,
    drop_voxels_in_tokens,
)
from bevjepa.jepa.predictor import BEVPredictor, TargetKind
from bevjepa.jepa.target_views import TargetViews, encode_target_views, occluded_target_map

Predict = Callable[[torch.Tensor, torch.Tensor, TargetKind, int, torch.Tensor | None], torch.Tensor]


@dataclass
class JEPAOutputs:
    """What one JEPA step produced.

    Attributes:
        losses: unweighted scalar losses ``masked_block``, ``occluded``, ``future``, ``rollout``,
            ``unconditioned``, ``variance``, ``covariance`` (0 for a kind without targets or a term not computed).
        context_tokens: (B, N, D) context-encoder tokens.
        known: (B, N) bool, tokens visible to the context encoder (not a target).
        target_tokens: (B, N, D) target-encoder tokens of the current keyframe (not normalised).
        block_prediction: (B, N, D) the masked-block pass of the predictor on every token.
        block_error: (B, N) its regression error on every token (detached).
        evaluation: evaluation-only metrics (empty in training), see ``JEPAStep.__call__``.
    """

    losses: dict[str, torch.Tensor]
    context_tokens: torch.Tensor
    known: torch.Tensor
    target_tokens: torch.Tensor
    block_prediction: torch.Tensor
    block_error: torch.Tensor
    evaluation: dict[str, torch.Tensor] = field(default_factory=dict)


def concat_targets(targets: list[TargetTokens]) -> TargetTokens:
    """Several targets of one batch as one: indices and weights concatenated along M."""
    return TargetTokens(
        indices=torch.cat([t.indices for t in targets], dim=1),
        weights=torch.cat([t.weights for t in targets], dim=1),
    )


def masked_token_mean(cell_map: torch.Tensor, cells: torch.Tensor, patch: int) -> torch.Tensor:
    """Per-token mean of ``cell_map (B, D, H, W)`` over the cells where ``cells (B, H, W)``: (B, N, D)."""
    weight = cells.unsqueeze(1).to(cell_map.dtype)
    total = bev_to_tokens(cell_map * weight, patch)  # (B, N, D), mean over all cells of a token
    share = bev_to_tokens(weight, patch)  # (B, N, 1)
    return total / share.clamp(min=1e-6)


class JEPAStep:
    """The JEPA computation, configured once and applied to batches with the current networks.

    Args:
        grid: the voxel grid.
        token_patch: BEV cells per token side.
        block_masks: masked-block sampler.
        occluded_targets: occluded-region sampler, or None.
        future_targets: future-keyframe sampler, or None.
        occupied_min_height: voxel-column height (m) of an occupied future cell.
        regression: regression loss kind.
        smooth_l1_beta: smooth-L1 threshold.
        seed: sampler seed.
        unconditioned_rollout: also roll the future out from the context without the ego's actions (loss
            ``unconditioned``): to predict where the world will stand in the ego's future frames, the context
            must then tell how the ego is moving, which the action-conditioned targets never ask of it.
    """

    def __init__(
        self,
        grid: BevGrid,
        token_patch: int,
        block_masks: MultiBlockMaskSampler,
        occluded_targets: OccludedTokenSampler | None,
        future_targets: FutureTokenSampler | None,
        occupied_min_height: float,
        regression: RegressionKind,
        smooth_l1_beta: float,
        seed: int,
        unconditioned_rollout: bool = False,
    ) -> None:
        self.grid = grid
        self.patch = token_patch
        self.token_shape = token_grid_shape(grid, token_patch)
        self.token_grid = token_bev_grid(grid, token_patch)
        self.num_tokens = self.token_shape[0] * self.token_shape[1]
        self.block_masks = block_masks
        self.occluded_targets = occluded_targets
        self.future_targets = future_targets
        self.occupied_min_height = occupied_min_height
        self.regression = regression
        self.beta = smooth_l1_beta
        self.seed = seed
        self.unconditioned_rollout = unconditioned_rollout

    @property
    def future_steps(self) -> int:
        return self.future_targets.steps if self.future_targets is not None else 0

    def _error(self, prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return regression_error(prediction, target, self.regression, self.beta)

    def _loss(self, prediction: torch.Tensor, target: torch.Tensor, targets: TargetTokens) -> torch.Tensor:
        error = self._error(
            gather_tokens(prediction, targets.indices), gather_tokens(target, targets.indices)
        )
        return weighted_mean(error, targets.weights)

    def __call__(
        self,
        batch: BevBatch,
        encoder: nn.Module,
        target_encoder: nn.Module,
        predictor: BEVPredictor | None,
        stream: int,
        step: int,
        first_index: int,
        evaluate: bool = False,
        other_actions: torch.Tensor | None = None,
    ) -> JEPAOutputs:
        """Run the step.

        Args:
            batch: the batch.
            encoder: the context encoder (trained).
            target_encoder: the EMA target encoder (run without gradients).
            predictor: the predictor, or None to predict each token by its context embedding.
            stream, step, first_index: randomness keys of the samplers.
            evaluate: also compute ``evaluation``: ``masked_block_mean_baseline_loss`` (predicting the batch's
                mean target), and with futures ``future_loss`` (rollout from the context through every
                step), ``future_mean_baseline_loss`` and ``future_loss_shuffled_actions`` (the same rollout
                driven by ``other_actions``).
            other_actions: (B, K, 4) actions of other samples, in the frames their steps start from, for
                ``future_loss_shuffled_actions``; None: the batch's own actions rolled by one sample.

        Returns:
            The outputs.
        """
        keys = (self.seed, stream, step, first_index)
        batch_size, num_tokens = batch.voxels.batch_size, self.num_tokens
        steps = self.future_steps
        views = encode_target_views(target_encoder, batch, steps, self.grid, self.occupied_min_height)
        target_now = bev_to_tokens(views.now, self.patch)  # (B, N, D)

        occupied_now = pool_cells_to_tokens(batch.visibility == OCCUPIED, self.patch)  # (B, N)
        blocks = concat_targets(
            self.block_masks.sample(occupied_now.view(batch_size, *self.token_shape), *keys)
        )
        hidden = indices_to_mask(blocks.indices, num_tokens)  # (B, N)
        occluded, occluded_target = None, None
        if self.occluded_targets is not None and steps:
            futures = batch.futures
            target_map, available = occluded_target_map(
                views, futures.valid[:, :steps], futures.poses[:, :steps], self.grid
            )  # (B, D, H, W), (B, H, W)
            occluded_cells = (
                (batch.visibility == UNOBSERVED) & (batch.target_visibility != UNOBSERVED) & available
            )
            occluded = self.occluded_targets.sample(
                pool_cells_to_tokens(occluded_cells, self.patch),
                pool_cells_to_tokens(batch.target_visibility == OCCUPIED, self.patch),
                pool_cells_to_tokens(available, self.patch) > 0,
                *keys,
            )
            occluded_target = masked_token_mean(target_map, available, self.patch)  # (B, N, D)
            hidden |= indices_to_mask(occluded.indices, num_tokens, occluded.weights > 0)
        known = ~hidden

        context_voxels = drop_voxels_in_tokens(batch.voxels, hidden, self.grid, self.patch)
        context_tokens = bev_to_tokens(encoder(context_voxels), self.patch)  # (B, N, D)

        def predict(source, source_known, kind, time_offset, actions=None):
            if predictor is None:
                return source
            return predictor(source, source_known, kind, time_offset, actions)

        zero = context_tokens.new_zeros(())
        losses = {"occluded": zero, "future": zero, "rollout": zero, "unconditioned": zero}
        block_prediction = predict(context_tokens, known, TargetKind.MASKED_BLOCK, 0)  # (B, N, D)
        losses["masked_block"] = self._loss(block_prediction, target_now, blocks)
        if occluded is not None and occluded.indices.shape[1]:
            occluded_prediction = predict(context_tokens, known, TargetKind.OCCLUDED, 0)
            losses["occluded"] = self._loss(occluded_prediction, occluded_target, occluded)
        context_embeddings = context_tokens[known]  # (N_known, D)
        losses["variance"] = variance_loss(context_embeddings)
        losses["covariance"] = covariance_loss(context_embeddings)
        outputs = JEPAOutputs(
            losses=losses,
            context_tokens=context_tokens,
            known=known,
            target_tokens=target_now,
            block_prediction=block_prediction,
            block_error=self._error(block_prediction, target_now).detach(),
        )
        if evaluate:
            mean_target = _weighted_mean_target(target_now, blocks)  # (B, 1, D)
            outputs.evaluation["masked_block_mean_baseline_loss"] = self._loss(
                mean_target.expand_as(target_now), target_now, blocks
            )
        if steps:
            self._future_losses(
                batch, views, context_tokens, known, predict, outputs, evaluate, other_actions
            )
        return outputs

    def step_into_future(
        self,
        predict: Predict,
        source: torch.Tensor,
        source_known: torch.Tensor,
        time_offset: int,
        step_actions: torch.Tensor | None,
    ) -> torch.Tensor:
        """One future step: carry ``source (B, N, D)`` (known where ``source_known (B, N)``) along the step's
        ego motion ``step_actions (B, 4)`` (in the frame the step starts from), then let the predictor fill in
        keyframe ``time_offset``'s tokens: (B, N, D) in that keyframe's own frame. Without actions (None) the
        source stays where it stands and the predictor itself has to move it by the ego's motion."""
        if step_actions is None:
            return predict(source, source_known, TargetKind.FUTURE, time_offset, None)
        moved, moved_known = ego_motion_compensate(source, source_known, step_actions, self.token_grid)
        return predict(moved, moved_known, TargetKind.FUTURE, time_offset, step_actions)

    def rollout(
        self,
        predict: Predict,
        context_tokens: torch.Tensor,
        known: torch.Tensor,
        step_actions: torch.Tensor | None,
        steps: int | None = None,
    ) -> list[torch.Tensor]:
        """Predicted tokens of keyframes t+1 ... t+K, each step from the previous prediction.

        Args:
            predict: the predictor call (see ``__call__``).
            context_tokens: (B, N, D) context tokens of the current keyframe.
            known: (B, N) bool, tokens that carry an embedding.
            step_actions: (B, K, 4) actions, each in the frame its step starts from (``actions_in_step_frames``),
                or None for the rollout that is not told how the ego moves.
            steps: K, needed only without actions.

        Returns:
            K tensors (B, N, D): layer-normalised target predictions, step k in keyframe k's own frame.
        """
        if step_actions is not None:
            steps = step_actions.shape[1]
        elif steps is None:
            raise ValueError("a rollout without actions needs its number of steps")

        def action(k: int) -> torch.Tensor | None:
            return step_actions[:, k] if step_actions is not None else None

        predictions = [self.step_into_future(predict, context_tokens, known, 1, action(0))]
        all_known = torch.ones_like(known)
        for k in range(1, steps):
            predictions.append(self.step_into_future(predict, predictions[-1], all_known, k + 1, action(k)))
        return predictions

    def _future_losses(
        self,
        batch: BevBatch,
        views: TargetViews,
        context_tokens: torch.Tensor,
        known: torch.Tensor,
        predict: Predict,
        outputs: JEPAOutputs,
        evaluate: bool,
        other_actions: torch.Tensor | None,
    ) -> None:
        """Future keyframes: every step carries its source tokens along the step's ego motion
        (``ego_motion_compensate``), then the predictor fills in what moved and what came into view. Teacher
        forcing steps into keyframe k from the target embedding of keyframe k-1; the rollout steps from the
        context through its own predictions; the unconditioned rollout (when asked for) does the same without
        the actions. Adds ``future``, ``rollout`` and ``unconditioned`` to ``outputs.losses``."""
        steps = self.future_steps
        futures = batch.futures
        actions = actions_in_step_frames(futures.actions[:, :steps], futures.poses[:, :steps])  # (B, K, 4)
        targets = self.future_targets.sample(
            torch.stack(
                [pool_cells_to_tokens(views.future_occupied[:, k], self.patch) for k in range(steps)], 1
            ),
            futures.valid[:, :steps],
        )
        future_tokens = [
            bev_to_tokens(views.futures[:, k], self.patch) for k in range(steps)
        ]  # K x (B, N, D)
        all_known = torch.ones_like(known)

        def step_into(source, source_known, time_offset, step_actions):
            return self.step_into_future(predict, source, source_known, time_offset, step_actions)

        def rollout(step_actions: torch.Tensor) -> list[torch.Tensor]:
            return self.rollout(predict, context_tokens, known, step_actions)

        def loss_over_steps(predictions: list[torch.Tensor], first: int = 0) -> torch.Tensor:
            errors = [self._error(p, t) for p, t in zip(predictions, future_tokens[first:], strict=True)]
            weights = [t.weights for t in targets[first:]]
            return weighted_mean(torch.cat(errors, 1), torch.cat(weights, 1))

        rolled_out = rollout(actions)
        teacher_forced = rolled_out[:1] + [
            step_into(future_tokens[k - 1], all_known, k + 1, actions[:, k]) for k in range(1, steps)
        ]
        outputs.losses["future"] = loss_over_steps(teacher_forced)
        if steps > 1:
            outputs.losses["rollout"] = loss_over_steps(rolled_out[1:], first=1)
        if self.unconditioned_rollout:
            outputs.losses["unconditioned"] = loss_over_steps(
                self.rollout(predict, context_tokens, known, None, steps)
            )
        if not evaluate:
            return
        outputs.evaluation["future_loss"] = loss_over_steps(rolled_out)
        mean_targets = [
            _weighted_mean_target(future_tokens[k], targets[k]).expand_as(future_tokens[k])
            for k in range(steps)
        ]
        errors = [self._error(m, t) for m, t in zip(mean_targets, future_tokens, strict=True)]
        outputs.evaluation["future_mean_baseline_loss"] = weighted_mean(
            torch.cat(errors, 1), torch.cat([t.weights for t in targets], 1)
        )
        if other_actions is None and actions.shape[0] > 1:
            other_actions = actions.roll(1, dims=0)
        if other_actions is not None:
            outputs.evaluation["future_loss_shuffled_actions"] = loss_over_steps(
                rollout(other_actions[:, :steps])
            )


def _weighted_mean_target(target: torch.Tensor, targets: TargetTokens) -> torch.Tensor:
    """The batch's weighted mean layer-normalised target embedding over ``targets``: (1, 1, D)."""
    normalised = layer_normalize(gather_tokens(target, targets.indices))  # (B, M, D)
    weights = targets.weights.unsqueeze(-1)
    return ((normalised * weights).sum(dim=(0, 1)) / weights.sum().clamp(min=1e-6)).view(1, 1, -1)
