"""Exact resume: N steps straight equal N/2 steps, a checkpoint, and N/2 more (weights, EMA, data order)."""

import torch
from jepa_scenes import SceneDataModule
from small_models import cpu_trainer, small_module


def _module_and_data():
    torch.manual_seed(0)
    return small_module(monitor_every_n_steps=2), SceneDataModule(train_scenes=4, val_scenes=2, batch_size=2)


def test_resume_from_checkpoint_is_exact(tmp_path):
    module, data = _module_and_data()
    cpu_trainer(tmp_path / "straight", max_epochs=2, limit_val_batches=0).fit(module, data)
    straight = module.state_dict()

    module, data = _module_and_data()
    first_half = cpu_trainer(tmp_path / "half", max_epochs=1, limit_val_batches=0)
    first_half.fit(module, data)
    checkpoint = tmp_path / "half.ckpt"
    first_half.save_checkpoint(checkpoint)

    torch.manual_seed(123)  # a different initialisation: everything must come from the checkpoint
    module, data = (
        small_module(monitor_every_n_steps=2),
        SceneDataModule(train_scenes=4, val_scenes=2, batch_size=2),
    )
    resumed_trainer = cpu_trainer(tmp_path / "resumed", max_epochs=2, limit_val_batches=0)
    # Built in Python, the module's hyperparameters are objects (grid, samplers); through the CLI they are
    # plain config values and the default weights-only loading applies.
    resumed_trainer.fit(module, data, ckpt_path=checkpoint, weights_only=False)
    resumed = module.state_dict()

    assert resumed_trainer.global_step == 4
    assert straight.keys() == resumed.keys()
    assert any(k.startswith("target_encoder.") for k in resumed)
    for name in straight:
        torch.testing.assert_close(resumed[name], straight[name], atol=1e-6, rtol=0, msg=name)
