"""The nuScenes writer, checked through the official, unmodified nuscenes-devkit on a hand-made drive."""

import dataclasses
import re
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pytest
from handmade_log import AGENTS, LOCATION, START_US, STATIC_POINTS, Agent, make_scenes, make_town
from nuscenes.map_expansion.bitmap import BitMap
from nuscenes.nuscenes import NuScenes
from nuscenes.utils.data_classes import Box, LidarPointCloud, RadarPointCloud
from nuscenes.utils.geometry_utils import points_in_box, transform_matrix
from pyquaternion import Quaternion

from bevjepa.sim.box_points import PointsInBoxCounter
from bevjepa.sim.nuscenes_writer import write_nuscenes
from bevjepa.sim.pcd_files import read_lidar_bin, read_radar_pcd, write_lidar_bin, write_radar_pcd

VERSION = "v1.0-handmade"
CHANNELS = {
    "LIDAR_TOP",
    "RADAR_FRONT",
    "RADAR_FRONT_LEFT",
    "RADAR_FRONT_RIGHT",
    "RADAR_BACK_LEFT",
    "RADAR_BACK_RIGHT",
}
ALL_RADAR_STATES = {
    "invalid_states": list(range(18)),
    "dynprop_states": list(range(8)),
    "ambig_states": list(range(5)),
}
TOKEN = re.compile(r"^[0-9a-f]{32}$")


@pytest.fixture(scope="module")
def scenes():
    return make_scenes()


@pytest.fixture(scope="module")
def dataroot(tmp_path_factory, scenes) -> Path:
    root = tmp_path_factory.mktemp("nuscenes")
    write_nuscenes(root, VERSION, [make_town()], scenes, seed=7)
    return root


@pytest.fixture(scope="module")
def nusc(dataroot) -> NuScenes:
    return NuScenes(version=VERSION, dataroot=str(dataroot), verbose=False)


def _sensor_to_global(nusc: NuScenes, sample_data: dict) -> np.ndarray:
    pose = nusc.get("ego_pose", sample_data["ego_pose_token"])
    calibration = nusc.get("calibrated_sensor", sample_data["calibrated_sensor_token"])
    return transform_matrix(pose["translation"], Quaternion(pose["rotation"])) @ transform_matrix(
        calibration["translation"], Quaternion(calibration["rotation"])
    )


def _global_points(nusc: NuScenes, sample_data: dict, cloud) -> np.ndarray:
    cloud.transform(_sensor_to_global(nusc, sample_data))
    return cloud.points[:3]  # (3, N)


def _agent_of(nusc: NuScenes, annotation: dict) -> Agent:
    """The hand-made agent an annotation describes: the one whose box is where the annotation is."""
    time_s = (nusc.get("sample", annotation["sample_token"])["timestamp"] - START_US) * 1e-6
    offsets = [
        np.linalg.norm(agent.state(time_s).box[:2] - annotation["translation"][:2]) for agent in AGENTS
    ]
    assert min(offsets) < 1e-9
    return AGENTS[int(np.argmin(offsets))]


def test_devkit_loads_all_thirteen_tables(nusc, scenes):
    captures = sum(len(scene.captures) for scene in scenes)
    assert len(nusc.scene) == 2 and len(nusc.log) == 1 and len(nusc.map) == 1
    assert len(nusc.sample) == sum(len(scene.keyframes) for scene in scenes)
    assert len(nusc.sample_data) == len(nusc.ego_pose) == captures
    assert len(nusc.calibrated_sensor) == 2 * len(CHANNELS)
    assert {sensor["channel"] for sensor in nusc.sensor} == CHANNELS
    assert [category["index"] for category in nusc.category] == list(range(32))
    assert {"vehicle.car", "human.pedestrian.adult", "movable_object.trafficcone"} <= {
        c["name"] for c in nusc.category
    }
    assert len(nusc.attribute) == 8
    assert [(v["token"], v["level"]) for v in nusc.visibility] == [
        ("1", "v0-40"),
        ("2", "v40-60"),
        ("3", "v60-80"),
        ("4", "v80-100"),
    ]
    assert nusc.log[0]["location"] == LOCATION and re.match(
        r"^\d{4}-\d{2}-\d{2}$", nusc.log[0]["date_captured"]
    )


