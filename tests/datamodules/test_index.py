"""The sample index: dataroot checks, splits, and records that agree with the nuScenes tables."""

import json
import pickle
from pathlib import Path

import numpy as np
import pytest
from dataroot_views import dataroot_view
from nuscenes.utils.geometry_utils import transform_matrix
from nuscenes.utils.splits import create_splits_scenes
from pyquaternion import Quaternion

from datamodules.nuscenes_index import (
    LIDAR_CHANNEL,
    OFFICIAL_SPLITS_BY_VERSION,
    RADAR_CHANNELS,
    SPLITS_FILENAME,
    NuScenesIndex,
    open_nuscenes,
)
from datamodules.sweep_transforms import invert_rigid, quaternions_to_rotations


@pytest.fixture(scope="module")
def nusc(synthetic_dataroot):
    return open_nuscenes(*synthetic_dataroot)


def devkit_sensor_to_global(nusc, sample_data_token: str) -> np.ndarray:
    sd = nusc.get("sample_data", sample_data_token)
    pose = nusc.get("ego_pose", sd["ego_pose_token"])
    calib = nusc.get("calibrated_sensor", sd["calibrated_sensor_token"])
    return transform_matrix(pose["translation"], Quaternion(pose["rotation"])) @ transform_matrix(
        calib["translation"], Quaternion(calib["rotation"])
    )


def scene_sample_tokens(nusc, scene: dict) -> list[str]:
    tokens, token = [], scene["first_sample_token"]
    while token:
        tokens.append(token)
        token = nusc.get("sample", token)["next"]
    return tokens


def test_open_nuscenes_names_a_missing_dataroot(tmp_path: Path):
    missing = tmp_path / "no_such_dataroot"
    with pytest.raises(FileNotFoundError, match="no_such_dataroot"):
        open_nuscenes(missing, "v1.0-mini")


def test_open_nuscenes_names_a_wrong_version_and_the_versions_found(synthetic_dataroot):
    dataroot, version = synthetic_dataroot
    with pytest.raises(FileNotFoundError) as error:
        open_nuscenes(dataroot, "v1.0-wrong")
    assert (
        "v1.0-wrong" in str(error.value) and version in str(error.value) and str(dataroot) in str(error.value)
    )


def test_open_nuscenes_names_missing_tables(synthetic_dataroot, tmp_path: Path):
    dataroot, version = synthetic_dataroot
    broken = tmp_path / "broken"
    (broken / version).mkdir(parents=True)
    for table in (dataroot / version).iterdir():
        if table.name != "sample_data.json":
            (broken / version / table.name).symlink_to(table.resolve())
    with pytest.raises(FileNotFoundError, match=r"sample_data\.json"):
        open_nuscenes(broken, version)


def test_split_file_defines_the_splits(synthetic_dataroot, tmp_path: Path, nusc):
    dataroot, version = synthetic_dataroot
    view = dataroot_view(dataroot, tmp_path / "view", version, exclude=(SPLITS_FILENAME,))
    names = [scene["name"] for scene in nusc.scene]
    (view / SPLITS_FILENAME).write_text(json.dumps({"train": names[1:], "val": names[:1]}))
    index = NuScenesIndex(open_nuscenes(view, version))
    assert index.split_names == ["train", "val"]
    assert index.scene_names("val") == names[:1]
    records = index.records("train")
    expected = [token for scene in nusc.scene[1:] for token in scene_sample_tokens(nusc, scene)]
    assert [record.sample_token for record in records] == expected
    assert {record.scene_name for record in records} == set(names[1:])

    with pytest.raises(ValueError, match=r"unknown split 'test'.*\['train', 'val'\]"):
        index.records("test")
    (view / SPLITS_FILENAME).write_text(json.dumps({"train": [*names, "scene-9998"]}))
    with pytest.raises(ValueError, match="scene-9998"):
        NuScenesIndex(open_nuscenes(view, version)).records("train")
    (view / SPLITS_FILENAME).write_text(json.dumps({"train": "scene-0001"}))
    with pytest.raises(ValueError, match="lists of scene names"):
        NuScenesIndex(open_nuscenes(view, version)).records("train")


def test_official_versions_use_the_official_splits(synthetic_dataroot, tmp_path: Path, nusc):
    dataroot, version = synthetic_dataroot
    view = dataroot_view(
        dataroot, tmp_path / "mini", version, exclude=(SPLITS_FILENAME,), version_as="v1.0-mini"
    )
    index = NuScenesIndex(open_nuscenes(view, "v1.0-mini"))
    assert index.split_names == ["mini_train", "mini_val"]
    assert index.split_names == list(OFFICIAL_SPLITS_BY_VERSION["mini"])
    names = {scene["name"] for scene in nusc.scene}
    missing = [name for name in create_splits_scenes()["mini_train"] if name not in names]
    if missing:  # official scenes the dataroot lacks are refused by name, not silently left out
        with pytest.raises(ValueError, match=missing[0]):
            index.records("mini_train")
    else:
        assert {record.scene_name for record in index.records("mini_train")} == set(
            create_splits_scenes()["mini_train"]
        )
    with pytest.raises(ValueError, match="unknown split 'train'"):
        index.records("train")


def test_unofficial_version_without_split_file_is_refused(synthetic_dataroot, tmp_path: Path):
    dataroot, version = synthetic_dataroot
    view = dataroot_view(dataroot, tmp_path / "view", version, exclude=(SPLITS_FILENAME,))
    index = NuScenesIndex(open_nuscenes(view, version))
    assert len(index.records_of([sample["token"] for sample in index.nusc.sample])) == len(index.nusc.sample)
    with pytest.raises(ValueError, match=SPLITS_FILENAME):
        index.records("train")


