"""The collapse alarm: a deliberately collapsing setup (no EMA asymmetry, no regularisation, predictor
bypassed) trips it and stops the run; the default setup trained the same way does not."""

import torch
from jepa_scenes import SceneDataModule
from small_models import cpu_trainer, small_module

from bevjepa.jepa import CollapseMonitor, LossWeights, OptimizerSettings
from bevjepa.jepa.monitors import EmbeddingMonitors

STEPS = 20
FAST = OptimizerSettings(learning_rate=1e-2, warmup_steps=2, total_steps=100)


def _train(tmp_path, **overrides) -> tuple[CollapseMonitor, int]:
    torch.manual_seed(0)
    module = small_module(optimizer=FAST, **overrides)
    monitor = CollapseMonitor(patience=3, stop_on_collapse=True)
    trainer = cpu_trainer(tmp_path, max_steps=STEPS, callbacks=[monitor], limit_val_batches=0)
    trainer.fit(module, SceneDataModule(train_scenes=8, batch_size=2))
    return monitor, trainer.global_step


def test_collapsing_setup_trips_the_alarm(tmp_path):
    monitor, steps_run = _train(
        tmp_path,
        predictor=None,
        ema_momentum=(0.0, 0.0),
        loss_weights=LossWeights(variance=0.0, covariance=0.0),
    )
    assert monitor.alarm is not None and "representation collapse" in monitor.alarm
    assert monitor.alarm_step == steps_run < STEPS, "stop_on_collapse ends the run at the alarm"


def test_default_setup_does_not(tmp_path):
    monitor, steps_run = _train(tmp_path)
    assert monitor.alarm is None and steps_run == STEPS


def test_symptoms_name_the_numbers():
    monitor = CollapseMonitor(min_effective_rank_fraction=0.1, min_std_ratio=0.2, max_mean_cosine=0.95)
    healthy = EmbeddingMonitors(
        std_ratio=0.8, effective_rank=20.0, effective_rank_fraction=0.6, mean_cosine=0.3
    )
    assert monitor.symptoms("target", healthy) == []
    collapsed = EmbeddingMonitors(
        std_ratio=0.05, effective_rank=1.2, effective_rank_fraction=0.04, mean_cosine=0.99
    )
    found = monitor.symptoms("target", collapsed)
    assert (
        len(found) == 3 and "effective rank 1.20" in found[0] and "0.050" in found[1] and "0.9900" in found[2]
    )
