"""The recording clock, the scene plan, splits and presets of the generation pipeline."""

import importlib.util
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pytest

from bevjepa.sim.calibration import RADARS
from bevjepa.sim.can_bus import check_can_bus_scene_name
from bevjepa.sim.generate import plan_scenes
from bevjepa.sim.presets import PRESETS, get_preset
from bevjepa.sim.recorder import RADAR_PERIOD_US, SWEEPS_PER_KEYFRAME, log_name
from bevjepa.sim.splits import load_splits, split_of_scene, write_splits


def test_sensors_run_on_the_nuscenes_clock(tiny_dataset):
    for scene in tiny_dataset.generated.scenes:
        times = [c.timestamp_us for c in scene.captures]
        assert times == sorted(times)
        lidar = [c for c in scene.captures if c.channel == "LIDAR_TOP"]
        assert np.all(np.diff([c.timestamp_us for c in lidar]) == 50_000)  # 20 Hz
        assert [c.is_key_frame for c in lidar] == [i % SWEEPS_PER_KEYFRAME == 0 for i in range(len(lidar))]
        keyframe_times = np.array([k.timestamp_us for k in scene.keyframes])
        assert np.all(np.diff(keyframe_times) == 500_000)  # 2 Hz
        assert list(keyframe_times) == [c.timestamp_us for c in lidar if c.is_key_frame]
        for mount in RADARS:
            radar = [c for c in scene.captures if c.channel == mount.channel]
            assert np.all(np.diff([c.timestamp_us for c in radar]) == RADAR_PERIOD_US)  # 13 Hz
            key_times = np.array([c.timestamp_us for c in radar if c.is_key_frame])
            assert len(key_times) == len(keyframe_times)
            radar_times = np.array([c.timestamp_us for c in radar])
            nearest = radar_times[np.abs(radar_times[None] - keyframe_times[:, None]).argmin(axis=1)]
            assert np.array_equal(key_times, nearest)
        pose_times = np.array([m["utime"] for m in scene.can_bus.pose])
        steering_times = np.array([m["utime"] for m in scene.can_bus.steeranglefeedback])
        assert np.all(np.diff(pose_times) == 20_000) and np.all(np.diff(steering_times) == 10_000)
        assert pose_times[0] == lidar[0].timestamp_us


def test_every_capture_carries_the_ego_of_its_own_instant(tiny_dataset):
    scene = tiny_dataset.generated.scenes[0]
    poses = {m["utime"]: m for m in scene.can_bus.pose}
    for capture in scene.captures:
        if capture.timestamp_us in poses:
            assert np.allclose(poses[capture.timestamp_us]["pos"][:2], capture.ego.position)
    radar = [c for c in scene.captures if c.channel != "LIDAR_TOP"]
    lidar = {c.timestamp_us: c for c in scene.captures if c.channel == "LIDAR_TOP"}
    moving = [c for c in radar if c.timestamp_us % 50_000 and c.ego.speed > 1.0]
    assert moving
    for capture in moving[:20]:
        before = max(t for t in lidar if t < capture.timestamp_us)
        after = min(t for t in lidar if t > capture.timestamp_us)
        travelled = np.linalg.norm(capture.ego.position - lidar[before].ego.position)
        assert 0.0 < travelled < np.linalg.norm(lidar[after].ego.position - lidar[before].ego.position)


def test_keyframe_objects_form_unbroken_tracks_with_visibility(tiny_dataset):
    for scene in tiny_dataset.generated.scenes:
        appearances: dict[int, list[int]] = {}
        for index, keyframe in enumerate(scene.keyframes):
            for obj in keyframe.objects:
                appearances.setdefault(obj.instance_id, []).append(index)
                assert 0.0 <= obj.visibility <= 1.0
        for indices in appearances.values():
            assert indices == list(range(indices[0], indices[-1] + 1))
        visibilities = [o.visibility for k in scene.keyframes for o in k.objects]
        assert min(visibilities) == 0.0 and max(visibilities) > 0.8


