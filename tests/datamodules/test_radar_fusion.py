"""Radar files and multi-sweep radar fusion: equal to the devkit's parser and from_file_multisweep."""

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from dataroot_views import randomise_poses
from nuscenes.utils.data_classes import RadarPointCloud
from nuscenes.utils.geometry_utils import transform_matrix
from pyquaternion import Quaternion

from bevjepa.sim.pcd_files import RADAR_FIELDS, write_radar_pcd
from datamodules.lidar_files import SensorFileError
from datamodules.nuscenes_index import LIDAR_CHANNEL, RADAR_CHANNELS, NuScenesIndex, open_nuscenes
from datamodules.radar_files import (
    VALID_AMBIG_STATES,
    VALID_DYNPROP_STATES,
    VALID_INVALID_STATES,
    default_filter_mask,
    load_radar_records,
)
from datamodules.radar_fusion import RADAR_FEATURES, fuse_radar_sweeps, radar_sweeps_in_order
from datamodules.sample_records import KeyframeRecord

RADAR_SWEEPS = 4
ALL_STATES = list(range(-128, 128))  # every value of the int8 state fields: no filtering


@pytest.fixture(scope="module")
def nusc(synthetic_dataroot):
    return open_nuscenes(*synthetic_dataroot)


@pytest.fixture(scope="module")
def records(nusc):
    index = NuScenesIndex(nusc, lidar_sweeps=1, radar_sweeps=RADAR_SWEEPS)
    return index.records_of([sample["token"] for sample in nusc.sample])


def devkit_reference_from_sensor(nusc, reference_sd: dict, sd: dict) -> np.ndarray:
    """The devkit's four-matrix product of from_file_multisweep for one sweep."""

    def matrix(record: dict, inverse: bool) -> np.ndarray:
        return transform_matrix(record["translation"], Quaternion(record["rotation"]), inverse=inverse)

    return (
        matrix(nusc.get("calibrated_sensor", reference_sd["calibrated_sensor_token"]), True)
        @ matrix(nusc.get("ego_pose", reference_sd["ego_pose_token"]), True)
        @ matrix(nusc.get("ego_pose", sd["ego_pose_token"]), False)
        @ matrix(nusc.get("calibrated_sensor", sd["calibrated_sensor_token"]), False)
    )


def assert_equals_devkit(nusc, record: KeyframeRecord) -> int:
    """Compare with the devkit channel by channel; returns the number of fused points."""
    sample = nusc.get("sample", record.sample_token)
    reference_sd = nusc.get("sample_data", sample["data"][LIDAR_CHANNEL])
    fused = fuse_radar_sweeps(record)
    sweeps = radar_sweeps_in_order(record)
    expected_points, expected_velocities = [], []
    for channel in RADAR_CHANNELS:
        if channel not in sample["data"]:
            continue
        cloud, times = RadarPointCloud.from_file_multisweep(
            nusc, sample, channel, LIDAR_CHANNEL, nsweeps=RADAR_SWEEPS
        )
        expected_points.append(np.column_stack([cloud.points[[0, 1, 2, 5]].T, times[0]]))
        expected_velocities.append(cloud.points[[8, 9]].T)  # left by the devkit in each radar's frame
    expected = np.concatenate(expected_points)  # (N, 5) x, y, z, rcs, time lag
    sensor_velocities = np.concatenate(expected_velocities)  # (N, 2)
    assert fused.points.shape == (len(expected), len(RADAR_FEATURES)) and fused.points.dtype == np.float32
    np.testing.assert_allclose(fused.points[:, :3], expected[:, :3], rtol=0, atol=1e-4)
    np.testing.assert_allclose(fused.points[:, 3], expected[:, 3], rtol=1e-6)
    np.testing.assert_allclose(fused.points[:, 6], expected[:, 4], rtol=0, atol=1e-6)
    # Velocities: the devkit's sensor-frame values rotated by the devkit's own transform of each sweep.
    rotations = np.stack(
        [
            devkit_reference_from_sensor(nusc, reference_sd, nusc.get("sample_data", sweep.token))[:3, :3]
            for sweep in sweeps
        ]
    )[fused.sweep_index]  # (N, 3, 3)
    planar = np.column_stack([sensor_velocities, np.zeros(len(sensor_velocities))])
    rotated = np.einsum("nij,nj->ni", rotations, planar)[:, :2]
    np.testing.assert_allclose(fused.points[:, 4:6], rotated, rtol=0, atol=1e-4)
    assert fused.sensor_origins.shape == (len(sweeps), 3)
    return len(fused.points)