def test_every_reference_resolves_and_tokens_are_unique(nusc):
    references = {
        "sample": {"scene_token": "scene", "prev": "sample", "next": "sample"},
        "sample_data": {
            "sample_token": "sample",
            "ego_pose_token": "ego_pose",
            "calibrated_sensor_token": "calibrated_sensor",
            "prev": "sample_data",
            "next": "sample_data",
        },
        "sample_annotation": {
            "sample_token": "sample",
            "instance_token": "instance",
            "visibility_token": "visibility",
            "prev": "sample_annotation",
            "next": "sample_annotation",
        },
        "instance": {"category_token": "category", "first_annotation_token": "sample_annotation"},
        "scene": {"log_token": "log", "first_sample_token": "sample", "last_sample_token": "sample"},
        "calibrated_sensor": {"sensor_token": "sensor"},
    }
    for table, fields in references.items():
        for record in getattr(nusc, table):
            for field, target in fields.items():
                if record[field]:
                    assert nusc.get(target, record[field])["token"] == record[field]
    for annotation in nusc.sample_annotation:
        assert all(nusc.get("attribute", token) for token in annotation["attribute_tokens"])
    for instance in nusc.instance:
        assert nusc.get("sample_annotation", instance["last_annotation_token"])
    assert all(nusc.get("log", token) for record in nusc.map for token in record["log_tokens"])
    for table in nusc.table_names:
        tokens = [record["token"] for record in getattr(nusc, table)]
        assert len(set(tokens)) == len(tokens), table
        if table not in ("visibility", "map"):
            assert all(TOKEN.match(token) for token in tokens), table


def test_samples_and_sample_data_chains(nusc, dataroot, scenes):
    for scene_record, scene in zip(nusc.scene, scenes, strict=True):
        samples = [nusc.get("sample", scene_record["first_sample_token"])]
        while samples[-1]["next"]:
            samples.append(nusc.get("sample", samples[-1]["next"]))
        assert samples[-1]["token"] == scene_record["last_sample_token"]
        assert len(samples) == scene_record["nbr_samples"] == len(scene.keyframes)
        assert np.all(np.diff([sample["timestamp"] for sample in samples]) == 500_000)  # 2 Hz keyframes
        for sample in samples:
            assert set(sample["data"]) == CHANNELS
            assert all(nusc.get("sample_data", token)["is_key_frame"] for token in sample["data"].values())
        for channel in CHANNELS:
            expected = [c.timestamp_us for c in scene.captures if c.channel == channel]
            record = nusc.get("sample_data", samples[0]["data"][channel])
            while record["prev"]:
                assert nusc.get("sample_data", record["prev"])["next"] == record["token"]
                record = nusc.get("sample_data", record["prev"])
            chain = [record]
            while chain[-1]["next"]:
                chain.append(nusc.get("sample_data", chain[-1]["next"]))
            assert [record["timestamp"] for record in chain] == expected  # the whole scene, nothing more
            for record in chain:
                folder = "samples" if record["is_key_frame"] else "sweeps"
                suffix = ".pcd.bin" if channel == "LIDAR_TOP" else ".pcd"
                name = f"{folder}/{channel}/{scene.log_name}__{channel}__{record['timestamp']}{suffix}"
                assert record["filename"] == name and (dataroot / name).is_file()
                assert record["fileformat"] == "pcd" and record["width"] == record["height"] == 0
                sample = nusc.get("sample", record["sample_token"])
                if not record["is_key_frame"] and record["timestamp"] <= samples[-1]["timestamp"]:
                    # a sweep points at the sample that follows it closest in time
                    later = [s["timestamp"] for s in samples if s["timestamp"] >= record["timestamp"]]
                    assert sample["timestamp"] == min(later)


def test_annotations_follow_the_objects(nusc, scenes):
    for scene_record, scene in zip(nusc.scene, scenes, strict=True):
        sample_token = scene_record["first_sample_token"]
        for keyframe in scene.keyframes:
            sample = nusc.get("sample", sample_token)
            boxes = [nusc.get_box(token) for token in sample["anns"]]
            assert len(boxes) == len(keyframe.objects)
            for obj in keyframe.objects:
                box = min(boxes, key=lambda box: np.linalg.norm(box.center - obj.box[:3]))
                assert box.name == obj.category
                np.testing.assert_allclose(box.center, obj.box[:3])
                np.testing.assert_allclose(box.wlh, [obj.box[4], obj.box[3], obj.box[5]])  # w, l, h
                assert abs(np.arctan2(np.sin(box.orientation.yaw_pitch_roll[0] - obj.box[6]), 1.0)) < 1e-9
            sample_token = sample["next"]
    by_instance = {}
    for annotation in nusc.sample_annotation:
        by_instance.setdefault(annotation["instance_token"], []).append(annotation)
    for instance in nusc.instance:
        track = by_instance[instance["token"]]
        assert instance["nbr_annotations"] == len(track)
        first = nusc.get("sample_annotation", instance["first_annotation_token"])
        assert (
            first["prev"] == ""
            and nusc.get("sample_annotation", instance["last_annotation_token"])["next"] == ""
        )
    # Four agents in scene 1; the pedestrian appears at 0.4 s, so it misses the first keyframe only.
    assert sorted(instance["nbr_annotations"] for instance in nusc.instance[:4]) == [4, 5, 5, 5]


