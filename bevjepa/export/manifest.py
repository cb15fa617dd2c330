"""A target module's state-dict layout (key names, shapes, dtypes), recorded once from the real framework, and
the check of an export against it.

A manifest is a JSON file:

- ``framework``: ``mmdet3d`` or ``openpcdet``; ``module``: the class; ``detector_prefix``: where the module
  sits in the full detector's state dict;
- ``source``: framework versions and config it was recorded from; ``regenerate``: the command that rewrites it;
- ``bevjepa_backbone``: the ``SparseBackbone3d`` arguments of the same architecture;
- ``state_dict``: ``[{"key", "shape", "dtype"}, ...]`` in the module's order and native (spconv 2) layout.
"""

import json
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch


@dataclass(frozen=True)
class TensorSpec:
    """One entry of a module's state dict."""

    key: str
    shape: tuple[int, ...]
    dtype: str


@dataclass(frozen=True)
class Manifest:
    """A detector module's state-dict layout (see the module docstring for the file format)."""

    name: str
    framework: str
    module: str
    detector_prefix: str
    tensors: tuple[TensorSpec, ...]
    bevjepa_backbone: dict[str, Any] = field(default_factory=dict)
    source: dict[str, Any] = field(default_factory=dict)

    @property
    def keys(self) -> list[str]:
        return [spec.key for spec in self.tensors]

    def num_parameters(self) -> int:
        """Elements of floating-point tensors that are not BatchNorm running statistics."""
        skipped = ("running_mean", "running_var", "num_batches_tracked")
        return sum(
            _numel(spec.shape)
            for spec in self.tensors
            if not spec.key.endswith(skipped) and spec.dtype.startswith("float")
        )


def _numel(shape: tuple[int, ...]) -> int:
    count = 1
    for size in shape:
        count *= size
    return count


def load_manifest(path: str | Path) -> Manifest:
    """Read a manifest file.

    Raises:
        FileNotFoundError: no such file. ValueError: not a manifest.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"manifest {path} does not exist")
    try:
        raw = json.loads(path.read_text())
        tensors = tuple(
            TensorSpec(entry["key"], tuple(int(s) for s in entry["shape"]), entry["dtype"])
            for entry in raw["state_dict"]
        )
        return Manifest(
            name=path.stem,
            framework=raw["framework"],
            module=raw["module"],
            detector_prefix=raw["detector_prefix"],
            tensors=tensors,
            bevjepa_backbone=raw.get("bevjepa_backbone", {}),
            source=raw.get("source", {}),
        )
    except (KeyError, TypeError, ValueError) as error:
        raise ValueError(f"{path} is not an export manifest: {error!r}") from error


def state_dict_specs(state: Mapping[str, torch.Tensor]) -> list[dict[str, Any]]:
    """The manifest entries of a state dict, in its order."""
    return [
        {"key": key, "shape": list(tensor.shape), "dtype": str(tensor.dtype).removeprefix("torch.")}
        for key, tensor in state.items()
    ]


@dataclass
class LayoutCheck:
    """How a module-layout state dict compares with a manifest.

    Attributes:
        missing: manifest keys the export lacks (after zero biases were filled in).
        unexpected: export keys the manifest lacks.
        mismatched: ``(key, export shape, manifest shape)`` where shapes or dtypes differ.
        zero_biases: convolution biases the export had no tensor for and fills with zeros.
    """

    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    mismatched: list[tuple[str, str, str]] = field(default_factory=list)
    zero_biases: list[str] = field(default_factory=list)

    @property
    def num_differences(self) -> int:
        return len(self.missing) + len(self.unexpected) + len(self.mismatched)

    @property
    def ok(self) -> bool:
        return self.num_differences == 0

    def describe(self, limit: int = 8) -> str:
        """The first differences, one per line."""
        lines = []
        for key in self.missing[:limit]:
            lines.append(f"  missing in the export: {key}")
        for key in self.unexpected[:limit]:
            lines.append(f"  not in the target module: {key}")
        for key, got, want in self.mismatched[:limit]:
            lines.append(f"  {key}: export {got}, target {want}")
        hidden = self.num_differences - len(lines)
        if hidden > 0:
            lines.append(f"  ... and {hidden} more")
        return "\n".join(lines)


def _is_conv_bias(key: str, manifest_specs: Mapping[str, TensorSpec]) -> bool:
    weight = manifest_specs.get(key.removesuffix(".bias") + ".weight")
    return key.endswith(".bias") and weight is not None and len(weight.shape) == 5


def check_layout(
    module_state: "OrderedDict[str, torch.Tensor]", manifest: Manifest
) -> tuple[LayoutCheck, "OrderedDict[str, torch.Tensor]"]:
    """Compare a state dict (module layout, keys relative to the module) with a manifest.

    A sparse-convolution bias that the manifest has and the export lacks is filled with zeros: bevjepa's
    convolutions before a BatchNorm have no bias, OpenPCDet's residual blocks have one, and a zero bias
    computes the same function.

    Returns:
        The comparison, and the state dict in the manifest's key order with zero biases filled in (complete
        only when the check is ``ok``).
    """
    specs = OrderedDict((spec.key, spec) for spec in manifest.tensors)
    check = LayoutCheck()
    completed: OrderedDict[str, torch.Tensor] = OrderedDict()
    for key, spec in specs.items():
        tensor = module_state.get(key)
        if tensor is None:
            if _is_conv_bias(key, specs):
                check.zero_biases.append(key)
                completed[key] = torch.zeros(spec.shape, dtype=getattr(torch, spec.dtype))
            else:
                check.missing.append(key)
            continue
        got = (tuple(tensor.shape), str(tensor.dtype).removeprefix("torch."))
        if got != (spec.shape, spec.dtype):
            check.mismatched.append((key, f"{got[0]} {got[1]}", f"{spec.shape} {spec.dtype}"))
        completed[key] = tensor
    check.unexpected = [key for key in module_state if key not in specs]
    return check, completed
