"""Forecast calibration: fitted on the training split's tokens and forecasts, applied unchanged elsewhere."""

import torch

from bevjepa.probes.features import SplitFeatures
from bevjepa.probes.forecast_calibration import ForecastCalibration, calibrate_forecasts


def test_training_forecasts_take_the_tokens_statistics_per_step_and_dimension():
    torch.manual_seed(0)
    tokens = 2.0 + 3.0 * torch.randn(40, 6, 5)  # (S, N, D)
    shrink = torch.tensor([0.5, 0.25])[None, :, None, None]
    forecasts = -1.0 + shrink * torch.randn(40, 2, 6, 5)  # (S, K, N, D): narrower each step
    calibrated = ForecastCalibration.fit(tokens, forecasts)(forecasts)
    for step in range(2):
        torch.testing.assert_close(calibrated[:, step].mean(dim=(0, 1)), tokens.mean(dim=(0, 1)))
        torch.testing.assert_close(calibrated[:, step].std(dim=(0, 1)), tokens.std(dim=(0, 1)))


def test_other_splits_use_the_training_statistics():
    torch.manual_seed(1)
    train_tokens, train_forecasts = torch.randn(30, 4, 3), 0.5 * torch.randn(30, 2, 4, 3)
    val_forecasts = 0.5 * torch.randn(10, 2, 4, 3) + 1.0  # shifted: keeps its shift after calibration
    train = SplitFeatures(labels=None, tokens={"jepa": train_tokens}, forecasts={"jepa": train_forecasts})
    val = SplitFeatures(
        labels=None, tokens={"jepa": torch.randn(10, 4, 3)}, forecasts={"jepa": val_forecasts}
    )
    calibrations = calibrate_forecasts(train, [val])
    calibration = calibrations["jepa"]
    expected = (val_forecasts - calibration.forecast_mean[:, None]) / calibration.forecast_std[:, None]
    torch.testing.assert_close(
        val.forecasts["jepa"], expected * train_tokens.std((0, 1)) + train_tokens.mean((0, 1))
    )
    assert val.forecasts["jepa"].mean() > train.forecasts["jepa"].mean() + 1.0
