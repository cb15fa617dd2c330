"""Multi-sweep LiDAR fusion: equal to the devkit's from_file_multisweep, and loud on bad files."""

import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from dataroot_views import randomise_poses
from nuscenes.utils.data_classes import LidarPointCloud

from datamodules.lidar_files import SensorFileError
from datamodules.lidar_fusion import fuse_lidar_sweeps
from datamodules.nuscenes_index import LIDAR_CHANNEL, NuScenesIndex, open_nuscenes
from datamodules.sample_records import KeyframeRecord, SweepRecord
from datamodules.sweep_transforms import invert_rigid

POSITION_TOLERANCE_M = 1e-4
TIME_LAG_TOLERANCE_S = 1e-6


@pytest.fixture(scope="module")
def nusc(synthetic_dataroot):
    return open_nuscenes(*synthetic_dataroot)


@pytest.fixture(scope="module")
def records(nusc):
    return NuScenesIndex(nusc, lidar_sweeps=10).records_of([sample["token"] for sample in nusc.sample])


def assert_equals_devkit(nusc, record: KeyframeRecord, nsweeps: int = 10, min_distance: float = 1.0) -> None:
    sample = nusc.get("sample", record.sample_token)
    cloud, times = LidarPointCloud.from_file_multisweep(
        nusc, sample, LIDAR_CHANNEL, LIDAR_CHANNEL, nsweeps=nsweeps, min_distance=min_distance
    )
    fused = fuse_lidar_sweeps(record, min_distance_m=min_distance)
    expected = cloud.points.T  # (N, 4) x, y, z, intensity, in the devkit's order
    assert fused.points.shape == (len(expected), 5) and fused.points.dtype == np.float32
    np.testing.assert_allclose(fused.points[:, :3], expected[:, :3], rtol=0, atol=POSITION_TOLERANCE_M)
    np.testing.assert_array_equal(fused.points[:, 3], expected[:, 3])
    np.testing.assert_allclose(fused.points[:, 4], times[0], rtol=0, atol=TIME_LAG_TOLERANCE_S)


def test_fused_lidar_equals_the_devkit_on_every_keyframe(nusc, records):
    assert any(len(record.lidar_sweeps) == 10 for record in records)
    for record in records:
        assert_equals_devkit(nusc, record)


def test_fused_lidar_equals_the_devkit_under_arbitrary_3d_poses(synthetic_dataroot):
    nusc = open_nuscenes(*synthetic_dataroot)  # its own copy: poses are changed in memory
    randomise_poses(nusc, np.random.default_rng(3))
    index = NuScenesIndex(nusc, lidar_sweeps=10, radar=False)
    for sample in nusc.sample[::2]:
        assert_equals_devkit(nusc, index.record(sample["token"]))


def test_other_sweep_counts_and_min_distances_equal_the_devkit(nusc):
    index = NuScenesIndex(nusc, lidar_sweeps=3, radar=False)
    record = index.record(nusc.sample[-1]["token"])
    assert len(record.lidar_sweeps) == 3
    assert_equals_devkit(nusc, record, nsweeps=3, min_distance=2.5)
    assert_equals_devkit(nusc, record, nsweeps=3, min_distance=0.0)


def test_prev_chain_that_ends_early_fuses_the_sweeps_it_has(synthetic_dataroot):
    nusc = open_nuscenes(*synthetic_dataroot)  # its own copy: the chain is cut in memory
    sample = nusc.sample[-1]
    second = nusc.get("sample_data", nusc.get("sample_data", sample["data"][LIDAR_CHANNEL])["prev"])
    second["prev"] = ""
    record = NuScenesIndex(nusc, lidar_sweeps=10, radar=False).record(sample["token"])
    assert len(record.lidar_sweeps) == 2
    fused = fuse_lidar_sweeps(record)
    assert set(np.unique(fused.sweep_index)) <= {0, 1} and fused.sensor_origins.shape == (2, 3)
    assert_equals_devkit(nusc, record)


def test_sweep_index_time_lags_and_sensor_origins(records):
    record = max(records, key=lambda r: len(r.lidar_sweeps))
    fused = fuse_lidar_sweeps(record)
    assert fused.sweep_index.dtype == np.int16 and len(fused.sweep_index) == len(fused.points)
    assert np.all(np.diff(fused.sweep_index) >= 0), "keyframe sweep first, then earlier sweeps"
    lags = np.array([(record.timestamp_us - sweep.timestamp_us) * 1e-6 for sweep in record.lidar_sweeps])
    np.testing.assert_allclose(fused.points[:, 4], lags[fused.sweep_index], atol=1e-7)
    assert lags[0] == 0 and np.all(np.diff(lags) > 0)
    to_reference = invert_rigid(record.lidar_to_global)
    expected_origins = [(to_reference @ sweep.sensor_to_global)[:3, 3] for sweep in record.lidar_sweeps]
    np.testing.assert_allclose(fused.sensor_origins, expected_origins, atol=1e-5)
    np.testing.assert_allclose(fused.sensor_origins[0], 0.0, atol=1e-6)


