"""Exported weights, loaded the way each framework loads them into a plain spconv module built to its layout,
give the same features as bevjepa's own encoder on the real nuScenes frame."""

import pytest
import torch
from conftest import NUSCENES_GRID, encoder_for, manifest, write_checkpoint
from target_layout_modules import CenterPointSparseEncoder, OpenPCDetBackBone8x

from bevjepa.batch import VoxelBatch
from bevjepa.export import export_encoder
from bevjepa.export.layouts import from_spconv1_layout


def _load_as_the_framework(module, path, framework):
    """mmdetection3d: ``state_dict``, 5-D weights read as spconv 1 and transposed (no ``_metadata`` version);
    OpenPCDet: ``model_state``, shapes equal so taken as they are. Every tensor must land (strict)."""
    contents = torch.load(path, map_location="cpu", weights_only=True)
    if framework == "mmdet3d":
        prefix = "pts_middle_encoder."
        state = {
            k[len(prefix) :]: from_spconv1_layout(t) if t.ndim == 5 else t
            for k, t in contents["state_dict"].items()
        }
    else:
        prefix = "backbone_3d."
        state = {k[len(prefix) :]: t for k, t in contents["model_state"].items()}
    module.load_state_dict(state, strict=True)
    return module.eval()


@pytest.mark.parametrize(
    ("framework", "manifest_name", "target"),
    [
        (
            "mmdet3d",
            "mmdet3d_centerpoint_nus_sparse_encoder",
            lambda: CenterPointSparseEncoder(5, NUSCENES_GRID.sparse_shape),
        ),
        (
            "openpcdet",
            "openpcdet_voxel_res_backbone8x_nus",
            lambda: OpenPCDetBackBone8x(5, NUSCENES_GRID.sparse_shape, True),
        ),
        (
            "openpcdet",
            "openpcdet_voxel_backbone8x_nus",
            lambda: OpenPCDetBackBone8x(5, NUSCENES_GRID.sparse_shape, False),
        ),
    ],
)
def test_exported_encoder_matches_bevjepa_on_the_real_frame(
    tmp_path, real_frame_voxels, framework, manifest_name, target
):
    encoder = encoder_for(manifest_name)
    ckpt = write_checkpoint(tmp_path / "pretrain.ckpt", target_encoder=encoder)
    export_encoder(ckpt, framework, manifest(manifest_name), tmp_path / "export.pth")
    detector_encoder = _load_as_the_framework(target(), tmp_path / "export.pth", framework)

    voxels = real_frame_voxels
    with torch.no_grad():
        ours = encoder.backbone_3d(_sparse(voxels))
        theirs = detector_encoder(voxels.features, voxels.coords, voxels.batch_size)
    assert ours.shape == theirs.shape == (1, 256, 128, 128)
    assert ours.abs().sum() > 0
    torch.testing.assert_close(theirs, ours, rtol=1e-5, atol=1e-5)


def test_centerpoint_encoder_runs_as_openpcdet_resnet_with_zero_biases(tmp_path, real_frame_voxels_near):
    encoder = encoder_for("mmdet3d_centerpoint_nus_sparse_encoder")
    ckpt = write_checkpoint(tmp_path / "pretrain.ckpt", target_encoder=encoder)
    export_encoder(ckpt, "openpcdet", manifest("openpcdet_voxel_res_backbone8x_nus"), tmp_path / "export.pth")
    detector_encoder = _load_as_the_framework(
        OpenPCDetBackBone8x(5, NUSCENES_GRID.sparse_shape, residual=True),
        tmp_path / "export.pth",
        "openpcdet",
    )
    voxels = real_frame_voxels_near
    with torch.no_grad():
        ours = encoder.backbone_3d(_sparse(voxels))
        theirs = detector_encoder(voxels.features, voxels.coords, voxels.batch_size)
    torch.testing.assert_close(theirs, ours, rtol=1e-5, atol=1e-5)


def test_selected_bevjepa_channels_reproduce_the_detector_inputs(real_frame_voxels_near):
    """bevjepa's LiDAR voxels ``[x, y, z, intensity / 255, time_lag, count]`` through ``voxel_feature_indices``
    and ``voxel_feature_scale`` reach the backbone as CenterPoint's ``[x, y, z, intensity, time_lag]``."""
    plain = encoder_for("mmdet3d_centerpoint_nus_sparse_encoder")
    selecting = encoder_for(
        "mmdet3d_centerpoint_nus_sparse_encoder",
        in_channels=6,
        voxel_feature_indices=[0, 1, 2, 3, 4],
        voxel_feature_scale=[1.0, 1.0, 1.0, 255.0, 1.0],
    )
    selecting.load_state_dict(plain.state_dict())
    raw = real_frame_voxels_near.features
    bevjepa_features = torch.cat(
        [raw[:, :3], raw[:, 3:4] / 255.0, raw[:, 4:5], torch.rand(len(raw), 1)], dim=1
    )
    with torch.no_grad():
        expected = plain(real_frame_voxels_near)
        got = selecting(VoxelBatch(bevjepa_features, real_frame_voxels_near.coords, 1))
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-4)


def _sparse(voxels):
    from bevjepa.sparse import to_sparse_tensor

    return to_sparse_tensor(voxels, NUSCENES_GRID)
