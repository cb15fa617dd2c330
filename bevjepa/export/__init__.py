"""Export of bevjepa's sparse 3D backbone to downstream detectors (mmdetection3d, OpenPCDet)."""

from bevjepa.export.checkpoint import ExportReport, LayoutMismatchError, export_encoder
from bevjepa.export.layouts import FRAMEWORKS, rename_backbone_state
from bevjepa.export.manifest import Manifest, check_layout, load_manifest

__all__ = [
    "FRAMEWORKS",
    "ExportReport",
    "LayoutMismatchError",
    "Manifest",
    "check_layout",
    "export_encoder",
    "load_manifest",
    "rename_backbone_state",
]