def test_scene_plan_names_times_and_held_out_split():
    preset = get_preset("demo")
    planned = plan_scenes(preset, seed=0)
    assert planned == plan_scenes(preset, seed=0)
    assert [p.spec.start_timestamp_us for p in plan_scenes(preset, seed=1)] != [
        p.spec.start_timestamp_us for p in planned
    ]
    names = [p.spec.name for p in planned]
    assert names[0] == "scene-0001" and len(set(names)) == len(names)
    for name in names:
        check_can_bus_scene_name(name)
    starts = [p.spec.start_timestamp_us for p in planned]
    assert len(set(starts)) == len(starts)
    assert all(datetime.fromtimestamp(t / 1e6, tz=timezone.utc).year == 2018 for t in starts)
    val_towns = {p.town_index for p in planned if p.split == "val"}
    train_towns = {p.town_index for p in planned if p.split == "train"}
    assert val_towns == {preset.towns - 1} and not val_towns & train_towns
    assert len({p.spec.seed for p in planned}) == len(planned)


def test_log_names_follow_nuscenes():
    start = int(datetime(2018, 7, 24, 3, 0, 5, tzinfo=timezone.utc).timestamp()) * 1_000_000
    assert log_name("singapore-onenorth", start) == "n015-2018-07-24-11-00-05+0800"
    assert log_name("boston-seaport", start) == "n008-2018-07-23-23-00-05-0400"


def test_splits_file_round_trip(tiny_dataset, tmp_path):
    splits = load_splits(tiny_dataset.dataroot)
    assert splits == tiny_dataset.generated.splits
    assert len(splits["train"]) == 1 and len(splits["val"]) == 1
    assert split_of_scene(tiny_dataset.dataroot, splits["val"][0]) == "val"
    with pytest.raises(KeyError):
        split_of_scene(tiny_dataset.dataroot, "scene-9999")
    with pytest.raises(ValueError, match="both"):
        write_splits(tmp_path, {"train": ["scene-0001"], "val": ["scene-0001"]})
    with pytest.raises(FileNotFoundError, match="only synthetic dataroots"):
        load_splits(tmp_path)


def test_presets():
    assert set(PRESETS) == {"tiny", "demo", "nuscenes"}
    assert get_preset("nuscenes").simulator.lidar.azimuth_steps * 32 > 30_000
    assert get_preset("nuscenes").scene_duration_s == 20.0
    for preset in PRESETS.values():
        assert preset.version == f"v1.0-{preset.name}" and 1 <= preset.towns <= 4
    with pytest.raises(ValueError, match="unknown preset 'huge'"):
        get_preset("huge")


def _load_tool():
    path = Path(__file__).resolve().parents[2] / "tools" / "make_synthetic_nuscenes.py"
    spec = importlib.util.spec_from_file_location("make_synthetic_nuscenes", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_tool_refuses_bad_arguments_and_non_empty_folders(tmp_path, capsys):
    tool = _load_tool()
    with pytest.raises(SystemExit) as exit_info:
        tool.parse_args(["--preset", "huge", "--out", str(tmp_path / "a")])
    assert exit_info.value.code == 2 and "invalid choice: 'huge'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        tool.parse_args(["--preset", "tiny", "--out", str(tmp_path / "a"), "--seed", "-1"])
    assert "--seed must be non-negative" in capsys.readouterr().err
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "file").write_text("x")
    with pytest.raises(SystemExit):
        tool.parse_args(["--preset", "tiny", "--out", str(tmp_path / "full")])
    assert "not empty; pass --overwrite" in capsys.readouterr().err
    args = tool.parse_args(["--preset", "tiny", "--out", str(tmp_path / "full"), "--overwrite"])
    assert args.overwrite and args.seed == 0 and args.workers >= 1
