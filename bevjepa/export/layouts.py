"""Where each tensor of bevjepa's sparse 3D backbone goes in a downstream detector's encoder.

bevjepa's ``SparseBackbone3d`` names its layers as mmdetection3d's ``SparseEncoder`` does: ``conv_input``,
``encoder_layers.encoder_layer{s}.{i}`` (one *unit* per index: a residual block, a submanifold convolution
module or a stride-2 downsampling module) and ``conv_out``. OpenPCDet's ``VoxelBackBone8x`` and
``VoxelResBackBone8x`` hold the same units but cut the stages elsewhere: their stage ``conv{k}`` *opens* with
the downsampling module, where CenterPoint's ``SparseEncoder`` *closes* a stage with it. A layout is therefore
a renaming of units plus, for mmdetection3d, a weight transposition.

Weights of sparse convolutions are 5-D. spconv 2 stores them ``(C_out, kD, kH, kW, C_in)``, spconv 1
``(kD, kH, kW, C_in, C_out)``. mmdetection3d's loader treats every 5-D weight of a checkpoint that does not mark
its modules as spconv 2 (``_metadata`` version 2) as spconv 1 and transposes it, so bevjepa writes spconv 1
layout for mmdetection3d: that loads right whatever renaming the user's config applies to the keys. OpenPCDet
loads spconv 2 layout as it is.
"""

import re
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import torch

Framework = Literal["mmdet3d", "openpcdet"]
FRAMEWORKS: tuple[Framework, ...] = ("mmdet3d", "openpcdet")

# Where the sparse encoder sits inside the detectors' state dicts.
DEFAULT_PREFIX: dict[Framework, str] = {
    "mmdet3d": "pts_middle_encoder.",  # CenterPoint; SECOND / VoxelNet use "middle_encoder."
    "openpcdet": "backbone_3d.",
}

_UNIT_KEY = re.compile(r"^encoder_layers\.encoder_layer(\d+)\.(\d+)\.(.+)$")
_RESIDUAL_PARAMETER = re.compile(r"^(conv1|conv2|bn1|bn2)\.")


@dataclass(frozen=True)
class EncoderUnit:
    """One entry of a bevjepa stage: ``encoder_layers.encoder_layer{stage}.{index}``.

    Attributes:
        stage: 1-based stage number.
        index: position within the stage.
        downsamples: a stride-2 ``SparseConv3d`` module (it opens a new resolution).
    """

    stage: int
    index: int
    downsamples: bool

    @property
    def bevjepa_prefix(self) -> str:
        return f"encoder_layers.encoder_layer{self.stage}.{self.index}."


def encoder_units(backbone_state: Mapping[str, torch.Tensor]) -> list[EncoderUnit]:
    """The units of a ``SparseBackbone3d`` state dict, in forward order.

    Which units downsample follows ``SparseBackbone3d``'s construction: in a residual (``basicblock``) backbone
    every unit that is not a residual block; otherwise the first unit of every stage but the first.

    Args:
        backbone_state: keys relative to the backbone (``conv_input.0.weight``, ...).

    Raises:
        ValueError: the keys are not those of a ``SparseBackbone3d``.
    """
    parameters: dict[tuple[int, int], list[str]] = {}
    for key in backbone_state:
        match = _UNIT_KEY.match(key)
        if match:
            parameters.setdefault((int(match[1]), int(match[2])), []).append(match[3])
        elif not key.startswith(("conv_input.", "conv_out.")):
            raise ValueError(f"{key!r} is not a key of bevjepa's sparse backbone")
    if not parameters or not any(k.startswith("conv_input.") for k in backbone_state):
        raise ValueError("no sparse backbone tensors (conv_input, encoder_layers, conv_out) found")
    residual = {
        unit for unit, names in parameters.items() if any(_RESIDUAL_PARAMETER.match(n) for n in names)
    }
    units = []
    for stage, index in sorted(parameters):
        downsamples = (stage, index) not in residual if residual else (stage > 1 and index == 0)
        units.append(EncoderUnit(stage, index, downsamples))
    return units


def _openpcdet_unit_prefixes(units: list[EncoderUnit]) -> dict[str, str]:
    """bevjepa unit prefix -> ``conv{k}.{j}.``: a new stage starts at every downsampling unit."""
    prefixes = {}
    stage, position = 1, 0
    for number, unit in enumerate(units):
        if unit.downsamples and number > 0:
            stage, position = stage + 1, 0
        prefixes[unit.bevjepa_prefix] = f"conv{stage}.{position}."
        position += 1
    return prefixes


def to_spconv1_layout(weight: torch.Tensor) -> torch.Tensor:
    """spconv 2 ``(C_out, kD, kH, kW, C_in)`` -> spconv 1 ``(kD, kH, kW, C_in, C_out)``, contiguous."""
    return weight.permute(1, 2, 3, 4, 0).contiguous()


def from_spconv1_layout(weight: torch.Tensor) -> torch.Tensor:
    """Inverse of ``to_spconv1_layout`` (what mmdetection3d's loader applies)."""
    return weight.permute(4, 0, 1, 2, 3).contiguous()


def target_key(framework: Framework, key: str, unit_prefixes: Mapping[str, str]) -> str:
    """The detector module's key (without the detector prefix) of a bevjepa backbone key."""
    if framework == "mmdet3d" or key.startswith(("conv_input.", "conv_out.")):
        return key
    for bevjepa_prefix, openpcdet_prefix in unit_prefixes.items():
        if key.startswith(bevjepa_prefix):
            return openpcdet_prefix + key[len(bevjepa_prefix) :]
    raise ValueError(f"{key!r} belongs to no encoder unit")


def rename_backbone_state(
    backbone_state: Mapping[str, torch.Tensor], framework: Framework
) -> "OrderedDict[str, torch.Tensor]":
    """A ``SparseBackbone3d`` state dict under the detector sparse encoder's names (relative to that module),
    tensors unchanged: what the detector's module holds once loaded.

    Args:
        backbone_state: keys relative to the backbone (``conv_input.0.weight``, ...).
        framework: ``"mmdet3d"`` (``SparseEncoder``) or ``"openpcdet"`` (``VoxelBackBone8x`` /
            ``VoxelResBackBone8x``).
    """
    if framework not in FRAMEWORKS:
        raise ValueError(f"unknown framework {framework!r}; one of {FRAMEWORKS}")
    unit_prefixes = _openpcdet_unit_prefixes(encoder_units(backbone_state))
    return OrderedDict(
        (target_key(framework, key, unit_prefixes), tensor.detach()) for key, tensor in backbone_state.items()
    )


def file_state(
    module_state: Mapping[str, torch.Tensor], framework: Framework, prefix: str
) -> "OrderedDict[str, torch.Tensor]":
    """The tensors as the checkpoint file stores them: detector prefix on every key, spconv 1 layout of 5-D
    weights for mmdetection3d (see the module docstring), contiguous copies."""
    stored: OrderedDict[str, torch.Tensor] = OrderedDict()
    for key, tensor in module_state.items():
        if framework == "mmdet3d" and tensor.ndim == 5:
            tensor = to_spconv1_layout(tensor)
        stored[prefix + key] = tensor.contiguous().clone()
    return stored
