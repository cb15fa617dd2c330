"""configs/pretrain/nuscenes_centerpoint_encoder.yaml pretrains exactly CenterPoint's sparse encoder: its
encoder, built as the CLI builds it (data channels linked in), has the manifest's layout tensor for tensor."""

import pytest
import yaml
from conftest import NUSCENES_GRID, REPO_ROOT, manifest

from bevjepa.encoders import SparseBEVEncoder
from bevjepa.export import check_layout, rename_backbone_state

CONFIG = REPO_ROOT / "configs" / "pretrain" / "nuscenes_centerpoint_encoder.yaml"
LIDAR_CHANNELS = 6  # the nuScenes DataModule's LiDAR-only voxel features


def _config_encoder() -> SparseBEVEncoder:
    config = yaml.safe_load(CONFIG.read_text())
    assert config["data"]["init_args"]["radar"] is False
    init_args = config["model"]["init_args"]["encoder"]["init_args"]
    return SparseBEVEncoder(NUSCENES_GRID, LIDAR_CHANNELS, **init_args)


def test_config_encoder_is_centerpoints_sparse_encoder():
    encoder = _config_encoder()
    target = manifest("mmdet3d_centerpoint_nus_sparse_encoder")
    check, _ = check_layout(rename_backbone_state(encoder.backbone_3d.state_dict(), "mmdet3d"), target)
    assert check.ok and not check.zero_biases, check.describe()
    assert encoder.backbone_3d.bev_channels == 256  # CenterPoint's BEV input: 128 channels x 2 height layers


def test_config_encoder_exports_to_openpcdet_resnet_with_zero_biases():
    check, _ = check_layout(
        rename_backbone_state(_config_encoder().backbone_3d.state_dict(), "openpcdet"),
        manifest("openpcdet_voxel_res_backbone8x_nus"),
    )
    assert check.ok and len(check.zero_biases) == 16


def test_selecting_channels_the_data_lacks_is_refused():
    with pytest.raises(ValueError, match=r"must lie in \[0, 6\)"):
        SparseBEVEncoder(NUSCENES_GRID, 6, voxel_feature_indices=[0, 1, 2, 3, 6])
    with pytest.raises(ValueError, match="needs voxel_feature_indices"):
        SparseBEVEncoder(NUSCENES_GRID, 6, voxel_feature_scale=[1.0] * 6)
