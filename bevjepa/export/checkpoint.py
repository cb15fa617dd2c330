"""Write a bevjepa checkpoint's sparse 3D backbone as a checkpoint that a detector framework loads as-is.

- mmdetection3d (``load_from``, or ``init_cfg=dict(type="Pretrained", checkpoint=..., prefix=...)``) reads
  ``{"state_dict": ...}``;
- OpenPCDet (``train.py --pretrained_model``) reads ``{"model_state": ...}``.

Only the sparse 3D part is exported: the detectors bring their own BEV backbone and heads. The export is
checked against the target module's manifest first; on any difference nothing is written.
"""

import hashlib
import os
import tempfile
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import torch

from bevjepa.export.layouts import FRAMEWORKS, Framework, file_state, rename_backbone_state
from bevjepa.export.manifest import LayoutCheck, Manifest, check_layout

# Encoders of a pretraining checkpoint, in order of preference: the EMA target encoder is the one whose
# features probes read (as I-JEPA evaluates); supervised modules have only ``encoder``.
ENCODER_NAMES = ("target_encoder", "encoder")


class LayoutMismatchError(ValueError):
    """The bevjepa encoder's architecture is not the target module's."""


@dataclass(frozen=True)
class ModuleCount:
    """Tensors of one top-level part of the target module (``conv_input``, a stage, ``conv_out``)."""

    module: str
    from_bevjepa: int
    zero_biases: int
    total: int


@dataclass(frozen=True)
class ExportReport:
    """What an export wrote."""

    framework: Framework
    module: str
    prefix: str
    encoder: str
    counts: tuple[ModuleCount, ...]
    num_parameters: int
    out: Path

    @property
    def loaded(self) -> int:
        return sum(c.from_bevjepa + c.zero_biases for c in self.counts)

    @property
    def total(self) -> int:
        return sum(c.total for c in self.counts)

    def lines(self) -> list[str]:
        """Loaded/total per module, then the whole module, as printed by ``tools/export_checkpoint.py``."""
        width = max(len(c.module) for c in self.counts)
        lines = [f"{self.framework} {self.module} at '{self.prefix}' <- {self.encoder}.backbone_3d"]
        for count in self.counts:
            zero = f"  ({count.zero_biases} zero conv biases)" if count.zero_biases else ""
            loaded = count.from_bevjepa + count.zero_biases
            lines.append(f"  {count.module:<{width}}  {loaded:>3}/{count.total:<3}{zero}".rstrip())
        share = 100.0 * self.loaded / self.total
        lines.append(
            f"  {'total':<{width}}  {self.loaded:>3}/{self.total:<3} = {share:.0f} %, "
            f"{self.num_parameters:,} parameters -> {self.out}"
        )
        return lines


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def backbone_state_from_checkpoint(
    checkpoint: str | Path, encoder: str | None = None
) -> tuple["OrderedDict[str, torch.Tensor]", str]:
    """The ``backbone_3d`` tensors of one encoder in a Lightning checkpoint, keys relative to the backbone.

    Args:
        checkpoint: a Lightning checkpoint (``state_dict`` inside) or a bare state dict.
        encoder: attribute name of the encoder in the module; ``None``: the first of ``ENCODER_NAMES`` present.

    Returns:
        The backbone state dict and the encoder's name.
    """
    path = Path(checkpoint)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    # Lightning checkpoints may pickle init objects (the CLI's plain configs, partials from direct training).
    contents = torch.load(path, map_location="cpu", weights_only=False)
    state = contents.get("state_dict", contents) if isinstance(contents, dict) else None
    if not isinstance(state, dict):
        raise ValueError(f"{path} holds no state dict")
    for name in (encoder,) if encoder else ENCODER_NAMES:
        prefix = f"{name}.backbone_3d."
        backbone = OrderedDict((k[len(prefix) :], v) for k, v in state.items() if k.startswith(prefix))
        if backbone:
            return backbone, name
    wanted = " or ".join(f"{name}.backbone_3d.*" for name in ((encoder,) if encoder else ENCODER_NAMES))
    raise ValueError(f"{path} has no {wanted} tensors: not a bevjepa encoder checkpoint")


def _module_of(key: str) -> str:
    parts = key.split(".")
    return ".".join(parts[:2]) if parts[0] == "encoder_layers" else parts[0]