def test_attributes_and_visibility_levels(nusc):
    for annotation in nusc.sample_annotation:
        agent = _agent_of(nusc, annotation)
        names = [nusc.get("attribute", token)["name"] for token in annotation["attribute_tokens"]]
        assert names == ([agent.attribute] if agent.attribute else [])
        level = nusc.get("visibility", annotation["visibility_token"])["level"]
        assert level == {0.95: "v80-100", 0.5: "v40-60", 0.7: "v60-80", 0.2: "v0-40"}[agent.visibility]


def test_box_velocity_matches_the_motion(nusc):
    for annotation in nusc.sample_annotation:
        velocity = nusc.box_velocity(annotation["token"])
        np.testing.assert_allclose(velocity[:2], _agent_of(nusc, annotation).velocity, atol=1e-9)
        assert velocity[2] == 0.0


def test_num_lidar_pts_equals_a_direct_count(nusc, dataroot):
    for annotation in nusc.sample_annotation:
        sample = nusc.get("sample", annotation["sample_token"])
        lidar = nusc.get("sample_data", sample["data"]["LIDAR_TOP"])
        points = _global_points(nusc, lidar, LidarPointCloud.from_file(str(dataroot / lidar["filename"])))
        count = int(points_in_box(nusc.get_box(annotation["token"]), points).sum())
        assert annotation["num_lidar_pts"] == count >= 27  # the 3x3x3 grid lies inside every box


def test_num_radar_pts_counts_every_radar_without_filters(nusc, dataroot):
    filtered_less = 0
    for annotation in nusc.sample_annotation:
        sample = nusc.get("sample", annotation["sample_token"])
        box = nusc.get_box(annotation["token"])
        unfiltered = filtered = 0
        for channel in CHANNELS - {"LIDAR_TOP"}:
            radar = nusc.get("sample_data", sample["data"][channel])
            path = str(dataroot / radar["filename"])
            unfiltered += points_in_box(
                box, _global_points(nusc, radar, RadarPointCloud.from_file(path, **ALL_RADAR_STATES))
            ).sum()
            filtered += points_in_box(box, _global_points(nusc, radar, RadarPointCloud.from_file(path))).sum()
        assert annotation["num_radar_pts"] == unfiltered
        filtered_less += filtered < unfiltered
    assert filtered_less > 0  # the invalid return in each sweep is counted, as nuScenes counts


def test_boxes_in_the_lidar_frame_hold_their_points(nusc, dataroot, scenes):
    sample = nusc.sample[2]
    path, boxes, _ = nusc.get_sample_data(sample["data"]["LIDAR_TOP"])
    capture = next(
        c for c in scenes[0].captures if c.channel == "LIDAR_TOP" and c.timestamp_us == sample["timestamp"]
    )
    points = LidarPointCloud.from_file(path).points[:3]
    np.testing.assert_array_equal(points.T, capture.data[:, :3])
    assert len(boxes) == len(sample["anns"]) == 4
    for box, token in zip(boxes, sample["anns"], strict=True):
        instance_id = _agent_of(nusc, nusc.get("sample_annotation", token)).instance_id
        assert points_in_box(box, points[:, capture.hit_ids == instance_id]).all()


def test_multisweep_compensation_makes_static_points_coincide(nusc, dataroot):
    sample = nusc.sample[3]
    cloud, times = LidarPointCloud.from_file_multisweep(
        nusc, sample, "LIDAR_TOP", "LIDAR_TOP", nsweeps=10, min_distance=0.0
    )
    lags = np.unique(times[0].round(6))
    assert len(lags) == 10 and np.allclose(lags, np.arange(10) * 0.05)
    static_count = len(STATIC_POINTS)
    sweeps = np.split(cloud.points[:3], np.flatnonzero(np.diff(times[0]) != 0) + 1, axis=1)
    reference = sweeps[0][:, :static_count]
    for sweep in sweeps[1:]:
        np.testing.assert_allclose(sweep[:, :static_count], reference, atol=2e-3)


