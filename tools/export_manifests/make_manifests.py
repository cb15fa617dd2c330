"""Record the state-dict layout of the detectors' sparse encoders as the JSON manifests beside this file.

Run it in an environment with mmdetection3d installed (and spconv 2, and bevjepa for its version string):

    python tools/export_manifests/make_manifests.py --out tools/export_manifests \
        --openpcdet-root PATH_TO_AN_OPENPCDET_CHECKOUT [--frameworks mmdet3d openpcdet]

mmdetection3d modules are built from the configs that ship with the installed ``mmdet3d`` package (the full
CenterPoint detector, whose ``pts_middle_encoder`` is recorded). OpenPCDet is not a pip package and its
``setup.py`` compiles CUDA operators, so its backbones are built straight from the checkout's
``pcdet/models/backbones_3d/spconv_backbone.py`` (which needs only torch and spconv), without installing
``pcdet``.
"""

import argparse
import importlib.util
import json
import sys
import types
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import numpy as np
import torch

MANIFEST_DIR = Path(__file__).resolve().parent
REGENERATE = (
    "python tools/export_manifests/make_manifests.py --out tools/export_manifests --openpcdet-root PATH"
)

CENTERPOINT_CHANNELS = [[16, 16, 32], [32, 32, 64], [64, 64, 128], [128, 128]]
CENTERPOINT_PADDINGS = [[0, 0, 1], [0, 0, 1], [0, 0, [0, 1, 1]], [1, 1]]
SECOND_CHANNELS = [[16], [32, 32, 32], [64, 64, 64], [64, 64, 64]]
SECOND_PADDINGS = [[1], [1, 1, 1], [1, 1, 1], [[0, 1, 1], 1, 1]]
# nuScenes in both frameworks: range [-51.2, -51.2, -5, 51.2, 51.2, 3] m, voxels 0.1 x 0.1 x 0.2 m.
NUSCENES_GRID_SIZE_XYZ = [1024, 1024, 40]


def _specs(state: dict[str, torch.Tensor]) -> list[dict]:
    return [
        {"key": key, "shape": list(tensor.shape), "dtype": str(tensor.dtype).removeprefix("torch.")}
        for key, tensor in state.items()
    ]


def _versions(*packages: str) -> dict[str, str]:
    """Installed versions; mmcv may be installed as ``mmcv-lite`` (no compiled operators, none needed here)."""
    found = {}
    for package in packages:
        for name in (package, f"{package}-lite"):
            try:
                found[name] = version(name)
                break
            except PackageNotFoundError:
                continue
    return found


def _write(out: Path, name: str, manifest: dict) -> None:
    """Header fields one per line, then one line per tensor (diffs of a regenerated manifest stay readable)."""
    header = [
        f" {json.dumps(key)}: {json.dumps(value)}," for key, value in manifest.items() if key != "state_dict"
    ]
    tensors = ",\n".join(f"  {json.dumps(spec)}" for spec in manifest["state_dict"])
    path = out / f"{name}.json"
    path.write_text("{\n" + "\n".join(header) + '\n "state_dict": [\n' + tensors + "\n ]\n}\n")
    print(f"{path}: {len(manifest['state_dict'])} tensors")


def _bevjepa_backbone(in_channels, channels, paddings, block_type, output_channels=128, residual_bias=False):
    return {
        "in_channels": in_channels,
        "base_channels": 16,
        "encoder_channels": channels,
        "encoder_paddings": paddings,
        "output_channels": output_channels,
        "block_type": block_type,
        "residual_conv_bias": residual_bias,
    }


def _mmdet3d_config(relative: str):
    import mmdet3d
    from mmengine.config import Config

    path = Path(mmdet3d.__file__).parent / ".mim" / "configs" / relative
    return Config.fromfile(str(path)), relative


def mmdet3d_manifests(out: Path) -> None:
    from mmdet3d.registry import MODELS
    from mmdet3d.utils import register_all_modules

    register_all_modules()
    versions = _versions("mmdet3d", "mmcv", "mmengine", "mmdet", "spconv", "torch")

    config, name = _mmdet3d_config(
        "centerpoint/centerpoint_voxel01_second_secfpn_head-circlenms_8xb4-cyclic-20e_nus-3d.py"
    )
    detector = MODELS.build(config.model)
    encoder_cfg = config.model.pts_middle_encoder
    _write(
        out,
        "mmdet3d_centerpoint_nus_sparse_encoder",
        {
            "framework": "mmdet3d",
            "module": "SparseEncoder",
            "detector_prefix": "pts_middle_encoder.",
            "description": "CenterPoint nuScenes (voxel 0.1): the full detector's pts_middle_encoder",
            "source": {"config": name, "sparse_shape": list(encoder_cfg.sparse_shape), **versions},
            "regenerate": REGENERATE,
            "bevjepa_backbone": _bevjepa_backbone(
                5, CENTERPOINT_CHANNELS, CENTERPOINT_PADDINGS, "basicblock"
            ),
            "state_dict": _specs(detector.pts_middle_encoder.state_dict()),
        },
    )

    config, name = _mmdet3d_config("second/second_hv_secfpn_8xb6-80e_kitti-3d-car.py")
    encoder_cfg = config.model.middle_encoder
    encoder = MODELS.build(encoder_cfg)
    _write(
        out,
        "mmdet3d_second_sparse_encoder",
        {
            "framework": "mmdet3d",
            "module": "SparseEncoder",
            "detector_prefix": "middle_encoder.",
            "description": "SECOND (conv_module blocks, 4 input channels): the detector's middle_encoder",
            "source": {"config": name, "sparse_shape": list(encoder_cfg.sparse_shape), **versions},
            "regenerate": REGENERATE,
            "bevjepa_backbone": _bevjepa_backbone(4, SECOND_CHANNELS, SECOND_PADDINGS, "conv_module"),
            "state_dict": _specs(encoder.state_dict()),
        },
    )


