"""The pretrained JEPA as a world model for planning: encode an observation, roll candidate actions forward."""

import torch

from bevjepa.batch import VoxelBatch
from bevjepa.encoders.tokens import bev_to_tokens, token_bev_grid
from bevjepa.grid import BevGrid
from bevjepa.jepa.future_geometry import actions_in_step_frames
from bevjepa.jepa.losses import layer_normalize
from bevjepa.jepa.module import JEPAPretrainModule


class LatentWorldModel:
    """Frozen encoders and predictor of a ``JEPAPretrainModule``.

    Args:
        module: the pretrained module (put in evaluation mode; nothing is trained here).
    """

    def __init__(self, module: JEPAPretrainModule) -> None:
        if module.predictor is None:
            raise ValueError("planning needs an action-conditioned predictor; this module has none")
        self.module = module.eval()
        self.grid: BevGrid = module.grid
        self.patch: int = module.token_patch
        self.token_shape: tuple[int, int] = module.token_shape
        self.token_grid = token_bev_grid(module.grid, module.token_patch)
        self.max_steps: int = module.predictor.max_time_offset

    @property
    def device(self) -> torch.device:
        return next(self.module.parameters()).device

    @torch.no_grad()
    def context_tokens(self, voxels: VoxelBatch) -> torch.Tensor:
        """(B, N, D) context-encoder tokens of an observation (the rollout's start)."""
        return bev_to_tokens(self.module.encoder(voxels), self.patch)

    @torch.no_grad()
    def target_tokens(self, voxels: VoxelBatch) -> torch.Tensor:
        """(B, N, D) layer-normalised target-encoder tokens (the space predictions and goals live in)."""
        return layer_normalize(bev_to_tokens(self.module.target_encoder(voxels), self.patch))

    @torch.no_grad()
    def rollout(self, context: torch.Tensor, actions: torch.Tensor, poses: torch.Tensor) -> torch.Tensor:
        """Predict the tokens of the next keyframes under candidate actions.

        Args:
            context: (B, N, D) context tokens of each problem.
            actions: (B, S, H, 4) ``[dx, dy, dyaw, speed]`` in the LiDAR frame now.
            poses: (B, S, H, 4, 4) each step's LiDAR frame in the LiDAR frame now.

        Returns:
            (B, S, H, N, D) predicted layer-normalised target tokens, step k in its own LiDAR frame.
        """
        batch, samples, horizon = actions.shape[:3]
        if horizon > self.max_steps:
            raise ValueError(f"the predictor was trained for {self.max_steps} steps, not {horizon}")
        step_actions = actions_in_step_frames(actions.flatten(0, 1), poses.flatten(0, 1))  # (B * S, H, 4)
        source = context.repeat_interleave(samples, dim=0)  # (B * S, N, D)
        known = torch.ones(source.shape[:2], dtype=torch.bool, device=source.device)
        predicted = self.module.jepa.rollout(self.module.predictor, source, known, step_actions.float())
        return torch.stack(predicted, dim=1).view(batch, samples, horizon, *context.shape[1:])