def test_radar_multisweep_and_file_round_trip(nusc, dataroot, scenes):
    sample = nusc.sample[1]
    cloud, times = RadarPointCloud.from_file_multisweep(nusc, sample, "RADAR_FRONT", "LIDAR_TOP", nsweeps=5)
    assert cloud.points.shape[0] == 18 and cloud.points.shape[1] > 0 and len(np.unique(times)) == 5
    assert np.all(cloud.points[14] == 0)  # the devkit's default filter keeps valid returns only
    record = nusc.get("sample_data", sample["data"]["RADAR_FRONT_LEFT"])
    capture = next(
        c
        for c in scenes[0].captures
        if c.channel == "RADAR_FRONT_LEFT" and c.timestamp_us == record["timestamp"]
    )
    parsed = RadarPointCloud.from_file(str(dataroot / record["filename"]), **ALL_RADAR_STATES).points.T
    np.testing.assert_array_equal(parsed.astype(np.float32), capture.data)
    np.testing.assert_array_equal(read_radar_pcd(dataroot / record["filename"]), capture.data)


def test_pcd_files_round_trip_including_empty_radar(tmp_path):
    rng = np.random.default_rng(0)
    lidar = rng.normal(size=(100, 5)).astype(np.float32)
    write_lidar_bin(tmp_path / "a.pcd.bin", lidar)
    np.testing.assert_array_equal(read_lidar_bin(tmp_path / "a.pcd.bin"), lidar)
    np.testing.assert_array_equal(
        LidarPointCloud.from_file(str(tmp_path / "a.pcd.bin")).points.T, lidar[:, :4]
    )
    write_radar_pcd(tmp_path / "empty.pcd", np.zeros((0, 18)))
    assert RadarPointCloud.from_file(str(tmp_path / "empty.pcd")).points.shape == (18, 0)
    assert read_radar_pcd(tmp_path / "empty.pcd").shape == (0, 18)
    radar = np.zeros((3, 18))
    radar[:, 3] = [-3, 7, 0]  # dyn_prop is a signed byte
    radar[:, 4] = [0, 300, 32767]  # id is a signed 16-bit integer
    write_radar_pcd(tmp_path / "r.pcd", radar)
    parsed = RadarPointCloud.from_file(
        str(tmp_path / "r.pcd"), **{k: list(range(-5, 18)) for k in ALL_RADAR_STATES}
    )
    np.testing.assert_array_equal(parsed.points.T, radar)
    with pytest.raises(ValueError, match="out of their"):
        write_radar_pcd(tmp_path / "bad.pcd", np.full((1, 18), 200.0))
    with pytest.raises(ValueError, match=r"\(N, 5\)"):
        write_lidar_bin(tmp_path / "bad.pcd.bin", np.zeros((3, 4)))


def test_map_table_and_semantic_prior(nusc, dataroot):
    record = nusc.map[0]
    assert record["category"] == "semantic_prior" and record["log_tokens"] == [nusc.log[0]["token"]]
    assert nusc.log[0]["map_token"] == record["token"]
    mask = record["mask"]
    poses = np.array([pose["translation"][:2] for pose in nusc.ego_pose])
    assert mask.is_on_mask(poses[:, 0], poses[:, 1]).all()  # the ego always drives on the drivable area
    assert not mask.is_on_mask(60.0, 150.0).any()
    bitmap = BitMap(str(dataroot), LOCATION, "semantic_prior")
    assert bitmap.image.shape == (2000, 3000)


def test_same_input_gives_the_same_bytes(tmp_path, scenes):
    town = make_town()
    first, second, other_seed = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    for root, seed in ((first, 3), (second, 3), (other_seed, 4)):
        write_nuscenes(root, VERSION, [town], scenes, seed=seed)
    files = sorted(path.relative_to(first) for path in first.rglob("*") if path.is_file())
    assert files == sorted(path.relative_to(second) for path in second.rglob("*") if path.is_file())
    assert all((first / f).read_bytes() == (second / f).read_bytes() for f in files)
    sample_table = Path(VERSION) / "sample.json"
    assert (first / sample_table).read_bytes() != (other_seed / sample_table).read_bytes()
    assert (first / sample_table).read_text().startswith('[\n{\n"token": ')  # nuScenes' indent=0 layout


