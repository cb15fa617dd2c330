"""NuScenesBEVDataModule end to end on a synthetic nuScenes-format dataroot: batches, cache, bad input."""

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from bevjepa.batch import BevBatch
from bevjepa.grid import BevGrid
from datamodules.nuscenes import NuScenesBEVDataModule
from datamodules.nuscenes_dataset import BadSampleError

GRID = BevGrid(voxel_size=(0.4, 0.4, 0.2))
REPO_ROOT = Path(__file__).resolve().parents[2]


def _datamodule(dataroot: Path, version: str, **overrides) -> NuScenesBEVDataModule:
    options = {"grid": GRID, "batch_size": 2, "future_steps": 3, "occlusion_window": 1, **overrides}
    return NuScenesBEVDataModule(str(dataroot), version, **options)


def _batches(datamodule: NuScenesBEVDataModule, split: str = "train") -> list[BevBatch]:
    datamodule.setup("fit")
    loader = datamodule._loader(split)
    return list(loader)


def _assert_batches_equal(first: BevBatch, second: BevBatch) -> None:
    assert first.sample_tokens == second.sample_tokens
    torch.testing.assert_close(first.voxels.features, second.voxels.features, rtol=0, atol=0)
    assert torch.equal(first.voxels.coords, second.voxels.coords)
    for name in ("visibility", "target_visibility"):
        assert torch.equal(getattr(first, name), getattr(second, name)), name
    for name in ("poses", "actions", "valid"):
        assert torch.equal(getattr(first.futures, name), getattr(second.futures, name)), name
    for a, b in zip(first.futures.voxels, second.futures.voxels, strict=True):
        assert torch.equal(a.features, b.features) and torch.equal(a.coords, b.coords)
    for name in ("occupancy", "map_rasters", "ego_trajectory", "ego_status"):
        assert torch.equal(getattr(first.labels, name), getattr(second.labels, name)), name


def test_batch_shapes_and_contents(synthetic_dataroot):
    datamodule = _datamodule(*synthetic_dataroot)
    batch = _batches(datamodule)[0]
    height, width = GRID.bev_shape
    size = len(batch.sample_tokens)
    assert size == 2
    assert batch.voxels.features.shape[1] == datamodule.in_channels == 10
    assert batch.voxels.coords[:, 0].unique().tolist() == [0, 1]
    assert batch.visibility.shape == batch.target_visibility.shape == (size, height, width)
    # The target view sees at least what the context sees.
    assert (batch.target_visibility != 2).sum() >= (batch.visibility != 2).sum()
    assert batch.futures.actions.shape == (size, 3, 4)
    assert batch.futures.poses.shape == (size, 3, 4, 4)
    assert len(batch.futures.voxels) == 3
    for step, voxels in enumerate(batch.futures.voxels):
        for sample in range(size):
            has_voxels = bool((voxels.coords[:, 0] == sample).any())
            assert has_voxels == bool(batch.futures.valid[sample, step])
    assert batch.labels.occupancy.shape == (size, 4, height, width)
    assert batch.labels.map_rasters.shape == (size, 6, height, width)
    assert batch.labels.map_rasters[:, 0].any(), "drivable area is mapped"
    assert batch.labels.ego_status.shape == (size, 4) and batch.labels.ego_status.dtype == torch.float32
    assert not batch.skipped_sample_tokens


def test_cached_and_on_the_fly_batches_are_identical(synthetic_dataroot, tmp_path):
    on_the_fly = _batches(_datamodule(*synthetic_dataroot))
    cached_module = _datamodule(*synthetic_dataroot, cache_dir=str(tmp_path / "cache"))
    dataset = cached_module.dataset("train")
    for record in dataset.records:
        dataset.cache.save(record.scene_name, record.sample_token, cached_module.builder.build(record))
    # Futures of the last train samples live in the train scene too; all payloads are now cached.
    assert len(list((tmp_path / "cache").rglob("*.bin"))) == len(dataset.records)
    cached = _batches(cached_module)
    assert len(cached) == len(on_the_fly)
    for first, second in zip(on_the_fly, cached, strict=True):
        _assert_batches_equal(first, second)


