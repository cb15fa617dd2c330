"""tools/export_checkpoint.py: the written file holds exactly the target module's tensors under the detector's
prefix, loaded/total is printed per module, and a mismatched architecture writes nothing."""

import functools
import importlib.util
import re

import lightning as L
import pytest
import torch
import yaml
from conftest import REPO_ROOT, encoder_for, manifest, write_checkpoint

from bevjepa.encoders import SparseBEVEncoder
from bevjepa.export.layouts import from_spconv1_layout, rename_backbone_state
from bevjepa.grid import BevGrid
from bevjepa.jepa import BEVPredictor, JEPAPretrainModule

_spec = importlib.util.spec_from_file_location(
    "export_checkpoint", REPO_ROOT / "tools" / "export_checkpoint.py"
)
export_checkpoint = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(export_checkpoint)


def _loaded_module_state(path, framework, prefix):
    """The file's tensors as the framework's loader hands them to the module (prefix stripped, mmdetection3d's
    spconv 1 -> 2 transposition of 5-D weights applied)."""
    contents = torch.load(path, map_location="cpu", weights_only=True)  # the frameworks' default torch.load
    stored = contents["state_dict"] if framework == "mmdet3d" else contents["model_state"]
    assert all(key.startswith(prefix) for key in stored)
    return {
        key[len(prefix) :]: from_spconv1_layout(t) if framework == "mmdet3d" and t.ndim == 5 else t
        for key, t in stored.items()
    }


@pytest.mark.parametrize(
    ("framework", "manifest_name", "prefix"),
    [
        ("mmdet3d", "mmdet3d_centerpoint_nus_sparse_encoder", "pts_middle_encoder."),
        ("openpcdet", "openpcdet_voxel_res_backbone8x_nus", "backbone_3d."),
    ],
)
def test_export_round_trips_against_the_manifest(tmp_path, capsys, framework, manifest_name, prefix):
    encoder = encoder_for(manifest_name)
    ckpt = write_checkpoint(
        tmp_path / "pretrain.ckpt", encoder=encoder_for(manifest_name, seed=5), target_encoder=encoder
    )
    out = tmp_path / "exported.pth"
    assert export_checkpoint.main(["--ckpt", str(ckpt), "--to", framework, "--out", str(out)]) == 0

    target = manifest(manifest_name)
    loaded = _loaded_module_state(out, framework, prefix)
    assert list(loaded) == target.keys  # every key, no extra key
    for spec in target.tensors:
        assert (
            tuple(loaded[spec.key].shape) == spec.shape
            and str(loaded[spec.key].dtype) == f"torch.{spec.dtype}"
        )
    expected = rename_backbone_state(encoder.backbone_3d.state_dict(), framework)  # the EMA target encoder's
    for key, tensor in expected.items():
        assert torch.equal(loaded[key], tensor), key

    printed = capsys.readouterr().out
    total = len(target.tensors)
    assert re.search(rf"total +{total}/{total} = 100 %", printed)
    assert f"{target.num_parameters():,} parameters" in printed
    first_stage = "encoder_layers.encoder_layer1" if framework == "mmdet3d" else "conv1"
    assert re.search(rf"{first_stage} +\d+/\d+", printed) and re.search(r"conv_input +6/6", printed)