def test_bad_logs_are_refused_with_a_clear_error(tmp_path, scenes):
    town = make_town()
    scene = scenes[0]
    bad_object = dataclasses.replace(scene.keyframes[0].objects[0], category="vehicle.spaceship")
    bad_keyframes = [dataclasses.replace(scene.keyframes[0], objects=[bad_object]), *scene.keyframes[1:]]
    cases = {
        "unknown nuScenes category": dataclasses.replace(scene, keyframes=bad_keyframes),
        "LIDAR_TOP key-frame": dataclasses.replace(scene, keyframes=scene.keyframes[1:]),
        "RADAR_FRONT needs exactly one key-frame": dataclasses.replace(
            scene, captures=[c for c in scene.captures if not (c.channel == "RADAR_FRONT" and c.is_key_frame)]
        ),
        "without CAN bus data": dataclasses.replace(scene, name="scene-0165"),
        "no town": dataclasses.replace(scene, location="boston-seaport"),
    }
    for message, bad_scene in cases.items():
        with pytest.raises(ValueError, match=message):
            write_nuscenes(tmp_path / message.replace(" ", "_"), VERSION, [town], [bad_scene], seed=0)
    with pytest.raises(ValueError, match="unique"):
        write_nuscenes(tmp_path / "twice", VERSION, [town], [scene, scene], seed=0)
    with pytest.raises(ValueError, match="would both be"):  # same log, same times: the files would collide
        write_nuscenes(
            tmp_path / "same", VERSION, [town], [scene, dataclasses.replace(scene, name="scene-0003")], 0
        )
    assert not any((tmp_path / "same").rglob("*.pcd*"))  # refused before writing anything


def test_ego_poses_match_the_captures(nusc, scenes):
    captures = {(c.channel, c.timestamp_us): c for scene in scenes for c in scene.captures}
    for record in nusc.sample_data:
        capture = captures[(record["channel"], record["timestamp"])]
        pose = nusc.get("ego_pose", record["ego_pose_token"])
        assert pose["timestamp"] == record["timestamp"]
        np.testing.assert_allclose(pose["translation"], [*capture.ego.position, 0.0])
        rotation = Quaternion(pose["rotation"]).rotation_matrix
        np.testing.assert_allclose(rotation[:2, :2], capture.ego.ego_to_global()[:2, :2], atol=1e-12)


@pytest.mark.filterwarnings("ignore:Conversion of an array with ndim:DeprecationWarning")  # inside the devkit
def test_devkit_explorer_lists_and_renders(nusc, tmp_path, capsys):
    nusc.list_scenes()
    nusc.list_sample(nusc.sample[2]["token"])
    printed = capsys.readouterr().out
    assert "scene-0001" in printed and "vehicle.car" in printed
    nusc.render_sample_data(
        nusc.sample[2]["data"]["LIDAR_TOP"], nsweeps=5, out_path=str(tmp_path / "bev.png"), verbose=False
    )
    nusc.render_sample_data(
        nusc.sample[2]["data"]["RADAR_FRONT"], nsweeps=3, out_path=str(tmp_path / "radar.png"), verbose=False
    )
    plt.close("all")
    assert (tmp_path / "bev.png").stat().st_size > 0 and (tmp_path / "radar.png").stat().st_size > 0


def test_points_in_box_counter_matches_the_devkit_brute_force():
    rng = np.random.default_rng(3)
    points = rng.uniform([-20, -20, -1], [20, 20, 3], size=(20000, 3))
    points[:8] = [[2.25, 0, 0.5], [-2.25, 0, 0.5], [0, 0.95, 0.5], [0, 0, 1.3]] * 2  # on the faces of box 0
    counter = PointsInBoxCounter(points)
    boxes = [Box([0.0, 0.0, 0.5], [1.9, 4.5, 1.6], Quaternion(axis=[0, 0, 1], angle=0.0))]
    for _ in range(30):
        yaw, size = rng.uniform(-np.pi, np.pi), rng.uniform(0.3, 8.0, 3)
        boxes.append(
            Box(rng.uniform([-18, -18, 0], [18, 18, 1]), size, Quaternion(axis=[0, 0, 1], angle=yaw))
        )
    for box in boxes:
        assert counter.count(box) == points_in_box(box, points.T).sum()
    assert counter.count(boxes[0]) >= 8