def _counts(completed: "OrderedDict[str, torch.Tensor]", check: LayoutCheck) -> tuple[ModuleCount, ...]:
    zero = set(check.zero_biases)
    modules: OrderedDict[str, list[int]] = OrderedDict()
    for key in completed:
        entry = modules.setdefault(_module_of(key), [0, 0, 0])
        entry[1 if key in zero else 0] += 1
        entry[2] += 1
    return tuple(ModuleCount(name, *entry) for name, entry in modules.items())


def _package_version() -> str:
    try:
        return version("bevjepa")
    except PackageNotFoundError:
        return "unknown"


def _save_atomically(payload: dict, out: Path) -> None:
    """Write to a temporary file beside ``out`` and rename it: ``out`` is complete or untouched."""
    out.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".partial", dir=out.parent)
    os.close(handle)
    umask = os.umask(0)
    os.umask(umask)
    try:
        torch.save(payload, temporary)
        os.chmod(temporary, 0o666 & ~umask)  # as a plainly created file (temporary files start private)
        os.replace(temporary, out)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)


def _closest(
    module_state: "OrderedDict[str, torch.Tensor]", manifests: Sequence[Manifest]
) -> tuple[Manifest, LayoutCheck, "OrderedDict[str, torch.Tensor]"]:
    """The manifest with the fewest differences (the first of equals) and the check against it."""
    results = [(manifest, *check_layout(module_state, manifest)) for manifest in manifests]
    return min(results, key=lambda result: result[1].num_differences)


def export_encoder(
    checkpoint: str | Path,
    framework: Framework,
    manifests: Manifest | Sequence[Manifest],
    out: str | Path,
    prefix: str | None = None,
    encoder: str | None = None,
) -> ExportReport:
    """Export the sparse backbone of a bevjepa checkpoint for a detector framework.

    Args:
        checkpoint: bevjepa Lightning checkpoint.
        framework: ``"mmdet3d"`` or ``"openpcdet"``.
        manifests: the target module's layout, or candidates of which the one the encoder matches is used;
            the export must match it key for key and shape for shape.
        out: the checkpoint file to write.
        prefix: key prefix of the module in the detector (``None``: the manifest's, e.g. ``pts_middle_encoder.``;
            ``""`` for loading into the module itself).
        encoder: which encoder of the checkpoint (``None``: ``target_encoder`` if present, else ``encoder``).

    Returns:
        What was written, with loaded/total per module.

    Raises:
        LayoutMismatchError: the encoder's architecture differs from every manifest's module (the message
            lists the first differences from the closest); nothing is written.
    """
    if framework not in FRAMEWORKS:
        raise ValueError(f"unknown framework {framework!r}; one of {FRAMEWORKS}")
    candidates = [manifests] if isinstance(manifests, Manifest) else list(manifests)
    if not candidates:
        raise ValueError(f"no {framework} manifest to export against")
    for manifest in candidates:
        if manifest.framework != framework:
            raise ValueError(
                f"manifest {manifest.name} describes a {manifest.framework} module, not {framework}"
            )
    source = Path(checkpoint)
    backbone_state, encoder_name = backbone_state_from_checkpoint(source, encoder)
    manifest, check, completed = _closest(rename_backbone_state(backbone_state, framework), candidates)
    if not check.ok:
        raise LayoutMismatchError(
            f"{encoder_name}.backbone_3d of {source} does not match {manifest.framework} {manifest.module} "
            f"(manifest {manifest.name}): {len(check.missing)} missing, {len(check.unexpected)} unexpected, "
            f"{len(check.mismatched)} mismatched tensors; first differences:\n{check.describe()}\n"
            f"Pretrain with the matching architecture (the manifest's bevjepa_backbone: "
            f"{manifest.bevjepa_backbone}) or give the manifest of your detector's own config."
        )
    prefix = manifest.detector_prefix if prefix is None else prefix
    stored = file_state(completed, framework, prefix)
    meta = {
        "bevjepa_version": _package_version(),
        "source_checkpoint": source.name,
        "source_sha256": file_sha256(source),
        "encoder": f"{encoder_name}.backbone_3d",
        "target": f"{manifest.framework} {manifest.module} ({manifest.name})",
        "zero_conv_biases": len(check.zero_biases),
    }
    if framework == "mmdet3d":
        payload = {"state_dict": stored, "meta": meta}
    else:
        payload = {"model_state": stored, "version": f"bevjepa {meta['bevjepa_version']}", "meta": meta}
    out = Path(out)
    _save_atomically(payload, out)
    return ExportReport(
        framework=framework,
        module=manifest.module,
        prefix=prefix,
        encoder=encoder_name,
        counts=_counts(completed, check),
        num_parameters=manifest.num_parameters(),
        out=out,
    )
