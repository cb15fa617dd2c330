"""Action sensitivity: future predictions depend on the ego's actions, and after training on the synthetic
``tiny`` dataset the true actions predict the future better than actions of other samples."""

import pytest
import torch
from jepa_scenes import make_batch
from small_models import cpu_trainer, small_module

from bevjepa.grid import BevGrid
from bevjepa.jepa import OptimizerSettings
from bevjepa.jepa.module import VALIDATION_STREAM

STEPS = 150


def test_future_prediction_changes_with_the_actions():
    torch.manual_seed(0)
    outputs = small_module().run_jepa(make_batch(seed=2, batch_size=3), VALIDATION_STREAM, 0, evaluate=True)
    assert outputs.evaluation["future_loss"] != outputs.evaluation["future_loss_shuffled_actions"]


@pytest.fixture(scope="module")
def tiny_dataroot(tmp_path_factory):
    from bevjepa.sim.generate import generate_dataset
    from bevjepa.sim.presets import get_preset

    preset = get_preset("tiny")
    root = tmp_path_factory.mktemp("synthetic_tiny")
    generate_dataset(preset, root, seed=0, workers=1)
    return root, preset.version


@pytest.mark.slow
def test_true_actions_beat_other_actions_after_training_on_tiny(tiny_dataroot, tmp_path):
    from datamodules.nuscenes import NuScenesBEVDataModule

    dataroot, version = tiny_dataroot
    grid = BevGrid(point_cloud_range=(-32.0, -32.0, -5.0, 32.0, 32.0, 3.0), voxel_size=(0.4, 0.4, 0.25))
    # Trained and evaluated on the training scene: this checks that the predictor uses the actions, not that
    # it generalises from one scene.
    data = NuScenesBEVDataModule(
        dataroot=str(dataroot),
        version=version,
        train_split="train",
        val_split="train",
        grid=grid,
        lidar_sweeps=1,
        radar=False,
        future_steps=2,
        labels=False,
        batch_size=2,
    )
    torch.manual_seed(0)
    module = small_module(
        grid=grid,
        in_channels=data.in_channels,
        token_patch=2,
        optimizer=OptimizerSettings(learning_rate=2e-3, warmup_steps=10, total_steps=STEPS),
        monitor_every_n_steps=50,
    )
    cpu_trainer(tmp_path, max_steps=STEPS, limit_val_batches=0).fit(module, data)
    metrics = cpu_trainer(tmp_path).validate(module, data, verbose=False)[0]
    assert metrics["val/future_loss"] < metrics["val/future_loss_shuffled_actions"]
    assert metrics["val/future_loss"] < metrics["val/future_mean_baseline_loss"]
