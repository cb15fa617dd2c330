"""bevjepa's sparse backbone against the committed manifests of the detectors' encoders: every key, every
shape, in the module's order, no extra key; units renamed per framework; mmdetection3d's spconv 1 file layout."""

import pytest
import torch
from conftest import encoder_for, manifest

from bevjepa.export import check_layout, rename_backbone_state
from bevjepa.export.layouts import encoder_units, file_state, from_spconv1_layout

MANIFESTS = {
    "mmdet3d_centerpoint_nus_sparse_encoder": "mmdet3d",
    "mmdet3d_second_sparse_encoder": "mmdet3d",
    "openpcdet_voxel_res_backbone8x_nus": "openpcdet",
    "openpcdet_voxel_backbone8x_nus": "openpcdet",
}


@pytest.mark.parametrize("name", sorted(MANIFESTS))
def test_matching_architecture_fills_every_tensor_of_the_manifest(name):
    framework = MANIFESTS[name]
    target = manifest(name)
    state = rename_backbone_state(encoder_for(name).backbone_3d.state_dict(), framework)
    check, completed = check_layout(state, target)
    assert check.ok, check.describe()
    assert check.zero_biases == []
    assert list(state) == target.keys  # same order: the units are renamed in forward order
    assert list(completed) == target.keys
    for spec in target.tensors:
        assert tuple(state[spec.key].shape) == spec.shape, spec.key


def test_manifests_hold_the_documented_sizes():
    centerpoint = manifest("mmdet3d_centerpoint_nus_sparse_encoder")
    assert len(centerpoint.tensors) == 126
    assert centerpoint.num_parameters() == 2_694_352
    assert centerpoint.detector_prefix == "pts_middle_encoder."
    assert manifest("openpcdet_voxel_res_backbone8x_nus").num_parameters() == 2_694_352 + 2 * 2 * (
        16 + 32 + 64 + 128
    )


def test_centerpoint_encoder_exports_to_openpcdet_with_zero_biases():
    """mmdetection3d's CenterPoint has no residual-conv biases, OpenPCDet's has 16: filled with zeros."""
    state = rename_backbone_state(
        encoder_for("mmdet3d_centerpoint_nus_sparse_encoder").backbone_3d.state_dict(), "openpcdet"
    )
    check, completed = check_layout(state, manifest("openpcdet_voxel_res_backbone8x_nus"))
    assert check.ok
    assert len(check.zero_biases) == 16
    assert all(key.endswith(("conv1.bias", "conv2.bias")) for key in check.zero_biases)
    assert all(not completed[key].any() for key in check.zero_biases)


def test_bias_in_the_encoder_but_not_in_the_target_is_a_difference():
    state = rename_backbone_state(
        encoder_for("openpcdet_voxel_res_backbone8x_nus").backbone_3d.state_dict(), "mmdet3d"
    )
    check, _ = check_layout(state, manifest("mmdet3d_centerpoint_nus_sparse_encoder"))
    assert not check.ok
    assert len(check.unexpected) == 16 and not check.missing and not check.mismatched
    assert "not in the target module: encoder_layers.encoder_layer1.0.conv1.bias" in check.describe()


def test_other_input_channels_are_a_shape_mismatch():
    state = rename_backbone_state(
        encoder_for("mmdet3d_centerpoint_nus_sparse_encoder", in_channels=4).backbone_3d.state_dict(),
        "mmdet3d",
    )
    check, _ = check_layout(state, manifest("mmdet3d_centerpoint_nus_sparse_encoder"))
    assert check.mismatched == [
        ("conv_input.0.weight", "(16, 3, 3, 3, 4) float32", "(16, 3, 3, 3, 5) float32")
    ]


def test_units_downsample_where_the_backbone_builds_its_strided_convolutions():
    residual = encoder_units(encoder_for("mmdet3d_centerpoint_nus_sparse_encoder").backbone_3d.state_dict())
    assert [(u.stage, u.index) for u in residual if u.downsamples] == [(1, 2), (2, 2), (3, 2)]
    plain = encoder_units(encoder_for("openpcdet_voxel_backbone8x_nus").backbone_3d.state_dict())
    assert [(u.stage, u.index) for u in plain if u.downsamples] == [(2, 0), (3, 0), (4, 0)]


def test_openpcdet_stages_open_with_the_downsampling():
    state = encoder_for("mmdet3d_centerpoint_nus_sparse_encoder").backbone_3d.state_dict()
    renamed = rename_backbone_state(state, "openpcdet")
    torch.testing.assert_close(renamed["conv2.0.0.weight"], state["encoder_layers.encoder_layer1.2.0.weight"])
    torch.testing.assert_close(renamed["conv2.1.bn1.bias"], state["encoder_layers.encoder_layer2.0.bn1.bias"])
    torch.testing.assert_close(
        renamed["conv4.2.conv2.weight"], state["encoder_layers.encoder_layer4.1.conv2.weight"]
    )


def test_mmdet3d_file_stores_spconv1_layout_that_its_loader_turns_back():
    module_state = rename_backbone_state(
        encoder_for("mmdet3d_centerpoint_nus_sparse_encoder").backbone_3d.state_dict(), "mmdet3d"
    )
    stored = file_state(module_state, "mmdet3d", "pts_middle_encoder.")
    assert stored["pts_middle_encoder.conv_input.0.weight"].shape == (3, 3, 3, 5, 16)  # (kD, kH, kW, in, out)
    assert stored["pts_middle_encoder.conv_out.0.weight"].shape == (3, 1, 1, 128, 128)
    for key, tensor in module_state.items():
        loaded = stored[f"pts_middle_encoder.{key}"]
        if tensor.ndim == 5:
            loaded = from_spconv1_layout(loaded)
        assert torch.equal(loaded, tensor), key
    openpcdet = file_state(rename_backbone_state(module_state, "openpcdet"), "openpcdet", "backbone_3d.")
    assert openpcdet["backbone_3d.conv_input.0.weight"].shape == (16, 3, 3, 3, 5)  # spconv 2, as it is
