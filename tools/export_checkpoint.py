"""Export the sparse 3D encoder of a bevjepa checkpoint for a downstream detector.

    python tools/export_checkpoint.py --ckpt last.ckpt --to mmdet3d --out centerpoint_init.pth
    python tools/export_checkpoint.py --ckpt last.ckpt --to openpcdet --out centerpoint_init.pth

The file is checked against the target module's manifest (``tools/export_manifests/*.json``, recorded from the
real frameworks): every key present, every shape equal, no extra key. Without ``--manifest`` the framework's
manifest that the encoder matches is chosen; if none matches, the error lists the first differing keys and
shapes against the closest one, and no file is written. The tool prints loaded/total tensors per module.

mmdetection3d: ``load_from = "centerpoint_init.pth"`` (keys under ``pts_middle_encoder.``), or on the detector
``model = dict(init_cfg=dict(type="Pretrained", checkpoint="centerpoint_init.pth"))``.
OpenPCDet: ``python train.py --cfg_file ... --pretrained_model centerpoint_init.pth`` (keys under
``backbone_3d.``, in ``model_state``).
"""

import argparse
import sys
from pathlib import Path

from bevjepa.export import FRAMEWORKS, LayoutMismatchError, Manifest, export_encoder, load_manifest

MANIFEST_DIR = Path(__file__).resolve().parent / "export_manifests"


def framework_manifests(framework: str) -> list[Manifest]:
    """The committed manifests of one framework."""
    manifests = [load_manifest(path) for path in sorted(MANIFEST_DIR.glob("*.json"))]
    return [manifest for manifest in manifests if manifest.framework == framework]


def resolve_manifest(argument: str) -> Manifest:
    """A manifest given by path or by the name of a committed one."""
    path = Path(argument)
    if not path.is_file():
        path = MANIFEST_DIR / f"{argument}.json"
    return load_manifest(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--ckpt", type=Path, required=True, help="bevjepa Lightning checkpoint")
    parser.add_argument("--to", choices=FRAMEWORKS, required=True, help="target framework")
    parser.add_argument("--out", type=Path, required=True, help="checkpoint file to write")
    parser.add_argument(
        "--prefix",
        help="key prefix of the encoder in the detector (default: the manifest's, pts_middle_encoder. or "
        "backbone_3d.; SECOND in mmdetection3d: middle_encoder.; '' for the bare module)",
    )
    parser.add_argument(
        "--manifest",
        help="target layout: a committed manifest's name (e.g. openpcdet_voxel_backbone8x_nus) or a JSON path; "
        "default: the framework's manifest that the encoder matches",
    )
    parser.add_argument(
        "--encoder",
        help="encoder of the checkpoint to export (default: target_encoder, the EMA encoder, if present, "
        "else encoder)",
    )
    args = parser.parse_args(argv)
    try:
        manifests = [resolve_manifest(args.manifest)] if args.manifest else framework_manifests(args.to)
        report = export_encoder(args.ckpt, args.to, manifests, args.out, args.prefix, args.encoder)
    except (LayoutMismatchError, FileNotFoundError, ValueError) as error:
        print(f"export_checkpoint: {error}", file=sys.stderr)
        return 1
    print("\n".join(report.lines()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
