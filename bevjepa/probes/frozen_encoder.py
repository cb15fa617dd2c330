"""Frozen encoders for probing: the ``probe_encoder()`` of a pretraining checkpoint, or a random-init copy.

Every pretraining LightningModule (JEPA, masked-occupancy reconstruction, supervised occupancy) exposes
``probe_encoder()``, ``grid`` and ``token_patch``; a checkpoint names its class in its hyperparameters when the
``bevjepa`` CLI wrote it (``_class_path``), otherwise the caller names it.
"""

import copy
import hashlib
import importlib
from dataclasses import dataclass
from pathlib import Path

import lightning as L
import torch
from torch import nn

from bevjepa.encoders import SparseBEVEncoder
from bevjepa.grid import BevGrid

# Class paths outside these packages are refused: loading a checkpoint must not import arbitrary code.
TRUSTED_PACKAGES = ("bevjepa.",)


def freeze_(module: nn.Module) -> nn.Module:
    """Evaluation mode and no gradients for every parameter of ``module`` (in place); returns it."""
    module.eval()
    module.requires_grad_(False)
    return module


def file_sha256(path: str | Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass
class FrozenEncoder:
    """An encoder whose features probes read, with what identifies it in a results table.

    Attributes:
        name: the method's name in the table (``jepa``, ``random``, ``mae``, ...).
        encoder: the encoder, frozen (evaluation mode, no gradients).
        grid: the voxel grid it was trained on.
        in_channels: per-voxel input features it expects.
        token_patch: BEV cells per token side of its pretraining.
        checkpoint: the checkpoint file, or None (random init).
        sha256: the checkpoint's SHA-256, or ``"random-init seed <s>"``.
        module_class: class path of the pretraining module.
        global_step: optimizer steps of the pretraining run (0 for random init).
        source: the whole pretraining module (frozen), for methods that can forecast (JEPA's
            ``predict_future_tokens``); None for random init.
    """

    name: str
    encoder: SparseBEVEncoder
    grid: BevGrid
    in_channels: int
    token_patch: int
    checkpoint: str | None
    sha256: str
    module_class: str
    global_step: int
    source: L.LightningModule | None = None

    @property
    def can_forecast(self) -> bool:
        """Whether the source module predicts future tokens from the logged actions."""
        return self.source is not None and hasattr(self.source, "predict_future_tokens")


def _resolve_class(class_path: str) -> type[L.LightningModule]:
    if not class_path.startswith(TRUSTED_PACKAGES):
        raise ValueError(
            f"checkpoint class {class_path!r} is outside {TRUSTED_PACKAGES}; refusing to import it"
        )
    module_path, _, name = class_path.rpartition(".")
    cls = getattr(importlib.import_module(module_path), name, None)
    if not (isinstance(cls, type) and issubclass(cls, L.LightningModule)):
        raise ValueError(f"checkpoint class {class_path!r} is not a LightningModule")
    if not hasattr(cls, "probe_encoder"):
        raise ValueError(
            f"{class_path} has no probe_encoder(): it is not a pretraining module probes can read"
        )
    return cls


def load_frozen_encoder(name: str, checkpoint: str | Path, module_class: str | None = None) -> FrozenEncoder:
    """Load a pretraining checkpoint and freeze its probe encoder.

    Args:
        name: the method's name in the results.
        checkpoint: a Lightning checkpoint of a pretraining module.
        module_class: class path of that module; None reads it from the checkpoint (the CLI stores it).

    Returns:
        The frozen encoder, with the checkpoint's hash and the module (also frozen) as ``source``.

    Raises:
        FileNotFoundError: no such checkpoint.
        ValueError: the checkpoint names no class and none was given, or the class is not a pretraining module.
    """
    path = Path(checkpoint)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    # The CLI stores plain config values, direct training may pickle init objects (partials, dataclasses).
    contents = torch.load(path, map_location="cpu", weights_only=False)
    hparams = contents.get("hyper_parameters", {})
    class_path = module_class or hparams.get("_class_path")
    if class_path is None:
        raise ValueError(
            f"checkpoint {path} does not name its module class; give it (e.g. bevjepa.jepa.JEPAPretrainModule)"
        )
    module = _resolve_class(class_path).load_from_checkpoint(path, map_location="cpu", weights_only=False)
    freeze_(module)
    return FrozenEncoder(
        name=name,
        encoder=module.probe_encoder(),
        grid=module.grid,
        in_channels=int(module.hparams["in_channels"]),
        token_patch=int(module.token_patch),
        checkpoint=str(path),
        sha256=file_sha256(path),
        module_class=class_path,
        global_step=int(contents.get("global_step", 0)),
        source=module,
    )


def random_init_like(reference: FrozenEncoder, seed: int, name: str = "random") -> FrozenEncoder:
    """A frozen encoder of the same architecture as ``reference`` with fresh, seeded initial weights.

    BatchNorm layers start from their initial statistics (mean 0, variance 1), as an untrained network has.
    """
    encoder = copy.deepcopy(reference.encoder)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for layer in encoder.modules():
            if layer is not encoder and hasattr(layer, "reset_parameters"):
                layer.reset_parameters()
    freeze_(encoder)
    return FrozenEncoder(
        name=name,
        encoder=encoder,
        grid=reference.grid,
        in_channels=reference.in_channels,
        token_patch=reference.token_patch,
        checkpoint=None,
        sha256=f"random-init seed {seed}",
        module_class=reference.module_class,
        global_step=0,
    )