def test_default_filters_are_the_devkits():
    RadarPointCloud.default_filters()
    for (lowest, highest), devkit_states in (
        (VALID_INVALID_STATES, RadarPointCloud.invalid_states),
        (VALID_DYNPROP_STATES, RadarPointCloud.dynprop_states),
        (VALID_AMBIG_STATES, RadarPointCloud.ambig_states),
    ):
        assert set(range(lowest, highest + 1)) == set(devkit_states)


def test_radar_files_parse_like_the_devkit(records):
    paths = [record.sweep_file(sweep) for record in records[:3] for sweep in radar_sweeps_in_order(record)]
    for path in paths:
        clusters = load_radar_records(path, "test")
        devkit = RadarPointCloud.from_file(str(path), ALL_STATES, ALL_STATES, ALL_STATES).points  # (18, N)
        assert clusters.dtype.names == tuple(RADAR_FIELDS)
        assert len(clusters) == devkit.shape[1]
        for row, name in enumerate(RADAR_FIELDS):
            np.testing.assert_array_equal(clusters[name].astype(np.float64), devkit[row])


def test_default_filters_keep_what_the_devkit_keeps(tmp_path: Path):
    rng = np.random.default_rng(11)
    count = 400
    clusters = np.zeros((count, len(RADAR_FIELDS)))
    clusters[:, :3] = rng.uniform(-50, 50, (count, 3))
    clusters[:, 4] = np.arange(count) % 200  # cluster id
    column = {name: index for index, name in enumerate(RADAR_FIELDS)}
    clusters[:, column["invalid_state"]] = rng.choice([0, 0, 0, 1, 2, 4, 8, 17], count)
    clusters[:, column["dyn_prop"]] = rng.integers(0, 8, count)
    clusters[:, column["ambig_state"]] = rng.choice([0, 1, 2, 3, 3, 3, 4], count)
    path = tmp_path / "states.pcd"
    write_radar_pcd(path, clusters)
    keep = default_filter_mask(load_radar_records(path))
    assert 0 < keep.sum() < count
    kept_x = RadarPointCloud.from_file(str(path)).points[0]
    np.testing.assert_array_equal(clusters[keep, 0].astype(np.float32), kept_x)


def test_fused_radar_equals_the_devkit_on_every_keyframe(nusc, records):
    assert sum(assert_equals_devkit(nusc, record) for record in records) > 0


def test_fused_radar_equals_the_devkit_under_arbitrary_3d_poses(synthetic_dataroot):
    nusc = open_nuscenes(*synthetic_dataroot)  # its own copy: poses are changed in memory
    randomise_poses(nusc, np.random.default_rng(5))
    index = NuScenesIndex(nusc, lidar_sweeps=1, radar_sweeps=RADAR_SWEEPS)
    for sample in nusc.sample[1::3]:
        assert_equals_devkit(nusc, index.record(sample["token"]))


def test_sweep_index_follows_channels_then_time(records):
    record = records[-1]
    fused = fuse_radar_sweeps(record)
    sweeps = radar_sweeps_in_order(record)
    assert sweeps == [sweep for channel in RADAR_CHANNELS for sweep in record.radar_sweeps.get(channel, ())]
    assert np.all(np.diff(fused.sweep_index) >= 0)
    lags = np.array([(record.timestamp_us - sweep.timestamp_us) * 1e-6 for sweep in sweeps])
    np.testing.assert_allclose(fused.points[:, 6], lags[fused.sweep_index], atol=1e-7)