def test_centerpoint_encoder_to_openpcdet_reports_zero_biases(tmp_path, capsys):
    encoder = encoder_for("mmdet3d_centerpoint_nus_sparse_encoder")
    ckpt = write_checkpoint(tmp_path / "pretrain.ckpt", encoder=encoder)
    out = tmp_path / "openpcdet.pth"
    assert export_checkpoint.main(["--ckpt", str(ckpt), "--to", "openpcdet", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "VoxelResBackBone8x" in printed and "142/142 = 100 %" in printed
    assert printed.count("(4 zero conv biases)") == 4
    loaded = _loaded_module_state(out, "openpcdet", "backbone_3d.")
    assert not loaded["conv1.0.conv1.bias"].any()


def test_plain_blocks_pick_the_voxel_backbone_and_the_prefix_can_be_changed(tmp_path, capsys):
    ckpt = write_checkpoint(tmp_path / "pretrain.ckpt", encoder=encoder_for("openpcdet_voxel_backbone8x_nus"))
    out = tmp_path / "second.pth"
    argv = ["--ckpt", str(ckpt), "--to", "openpcdet", "--out", str(out), "--prefix", ""]
    assert export_checkpoint.main(argv) == 0
    assert "VoxelBackBone8x at ''" in capsys.readouterr().out
    assert "conv1.0.0.weight" in torch.load(out, weights_only=True)["model_state"]


def test_the_chosen_encoder_is_exported(tmp_path):
    online, ema = (
        encoder_for("openpcdet_voxel_backbone8x_nus", seed=1),
        encoder_for("openpcdet_voxel_backbone8x_nus", seed=2),
    )
    ckpt = write_checkpoint(tmp_path / "pretrain.ckpt", encoder=online, target_encoder=ema)
    out = tmp_path / "online.pth"
    argv = ["--ckpt", str(ckpt), "--to", "openpcdet", "--out", str(out), "--encoder", "encoder"]
    assert export_checkpoint.main(argv) == 0
    stored = torch.load(out, weights_only=True)
    assert torch.equal(
        stored["model_state"]["backbone_3d.conv_out.0.weight"], online.backbone_3d.conv_out[0].weight
    )
    assert stored["meta"]["encoder"] == "encoder.backbone_3d"


def test_mismatched_architecture_writes_nothing_and_names_the_differences(tmp_path, capsys):
    encoder = encoder_for("mmdet3d_centerpoint_nus_sparse_encoder", in_channels=6)
    ckpt = write_checkpoint(tmp_path / "pretrain.ckpt", target_encoder=encoder)
    out = tmp_path / "exports" / "centerpoint.pth"
    assert export_checkpoint.main(["--ckpt", str(ckpt), "--to", "mmdet3d", "--out", str(out)]) == 1
    error = capsys.readouterr().err
    assert "does not match mmdet3d SparseEncoder (manifest mmdet3d_centerpoint_nus_sparse_encoder)" in error
    assert "conv_input.0.weight: export (16, 3, 3, 3, 6) float32, target (16, 3, 3, 3, 5) float32" in error
    assert not out.exists()
    assert not out.parent.exists() or not any(out.parent.iterdir())


def test_existing_file_survives_a_failed_export(tmp_path):
    out = tmp_path / "centerpoint.pth"
    out.write_bytes(b"previous export")
    ckpt = write_checkpoint(tmp_path / "pretrain.ckpt", encoder=encoder_for("openpcdet_voxel_backbone8x_nus"))
    argv = [
        "--ckpt",
        str(ckpt),
        "--to",
        "openpcdet",
        "--out",
        str(out),
        "--manifest",
        "openpcdet_voxel_res_backbone8x_nus",
    ]
    assert export_checkpoint.main(argv) == 1
    assert out.read_bytes() == b"previous export"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["centerpoint.pth", "pretrain.ckpt"]


def test_checkpoint_without_an_encoder_is_refused(tmp_path, capsys):
    ckpt = tmp_path / "other.ckpt"
    torch.save({"state_dict": {"head.weight": torch.zeros(1)}}, ckpt)
    assert (
        export_checkpoint.main(["--ckpt", str(ckpt), "--to", "mmdet3d", "--out", str(tmp_path / "x.pth")])
        == 1
    )
    assert "has no target_encoder.backbone_3d.* or encoder.backbone_3d.* tensors" in capsys.readouterr().err


def test_lightning_checkpoint_of_the_pretraining_module_exports_its_ema_encoder(tmp_path, capsys):
    """A checkpoint as ``bevjepa fit`` writes it (Lightning's ``save_checkpoint``) of the JEPA module with the
    CenterPoint config's encoder (six data channels, five selected) exports its target encoder."""
    config = yaml.safe_load((REPO_ROOT / "configs/pretrain/nuscenes_centerpoint_encoder.yaml").read_text())
    encoder_args = {
        **config["model"]["init_args"]["encoder"]["init_args"],
        "embed_dim": 16,
        "bev_channels": 16,
    }
    module = JEPAPretrainModule(
        grid=BevGrid(point_cloud_range=(-12.8, -12.8, -5.0, 12.8, 12.8, 3.0), voxel_size=(0.4, 0.4, 0.2)),
        in_channels=6,
        encoder=functools.partial(SparseBEVEncoder, **encoder_args),
        predictor=functools.partial(BEVPredictor, width=16, depth=1, num_heads=2),
    )
    trainer = L.Trainer(
        accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False
    )
    trainer.strategy.connect(module)
    trainer.save_checkpoint(tmp_path / "last.ckpt")

    out = tmp_path / "centerpoint_init.pth"
    assert (
        export_checkpoint.main(["--ckpt", str(tmp_path / "last.ckpt"), "--to", "mmdet3d", "--out", str(out)])
        == 0
    )
    assert "<- target_encoder.backbone_3d" in capsys.readouterr().out
    loaded = _loaded_module_state(out, "mmdet3d", "pts_middle_encoder.")
    for key, tensor in module.target_encoder.backbone_3d.state_dict().items():
        assert torch.equal(loaded[key], tensor), key
