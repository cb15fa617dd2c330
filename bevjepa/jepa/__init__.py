"""JEPA pretraining in BEV embedding space: target samplers, EMA target encoder, predictor, losses, monitors."""

from bevjepa.jepa.collapse import CollapseMonitor
from bevjepa.jepa.masks import FutureTokenSampler, MultiBlockMaskSampler, OccludedTokenSampler
from bevjepa.jepa.module import JEPAPretrainModule, LossWeights, OptimizerSettings
from bevjepa.jepa.predictor import BEVPredictor, TargetKind

__all__ = [
    "BEVPredictor",
    "CollapseMonitor",
    "FutureTokenSampler",
    "JEPAPretrainModule",
    "LossWeights",
    "MultiBlockMaskSampler",
    "OccludedTokenSampler",
    "OptimizerSettings",
    "TargetKind",
]