def test_real_keyframe_single_sweep_equals_the_devkit(real_frame_dir: Path):
    """The real nuScenes sweep through the single-sweep path: its own frame, close returns removed."""
    meta = json.loads((real_frame_dir / "frame.json").read_text())
    lidar_to_global = np.array(meta["ego2global"]) @ np.array(meta["lidar2ego"])
    timestamp_us = round(meta["timestamp_s"] * 1e6)
    sweep = SweepRecord(str(real_frame_dir / meta["lidar_file"]), "real", timestamp_us, lidar_to_global)
    record = KeyframeRecord(
        sample_token=meta["sample_token"],
        scene_name="real",
        location="real",
        timestamp_us=timestamp_us,
        lidar_to_global=lidar_to_global,
        lidar_to_ego=np.array(meta["lidar2ego"]),
        lidar_sweeps=(sweep,),
    )
    fused = fuse_lidar_sweeps(record)
    cloud = LidarPointCloud.from_file(str(sweep.path))
    raw_count = cloud.points.shape[1]
    cloud.remove_close(1.0)
    assert len(fused.points) == cloud.points.shape[1] and 0 < len(fused.points) < raw_count
    np.testing.assert_allclose(fused.points[:, :3], cloud.points[:3].T, atol=1e-5)
    np.testing.assert_array_equal(fused.points[:, 3], cloud.points[3])
    assert np.all(fused.points[:, 4] == 0) and np.all(fused.sweep_index == 0)


def record_with_sweep_file(record: KeyframeRecord, sweep_number: int, path: Path) -> KeyframeRecord:
    sweeps = list(record.lidar_sweeps)
    sweeps[sweep_number] = dataclasses.replace(sweeps[sweep_number], path=str(path))
    return dataclasses.replace(record, lidar_sweeps=tuple(sweeps))


@pytest.mark.parametrize("damage", ["missing", "truncated", "nan", "inf"])
def test_bad_sweep_files_raise_naming_file_and_sample(records, tmp_path: Path, damage: str):
    record = max(records, key=lambda r: len(r.lidar_sweeps))
    bad_file = tmp_path / f"{damage}.pcd.bin"
    if damage != "missing":
        shutil.copy(record.sweep_file(record.lidar_sweeps[2]), bad_file)
        points = np.fromfile(bad_file, dtype=np.float32).reshape(-1, 5)
        assert len(points) > 3, "the test needs a sweep with points"
        if damage == "truncated":
            bad_file.write_bytes(bad_file.read_bytes()[:-7])
        else:
            # y for NaN, z for inf: both must surface even where the rotation gives them a zero weight in x.
            points[len(points) // 2, 1 if damage == "nan" else 2] = np.nan if damage == "nan" else -np.inf
            points.tofile(bad_file)
    with pytest.raises(SensorFileError) as error:
        fuse_lidar_sweeps(record_with_sweep_file(record, 2, bad_file))
    assert str(bad_file) in str(error.value) and record.sample_token in str(error.value)
    reason = {
        "missing": "not found",
        "truncated": "truncated",
        "nan": "NaN or infinite",
        "inf": "NaN or infinite",
    }
    assert reason[damage] in str(error.value)


def test_empty_sweep_file_contributes_no_points(records, tmp_path: Path):
    record = max(records, key=lambda r: len(r.lidar_sweeps))
    empty = tmp_path / "empty.pcd.bin"
    empty.write_bytes(b"")
    fused = fuse_lidar_sweeps(record_with_sweep_file(record, 1, empty))
    assert 1 not in set(fused.sweep_index.tolist())
    full = fuse_lidar_sweeps(record)
    assert len(fused.points) == len(full.points) - int(np.sum(full.sweep_index == 1))


def test_broken_pose_raises_naming_the_sweep_and_sample(synthetic_dataroot):
    nusc = open_nuscenes(*synthetic_dataroot)  # its own copy: a pose is broken in memory
    sample = nusc.sample[-1]
    keyframe_sd = nusc.get("sample_data", sample["data"][LIDAR_CHANNEL])
    earlier_sd = nusc.get("sample_data", keyframe_sd["prev"])
    nusc.get("ego_pose", earlier_sd["ego_pose_token"])["rotation"] = [0.0, 0.0, 0.0, 0.0]
    record = NuScenesIndex(nusc, radar=False).record(sample["token"])
    with pytest.raises(SensorFileError) as error:
        fuse_lidar_sweeps(record)
    assert earlier_sd["filename"] in str(error.value) and sample["token"] in str(error.value)
