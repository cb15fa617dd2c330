"""Frozen encoders from pretraining checkpoints, and the random-init baseline."""

import hashlib

import pytest
import torch
from probe_batches import (
    GRID,
    IN_CHANNELS,
    JEPA_CLASS,
    TOKEN_PATCH,
    make_probe_batch,
    save_checkpoint,
    tiny_jepa_module,
)

from bevjepa.probes.frozen_encoder import load_frozen_encoder, random_init_like


@pytest.fixture
def checkpoint(tmp_path):
    module = tiny_jepa_module()
    with torch.no_grad():  # make the target encoder differ from a fresh one
        for parameter in module.target_encoder.parameters():
            parameter.add_(0.1)
    path = tmp_path / "jepa.ckpt"
    save_checkpoint(module, path)
    return path, module


def test_loads_the_target_encoder_frozen_with_its_hash(checkpoint):
    path, module = checkpoint
    frozen = load_frozen_encoder("jepa", path)
    assert frozen.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert (frozen.grid, frozen.in_channels, frozen.token_patch) == (GRID, IN_CHANNELS, TOKEN_PATCH)
    assert frozen.global_step == 7 and frozen.module_class == JEPA_CLASS and frozen.can_forecast
    assert not frozen.encoder.training
    assert not any(p.requires_grad for p in frozen.encoder.parameters())
    for name, tensor in module.target_encoder.state_dict().items():
        assert torch.equal(frozen.encoder.state_dict()[name], tensor), name


def test_class_path_given_by_the_caller_or_refused(tmp_path):
    module = tiny_jepa_module()
    path = tmp_path / "plain.ckpt"
    save_checkpoint(module, path, class_path=None)
    with pytest.raises(ValueError, match="does not name its module class"):
        load_frozen_encoder("jepa", path)
    assert load_frozen_encoder("jepa", path, module_class=JEPA_CLASS).encoder is not None
    with pytest.raises(ValueError, match="refusing"):
        load_frozen_encoder("jepa", path, module_class="os.system")
    with pytest.raises(FileNotFoundError):
        load_frozen_encoder("jepa", tmp_path / "missing.ckpt")


def test_random_init_is_the_same_architecture_with_seeded_fresh_weights(checkpoint):
    path, _ = checkpoint
    frozen = load_frozen_encoder("jepa", path)
    first, second, other = (random_init_like(frozen, seed) for seed in (0, 0, 1))
    reference = frozen.encoder.state_dict()
    assert first.encoder.state_dict().keys() == reference.keys()
    weights = [name for name in reference if name.endswith("weight") and reference[name].ndim > 1]
    assert all(torch.equal(first.encoder.state_dict()[n], second.encoder.state_dict()[n]) for n in weights)
    assert not any(torch.equal(first.encoder.state_dict()[n], reference[n]) for n in weights)
    assert not all(torch.equal(first.encoder.state_dict()[n], other.encoder.state_dict()[n]) for n in weights)
    assert not first.encoder.training and first.sha256 == "random-init seed 0" and not first.can_forecast
    assert first.encoder(make_probe_batch(0).voxels).shape == (2, 16, 8, 8)
