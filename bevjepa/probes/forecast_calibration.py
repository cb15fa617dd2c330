"""Forecast tokens read in the statistics of the tokens the heads were trained on.

A world model trained by regression predicts toward the conditional mean: its forecast tokens spread less per
dimension than the encoder's tokens of the same keyframes (their standard deviation is 0.8-0.9 of the tokens'
on the demo data, less the further the rollout goes). The occupancy head standardises its input with the
present tokens' statistics, so an uncalibrated forecast reads as a low-contrast scene. Before decoding, each
forecast step is therefore mapped per dimension onto the present tokens' mean and spread, with statistics
measured on the training split's forecasts and tokens (no labels) and applied unchanged to every split.
"""

from collections.abc import Iterable
from dataclasses import dataclass

import torch

from bevjepa.probes.features import SplitFeatures


@dataclass(frozen=True)
class ForecastCalibration:
    """A per-step, per-dimension affine map of forecast tokens onto the present tokens' statistics.

    Attributes:
        forecast_mean, forecast_std: (K, D) of the training forecasts at each step.
        token_mean, token_std: (D,) of the training tokens.
    """

    forecast_mean: torch.Tensor
    forecast_std: torch.Tensor
    token_mean: torch.Tensor
    token_std: torch.Tensor

    @classmethod
    def fit(cls, tokens: torch.Tensor, forecasts: torch.Tensor, eps: float = 1e-6) -> "ForecastCalibration":
        """Statistics of ``tokens (S, N, D)`` and ``forecasts (S, K, N, D)`` over samples and tokens."""
        return cls(
            forecast_mean=forecasts.mean(dim=(0, 2)),
            forecast_std=forecasts.std(dim=(0, 2)).clamp(min=eps),
            token_mean=tokens.mean(dim=(0, 1)),
            token_std=tokens.std(dim=(0, 1)),
        )

    def __call__(self, forecasts: torch.Tensor) -> torch.Tensor:
        """Calibrated ``forecasts (S, K, N, D)``: each step standardised, then given the tokens' statistics."""
        steps = forecasts.shape[1]
        mean, std = self.forecast_mean[:steps, None], self.forecast_std[:steps, None]  # (K, 1, D)
        return (forecasts - mean) / std * self.token_std + self.token_mean


def calibrate_forecasts(
    train: SplitFeatures, splits: Iterable[SplitFeatures]
) -> dict[str, ForecastCalibration]:
    """Fit each forecasting method's calibration on ``train`` and apply it to ``train`` and ``splits`` in place.

    Returns:
        method name -> its calibration.
    """
    calibrations = {
        name: ForecastCalibration.fit(train.tokens[name], forecasts)
        for name, forecasts in train.forecasts.items()
    }
    for features in (train, *splits):
        for name, calibration in calibrations.items():
            if name in features.forecasts:
                features.forecasts[name] = calibration(features.forecasts[name])
    return calibrations