def load_openpcdet_backbones(openpcdet_root: Path) -> types.ModuleType:
    """OpenPCDet's ``spconv_backbone`` module from a checkout, with just enough of the ``pcdet`` package
    around it for its relative import of ``pcdet.utils.spconv_utils``."""
    root = Path(openpcdet_root) / "pcdet"
    for package in ("pcdet", "pcdet.utils", "pcdet.models", "pcdet.models.backbones_3d"):
        if package not in sys.modules:
            module = types.ModuleType(package)
            module.__path__ = [str(root.joinpath(*package.split(".")[1:]))]
            sys.modules[package] = module
    for name, relative in (
        ("pcdet.utils.spconv_utils", "utils/spconv_utils.py"),
        ("pcdet.models.backbones_3d.spconv_backbone", "models/backbones_3d/spconv_backbone.py"),
    ):
        if name not in sys.modules:
            spec = importlib.util.spec_from_file_location(name, root / relative)
            assert spec is not None and spec.loader is not None
            module = importlib.util.module_from_spec(spec)
            sys.modules[name] = module
            spec.loader.exec_module(module)
    return sys.modules["pcdet.models.backbones_3d.spconv_backbone"]


def openpcdet_manifests(out: Path, openpcdet_root: Path, source_note: str) -> None:
    backbones = load_openpcdet_backbones(openpcdet_root)
    grid_size = np.array(NUSCENES_GRID_SIZE_XYZ)
    versions = _versions("spconv", "torch")
    for name, cls, description, bevjepa in (
        (
            "openpcdet_voxel_res_backbone8x_nus",
            backbones.VoxelResBackBone8x,
            "VoxelResBackBone8x, nuScenes CenterPoint (cbgs_voxel01_res3d_centerpoint: MeanVFE, 5 point features)",
            _bevjepa_backbone(
                5, CENTERPOINT_CHANNELS, CENTERPOINT_PADDINGS, "basicblock", residual_bias=True
            ),
        ),
        (
            "openpcdet_voxel_backbone8x_nus",
            backbones.VoxelBackBone8x,
            "VoxelBackBone8x, nuScenes SECOND (cbgs_second_multihead: MeanVFE, 5 point features)",
            _bevjepa_backbone(5, SECOND_CHANNELS, SECOND_PADDINGS, "conv_module"),
        ),
    ):
        module = cls(model_cfg={}, input_channels=5, grid_size=grid_size)
        _write(
            out,
            name,
            {
                "framework": "openpcdet",
                "module": cls.__name__,
                "detector_prefix": "backbone_3d.",
                "description": description,
                "source": {
                    "code": source_note,
                    "sparse_shape": [int(s) for s in module.sparse_shape],
                    **versions,
                },
                "regenerate": REGENERATE,
                "bevjepa_backbone": bevjepa,
                "state_dict": _specs(module.state_dict()),
            },
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=MANIFEST_DIR, help="folder for the JSON manifests")
    parser.add_argument(
        "--frameworks", nargs="+", choices=("mmdet3d", "openpcdet"), default=["mmdet3d", "openpcdet"]
    )
    parser.add_argument("--openpcdet-root", type=Path, help="an OpenPCDet checkout (needed for openpcdet)")
    parser.add_argument(
        "--openpcdet-source-note",
        default="pcdet/models/backbones_3d/spconv_backbone.py of the given checkout",
        help="where the OpenPCDet code came from (commit), recorded in its manifests",
    )
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    if "openpcdet" in args.frameworks and args.openpcdet_root is None:
        parser.error("openpcdet manifests need --openpcdet-root")
    if "mmdet3d" in args.frameworks:
        mmdet3d_manifests(args.out)
    if "openpcdet" in args.frameworks:
        openpcdet_manifests(args.out, args.openpcdet_root, args.openpcdet_source_note)


if __name__ == "__main__":
    main()