def test_records_agree_with_the_tables(synthetic_dataroot, nusc):
    index = NuScenesIndex(nusc, lidar_sweeps=10, radar_sweeps=4, future_steps=6)
    samples = list(nusc.sample)
    records = index.records_of([sample["token"] for sample in samples])
    for sample, record in zip(samples, records, strict=True):
        scene = nusc.get("scene", sample["scene_token"])
        keyframe_sd = nusc.get("sample_data", sample["data"][LIDAR_CHANNEL])
        assert record.sample_token == sample["token"]
        assert record.scene_name == scene["name"]
        assert record.location == nusc.get("log", scene["log_token"])["location"]
        assert record.timestamp_us == keyframe_sd["timestamp"]
        assert record.annotation_tokens == tuple(sample["anns"])
        calib = nusc.get("calibrated_sensor", keyframe_sd["calibrated_sensor_token"])
        expected_lidar_to_ego = transform_matrix(calib["translation"], Quaternion(calib["rotation"]))
        np.testing.assert_allclose(record.lidar_to_ego, expected_lidar_to_ego, atol=1e-12)
        np.testing.assert_allclose(
            record.lidar_to_global, devkit_sensor_to_global(nusc, keyframe_sd["token"]), atol=1e-9
        )

        chains = {
            LIDAR_CHANNEL: (record.lidar_sweeps, 10),
            **{c: (s, 4) for c, s in record.radar_sweeps.items()},
        }
        assert set(record.radar_sweeps) == {c for c in RADAR_CHANNELS if c in sample["data"]}
        for channel, (sweeps, wanted) in chains.items():
            expected_tokens, token = [], sample["data"][channel]
            while token and len(expected_tokens) < wanted:
                expected_tokens.append(token)
                token = nusc.get("sample_data", token)["prev"]
            assert [sweep.token for sweep in sweeps] == expected_tokens
            for sweep in sweeps:
                sd = nusc.get("sample_data", sweep.token)
                assert sweep.path == sd["filename"]
                assert Path(record.sweep_file(sweep)) == Path(nusc.dataroot) / sd["filename"]
                assert sweep.timestamp_us == sd["timestamp"]
                np.testing.assert_allclose(
                    sweep.sensor_to_global, devkit_sensor_to_global(nusc, sweep.token), atol=1e-9
                )

        expected_futures, token = [], sample["next"]
        while token and len(expected_futures) < 6:
            expected_futures.append(token)
            token = nusc.get("sample", token)["next"]
        assert record.future_sample_tokens == tuple(expected_futures)


def test_prev_chain_that_ends_early_gives_fewer_sweeps(synthetic_dataroot):
    nusc = open_nuscenes(*synthetic_dataroot)  # its own copy: the chain is cut in memory
    sample = nusc.sample[-1]
    chain = [nusc.get("sample_data", sample["data"][LIDAR_CHANNEL])]
    while chain[-1]["prev"] and len(chain) < 10:
        chain.append(nusc.get("sample_data", chain[-1]["prev"]))
    assert len(chain) >= 4, "the test needs a keyframe with at least 4 LiDAR sweeps"
    available = len(chain)
    assert (
        len(NuScenesIndex(nusc, lidar_sweeps=available + 5).record(sample["token"]).lidar_sweeps) >= available
    )
    chain[3]["prev"] = ""
    record = NuScenesIndex(nusc, lidar_sweeps=10).record(sample["token"])
    assert len(record.lidar_sweeps) == 4
    assert [sweep.token for sweep in record.lidar_sweeps] == [sd["token"] for sd in chain[:4]]


def test_radar_off_and_argument_checks(nusc):
    record = NuScenesIndex(nusc, radar=False).record(nusc.sample[0]["token"])
    assert record.radar_sweeps == {}
    with pytest.raises(ValueError, match="lidar_sweeps >= 1"):
        NuScenesIndex(nusc, lidar_sweeps=0)


def test_records_survive_pickling_for_dataloader_workers(nusc):
    records = NuScenesIndex(nusc).records_of([sample["token"] for sample in nusc.sample[:3]])
    restored = pickle.loads(pickle.dumps(records))
    for before, after in zip(records, restored, strict=True):
        assert after.sample_token == before.sample_token
        np.testing.assert_array_equal(
            after.lidar_sweeps[-1].sensor_to_global, before.lidar_sweeps[-1].sensor_to_global
        )


def test_quaternion_and_rigid_helpers_match_pyquaternion():
    rng = np.random.default_rng(7)
    quaternions = rng.normal(size=(50, 4)) * rng.uniform(0.5, 2.0, size=(50, 1))  # not normalised
    rotations = quaternions_to_rotations(quaternions)
    for quaternion, rotation in zip(quaternions, rotations, strict=True):
        np.testing.assert_allclose(rotation, Quaternion(quaternion).rotation_matrix, atol=1e-12)
    transforms = np.tile(np.eye(4), (50, 1, 1))
    transforms[:, :3, :3] = rotations
    transforms[:, :3, 3] = rng.uniform(-2000, 2000, size=(50, 3))
    np.testing.assert_allclose(
        invert_rigid(transforms) @ transforms, np.tile(np.eye(4), (50, 1, 1)), atol=1e-9
    )
    for quaternion, transform in zip(quaternions, transforms, strict=True):
        expected = transform_matrix(transform[:3, 3], Quaternion(quaternion), inverse=True)
        np.testing.assert_allclose(invert_rigid(transform), expected, atol=1e-9)
