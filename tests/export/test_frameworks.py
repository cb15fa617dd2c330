"""The export loaded by the real frameworks: mmdetection3d's ``SparseEncoder`` and a full CenterPoint built from
mmdetection3d's own nuScenes config take every tensor (none missing, none mismatched, all equal), and the loaded
``SparseEncoder`` computes bevjepa's features on the real nuScenes frame. The same for OpenPCDet's
``VoxelResBackBone8x`` / ``VoxelBackBone8x`` when an OpenPCDet checkout is given.

These tests are marked ``slow`` and skip where ``mmdet3d`` is not importable. Run them in an environment with
mmdetection3d installed (``make test-export`` builds one: mmcv 2.1.0 from source with its operators, then
mmengine 0.10.7, mmdet 3.3.0, mmdet3d 1.4.0 with ``numpy<2``, spconv 2 and bevjepa itself), from the repository
root:

    python -m pytest -m slow tests/export

OpenPCDet is not a pip package and its ``setup.py`` compiles CUDA operators; its backbones need only torch and
spconv, so ``BEVJEPA_OPENPCDET_ROOT=<an OpenPCDet checkout>`` makes the OpenPCDet test build them from the
checkout's ``pcdet/models/backbones_3d/spconv_backbone.py`` (skipped when unset).
"""

import importlib.util
import logging
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import REPO_ROOT, encoder_for, manifest, write_checkpoint

from bevjepa.export import export_encoder, rename_backbone_state
from bevjepa.sparse import to_sparse_tensor

pytestmark = pytest.mark.slow

CENTERPOINT_CONFIG = "centerpoint/centerpoint_voxel01_second_secfpn_head-circlenms_8xb4-cyclic-20e_nus-3d.py"
CENTERPOINT_MANIFEST = "mmdet3d_centerpoint_nus_sparse_encoder"


@pytest.fixture(scope="module")
def mmdet3d_models():
    pytest.importorskip("mmdet3d")
    import mmdet3d
    from mmdet3d.registry import MODELS
    from mmdet3d.utils import register_all_modules
    from mmengine.config import Config

    register_all_modules()
    config = Config.fromfile(str(Path(mmdet3d.__file__).parent / ".mim" / "configs" / CENTERPOINT_CONFIG))
    return MODELS, config


@pytest.fixture(scope="module")
def centerpoint_export(tmp_path_factory):
    """A bevjepa CenterPoint-architecture encoder (trained-looking weights) and its mmdetection3d export."""
    folder = tmp_path_factory.mktemp("export")
    encoder = encoder_for(CENTERPOINT_MANIFEST, seed=3)
    ckpt = write_checkpoint(folder / "pretrain.ckpt", target_encoder=encoder)
    out = folder / "centerpoint_init.pth"
    report = export_encoder(ckpt, "mmdet3d", manifest(CENTERPOINT_MANIFEST), out)
    assert report.loaded == report.total == 126
    return encoder, out