def test_cache_of_other_options_lives_elsewhere(tmp_path):
    from datamodules.sample_cache import SampleCache
    from datamodules.sample_options import SampleOptions

    coarse = SampleCache(tmp_path, SampleOptions(grid=GRID))
    fine = SampleCache(tmp_path, SampleOptions(grid=BevGrid()))
    assert coarse.folder != fine.folder
    payload = {"features": torch.rand(5, 10), "coords": torch.randint(0, 9, (5, 3), dtype=torch.int32)}
    coarse.save("scene-1", "token", {**payload, "future_boxes": [torch.rand(2, 7), torch.zeros(0, 7)]})
    loaded = coarse.load("scene-1", "token")
    assert torch.equal(loaded["features"], payload["features"]) and torch.equal(
        loaded["coords"], payload["coords"]
    )
    assert [len(b) for b in loaded["future_boxes"]] == [2, 0]
    (coarse.folder / "options.json").write_text('{"format": 0}')
    with pytest.raises(ValueError, match="other options"):
        SampleCache(tmp_path, SampleOptions(grid=GRID))


def test_workers_give_the_same_batches(synthetic_dataroot):
    single = _batches(_datamodule(*synthetic_dataroot, future_steps=1, labels=False))
    parallel = _batches(_datamodule(*synthetic_dataroot, future_steps=1, labels=False, num_workers=2))
    assert [b.sample_tokens for b in single] == [b.sample_tokens for b in parallel]
    for first, second in zip(single, parallel, strict=True):
        assert torch.equal(first.voxels.features, second.voxels.features)


@pytest.fixture
def damaged_dataroot(synthetic_dataroot, tmp_path):
    dataroot, version = synthetic_dataroot
    copy = tmp_path / "dataroot"
    shutil.copytree(dataroot, copy)
    return copy, version


def _a_train_keyframe_sweep(datamodule: NuScenesBEVDataModule):
    record = datamodule.dataset("train").records[1]
    return record, Path(record.sweep_file(record.lidar_sweeps[0]))


def test_truncated_sweep_raises_with_file_and_token(damaged_dataroot):
    datamodule = _datamodule(*damaged_dataroot, future_steps=0)
    record, path = _a_train_keyframe_sweep(datamodule)
    path.write_bytes(path.read_bytes()[:-3])
    with pytest.raises(BadSampleError, match=rf"{record.sample_token}.*{re.escape(path.name)}"):
        _batches(datamodule)


def test_skip_counts_bad_samples_and_goes_on(damaged_dataroot):
    datamodule = _datamodule(*damaged_dataroot, future_steps=0, on_bad_sample="skip")
    record, path = _a_train_keyframe_sweep(datamodule)
    path.unlink()
    batches = _batches(datamodule)
    skipped = [token for batch in batches for token in batch.skipped_sample_tokens]
    # The damaged keyframe is skipped, and so is any neighbour whose sweeps or target view read that file.
    assert record.sample_token in skipped
    seen = [token for batch in batches for token in batch.sample_tokens]
    assert not set(seen) & set(skipped)
    assert len(seen) + len(skipped) == len(datamodule.dataset("train"))
    assert len(seen) > 0, "the run goes on with the good samples"
    for batch in batches:
        datamodule.on_after_batch_transfer(batch, 0)
    assert datamodule.skipped_samples == len(skipped)


def test_missing_map_expansion_is_named(damaged_dataroot):
    dataroot, version = damaged_dataroot
    shutil.rmtree(dataroot / "maps" / "expansion")
    with pytest.raises(BadSampleError, match="map expansion file not found"):
        _batches(_datamodule(dataroot, version, future_steps=0))


def test_wrong_version_and_dataroot_are_named(synthetic_dataroot, tmp_path):
    dataroot, _ = synthetic_dataroot
    with pytest.raises(Exception, match=re.escape("v1.0-nonexistent")):
        _datamodule(dataroot, "v1.0-nonexistent").setup("fit")
    with pytest.raises(Exception, match=re.escape(str(tmp_path / "nowhere"))):
        _datamodule(tmp_path / "nowhere", "v1.0-mini").setup("fit")


@pytest.mark.parametrize("workers", [1, pytest.param(2, marks=pytest.mark.slow)])
def test_create_data_tool_writes_the_cache_the_datamodule_reads(synthetic_dataroot, tmp_path, workers):
    dataroot, version = synthetic_dataroot
    command = [
        sys.executable, str(REPO_ROOT / "tools" / "create_data.py"), "--dataroot", str(dataroot), "--version",
        version, "--cache-dir", str(tmp_path), "--splits", "train", "val", "--voxel-size", "0.4", "0.4", "0.2",
        "--future-steps", "3", "--occlusion-window", "1", "--workers", str(workers),
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    datamodule = _datamodule(dataroot, version, cache_dir=str(tmp_path))
    expected = len(datamodule.dataset("train")) + len(datamodule.dataset("val"))
    assert f"wrote {expected} samples" in result.stdout
    again = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
    assert "wrote 0 samples" in again.stdout, "a second run resumes and writes nothing"
    _assert_batches_equal(_batches(datamodule)[0], _batches(_datamodule(dataroot, version))[0])