def test_record_without_radar_gives_no_points(records):
    fused = fuse_radar_sweeps(dataclasses.replace(records[0], radar_sweeps={}))
    assert (
        fused.points.shape == (0, 7)
        and fused.sweep_index.shape == (0,)
        and fused.sensor_origins.shape == (0, 3)
    )


def test_empty_radar_file_gives_no_points(tmp_path: Path):
    path = tmp_path / "empty.pcd"
    write_radar_pcd(path, np.zeros((0, len(RADAR_FIELDS))))
    assert len(load_radar_records(path)) == 0
    assert RadarPointCloud.from_file(str(path)).points.shape[1] == 0


def record_with_radar_file(record: KeyframeRecord, path: Path) -> KeyframeRecord:
    channel, chain = next(iter(record.radar_sweeps.items()))
    replaced = (dataclasses.replace(chain[0], path=str(path)), *chain[1:])
    return dataclasses.replace(record, radar_sweeps={**record.radar_sweeps, channel: replaced})


@pytest.mark.parametrize("damage", ["missing", "truncated", "header", "nan"])
def test_bad_radar_files_raise_naming_file_and_sample(records, tmp_path: Path, damage: str):
    record = records[-1]
    source = Path(record.sweep_file(next(iter(record.radar_sweeps.values()))[0]))
    bad_file = tmp_path / f"{damage}.pcd"
    data = source.read_bytes()
    header_end = data.index(b"DATA binary\n") + len(b"DATA binary\n")
    if damage == "truncated":
        bad_file.write_bytes(data[: header_end + 50])
    elif damage == "header":
        bad_file.write_bytes(data.replace(b"FIELDS ", b"FIELDZ ", 1))
    elif damage == "nan":
        clusters = load_radar_records(source).copy()
        assert default_filter_mask(clusters).any(), "the test needs a cluster the filters keep"
        clusters["vx_comp"][np.flatnonzero(default_filter_mask(clusters))[-1]] = np.inf
        bad_file.write_bytes(data[:header_end] + clusters.tobytes() + b"\n")
    with pytest.raises(SensorFileError) as error:
        fuse_radar_sweeps(record_with_radar_file(record, bad_file))
    assert str(bad_file) in str(error.value) and record.sample_token in str(error.value)
    reason = {"missing": "not found", "truncated": "truncated", "header": "header", "nan": "NaN or infinite"}
    assert reason[damage] in str(error.value)


def test_files_with_another_field_layout_fuse_the_same(records, tmp_path: Path):
    """The layout comes from each file's header: a file with its fields in another order gives the same points."""
    record = records[-1]
    source = Path(record.sweep_file(next(iter(record.radar_sweeps.values()))[0]))
    clusters = load_radar_records(source)
    assert len(clusters), "the test needs a radar sweep with clusters"
    names = list(reversed(clusters.dtype.names))
    reordered = np.zeros(len(clusters), dtype=[(name, clusters.dtype[name]) for name in names])
    for name in names:
        reordered[name] = clusters[name]
    letters = {"f": "F", "i": "I", "u": "U"}
    header = [
        "# .PCD v0.7 - Point Cloud Data file format",
        "VERSION 0.7",
        "FIELDS " + " ".join(names),
        "SIZE " + " ".join(str(reordered.dtype[name].itemsize) for name in names),
        "TYPE " + " ".join(letters[reordered.dtype[name].kind] for name in names),
        "COUNT " + " ".join("1" for _ in names),
        f"WIDTH {len(reordered)}",
        "HEIGHT 1",
        "VIEWPOINT 0 0 0 1 0 0 0",
        f"POINTS {len(reordered)}",
        "DATA binary",
    ]
    path = tmp_path / "reordered.pcd"
    path.write_bytes(("\n".join(header) + "\n").encode() + reordered.tobytes() + b"\n")
    expected = fuse_radar_sweeps(record)
    fused = fuse_radar_sweeps(record_with_radar_file(record, path))
    np.testing.assert_array_equal(fused.points, expected.points)
    np.testing.assert_array_equal(fused.sweep_index, expected.sweep_index)