class _Messages(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def _assert_all_tensors_equal(loaded_state, encoder):
    expected = rename_backbone_state(encoder.backbone_3d.state_dict(), "mmdet3d")
    assert list(loaded_state) == list(expected)
    equal = [key for key, tensor in expected.items() if torch.equal(loaded_state[key], tensor)]
    assert len(equal) == len(expected), f"loaded/total {len(equal)}/{len(expected)}"


def test_sparse_encoder_loads_strictly_and_matches_bevjepa_on_the_real_frame(
    mmdet3d_models, centerpoint_export, real_frame_voxels
):
    from mmengine.runner import load_checkpoint

    models, config = mmdet3d_models
    encoder, out = centerpoint_export
    sparse_encoder = models.build(config.model.pts_middle_encoder).eval()
    assert config.model.pts_middle_encoder.in_channels == 5
    # strict: any missing, unexpected or size-mismatched key raises.
    load_checkpoint(
        sparse_encoder,
        str(out),
        map_location="cpu",
        strict=True,
        revise_keys=[(r"^pts_middle_encoder\.", "")],
    )
    _assert_all_tensors_equal(sparse_encoder.state_dict(), encoder)

    voxels = real_frame_voxels
    with torch.no_grad():
        theirs = sparse_encoder(voxels.features, voxels.coords, voxels.batch_size)
        ours = encoder.backbone_3d(to_sparse_tensor(voxels, encoder.grid))
    assert theirs.shape == ours.shape == (1, 256, 128, 128)
    assert ours.abs().sum() > 0
    torch.testing.assert_close(theirs, ours, rtol=1e-5, atol=1e-5)


def test_detector_pretrained_init_cfg_loads_every_encoder_tensor(mmdet3d_models, centerpoint_export):
    models, config = mmdet3d_models
    encoder, out = centerpoint_export
    detector_cfg = config.model.copy()
    detector_cfg["init_cfg"] = {"type": "Pretrained", "checkpoint": str(out)}
    detector = models.build(detector_cfg)
    detector.init_weights()
    prefix = "pts_middle_encoder."
    loaded = {k[len(prefix) :]: v for k, v in detector.state_dict().items() if k.startswith(prefix)}
    _assert_all_tensors_equal(loaded, encoder)


def test_full_centerpoint_detector_loads_the_export_as_load_from(mmdet3d_models, centerpoint_export):
    from mmengine.logging import MMLogger
    from mmengine.runner import load_checkpoint

    models, config = mmdet3d_models
    encoder, out = centerpoint_export
    detector = models.build(config.model)
    messages = _Messages()
    logger = MMLogger.get_instance("bevjepa_export_test")
    logger.addHandler(messages)
    try:
        # What Runner.load_checkpoint does for ``load_from``; the detector's other modules are not in the file.
        load_checkpoint(detector, str(out), map_location="cpu", strict=False, logger=logger)
    finally:
        logger.removeHandler(messages)
    report = "\n".join(messages.lines)
    assert "size mismatch" not in report and "unexpected key" not in report
    missing = [
        line
        for line in report.splitlines()
        if "missing keys" in line or line.startswith("pts_middle_encoder")
    ]
    assert not any("pts_middle_encoder." in line for line in missing), report
    prefix = "pts_middle_encoder."
    loaded = {k[len(prefix) :]: v for k, v in detector.state_dict().items() if k.startswith(prefix)}
    _assert_all_tensors_equal(loaded, encoder)


def test_plain_spconv2_file_is_the_trap_mmdet3d_skips(mmdet3d_models, centerpoint_export, tmp_path):
    """Why the export writes spconv 1 layout: spconv 2 tensors as they are give 21 size mismatches."""
    models, config = mmdet3d_models
    encoder, _ = centerpoint_export
    native = {k: v for k, v in rename_backbone_state(encoder.backbone_3d.state_dict(), "mmdet3d").items()}
    sparse_encoder = models.build(config.model.pts_middle_encoder)
    with pytest.raises(RuntimeError, match="size mismatch") as error:
        sparse_encoder.load_state_dict(native, strict=True)
    assert str(error.value).count("size mismatch") == 21


def _openpcdet_backbones():
    root = os.environ.get("BEVJEPA_OPENPCDET_ROOT")
    if not root:
        pytest.skip("BEVJEPA_OPENPCDET_ROOT (an OpenPCDet checkout) is not set")
    spec = importlib.util.spec_from_file_location(
        "make_manifests", REPO_ROOT / "tools" / "export_manifests" / "make_manifests.py"
    )
    make_manifests = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(make_manifests)
    return make_manifests.load_openpcdet_backbones(Path(root))


@pytest.mark.parametrize(
    ("manifest_name", "class_name", "source_manifest"),
    [
        ("openpcdet_voxel_res_backbone8x_nus", "VoxelResBackBone8x", "openpcdet_voxel_res_backbone8x_nus"),
        ("openpcdet_voxel_res_backbone8x_nus", "VoxelResBackBone8x", CENTERPOINT_MANIFEST),  # zero biases
        ("openpcdet_voxel_backbone8x_nus", "VoxelBackBone8x", "openpcdet_voxel_backbone8x_nus"),
    ],
)
def test_openpcdet_backbone_loads_and_matches_bevjepa_on_the_real_frame(
    tmp_path, monkeypatch, real_frame_voxels, manifest_name, class_name, source_manifest
):
    backbones = _openpcdet_backbones()
    # Importing mmdetection3d replaces spconv's state-dict loading process-wide (its spconv 1 -> 2 weight
    # transposition); OpenPCDet runs without it, with torch's own.
    from spconv.pytorch.modules import SparseModule

    monkeypatch.setattr(SparseModule, "_load_from_state_dict", torch.nn.Module._load_from_state_dict)
    encoder = encoder_for(source_manifest, seed=4)
    ckpt = write_checkpoint(tmp_path / "pretrain.ckpt", target_encoder=encoder)
    out = tmp_path / "openpcdet_init.pth"
    report = export_encoder(ckpt, "openpcdet", manifest(manifest_name), out)
    assert report.loaded == report.total

    backbone = getattr(backbones, class_name)(
        model_cfg={}, input_channels=5, grid_size=np.array([1024, 1024, 40])
    )
    stored = torch.load(out, map_location="cpu")[
        "model_state"
    ]  # as OpenPCDet's load_params_from_file reads it
    state = {key.removeprefix("backbone_3d."): tensor for key, tensor in stored.items()}
    # OpenPCDet's loader takes every tensor whose shape equals the module's; strict shows that all do.
    assert {k: tuple(v.shape) for k, v in state.items()} == {
        k: tuple(v.shape) for k, v in backbone.state_dict().items()
    }
    backbone.load_state_dict(state, strict=True)
    backbone.eval()

    voxels = real_frame_voxels
    with torch.no_grad():
        batch = backbone(
            {
                "voxel_features": voxels.features,
                "voxel_coords": voxels.coords,
                "batch_size": voxels.batch_size,
            }
        )
        dense = batch["encoded_spconv_tensor"].dense()  # (B, 128, 2, 128, 128)
        theirs = dense.view(dense.shape[0], -1, *dense.shape[3:])  # OpenPCDet's HeightCompression
        ours = encoder.backbone_3d(to_sparse_tensor(voxels, encoder.grid))
    torch.testing.assert_close(theirs, ours, rtol=1e-5, atol=1e-5)
