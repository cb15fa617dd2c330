"""CAN bus files, read back through the devkit's NuScenesCanBus."""

import numpy as np
import pytest
from handmade_log import make_scene
from nuscenes.can_bus.can_bus_api import NuScenesCanBus

from bevjepa.sim.can_bus import can_bus_scene_names, check_can_bus_scene_name, write_can_bus
from bevjepa.sim.types import CanBusLog


@pytest.fixture(scope="module")
def scene():
    return make_scene("scene-0042", 0.0, 3)


@pytest.fixture(scope="module")
def can_bus(tmp_path_factory, scene) -> NuScenesCanBus:
    root = tmp_path_factory.mktemp("can")
    write_can_bus(root, scene.name, scene.can_bus)
    return NuScenesCanBus(dataroot=str(root))


def test_pose_and_steering_read_back_unchanged(can_bus, scene):
    pose = can_bus.get_messages(scene.name, "pose")
    assert len(pose) == len(scene.can_bus.pose)
    for read, written in zip(pose, scene.can_bus.pose, strict=True):
        assert list(read) == sorted(written)  # nuScenes' alphabetical key order
        assert read == {key: written[key] for key in read}
    utimes = np.array([message["utime"] for message in pose])
    assert np.all(np.diff(utimes) == 20_000)  # 50 Hz
    assert can_bus.get_messages(scene.name, "steeranglefeedback") == scene.can_bus.steeranglefeedback


def test_route_and_meta_serve_the_devkit_helpers(can_bus, scene):
    route, poses = can_bus.get_pose_and_route(scene.name)
    assert route.shape[1] == 2 and len(route) >= 2
    np.testing.assert_allclose(route[[0, -1]], poses[[0, -1]])
    assert np.all(np.linalg.norm(np.diff(route, axis=0), axis=1) <= 2.0 + 1e-9)
    assert can_bus.list_misaligned_routes() == []
    meta = can_bus.get_messages(scene.name, "meta")
    assert meta["pose"]["message_count"] == len(scene.can_bus.pose)
    assert meta["pose"]["message_freq"] == pytest.approx(50.0)
    assert meta["steeranglefeedback"]["message_freq"] == pytest.approx(100.0)


def test_scene_names_the_devkit_refuses():
    for name in ("scene-0161", "scene-0176", "scene-0312"):
        with pytest.raises(ValueError, match="without CAN bus data"):
            check_can_bus_scene_name(name)
    for name in ("scene-12", "town-0001", "scene-00001"):
        with pytest.raises(ValueError, match="scene-NNNN"):
            check_can_bus_scene_name(name)
    check_can_bus_scene_name("scene-0169")  # a gap in the devkit's list
    assert can_bus_scene_names(4, first_number=160) == [
        "scene-0160",
        "scene-0169",
        "scene-0177",
        "scene-0178",
    ]


def test_malformed_messages_are_refused(tmp_path):
    pose = {"utime": 0, "pos": [0, 0, 0], "orientation": [1, 0, 0, 0], "vel": [0, 0, 0], "accel": [0, 0, 0]}
    with pytest.raises(ValueError, match="rotation_rate"):
        write_can_bus(tmp_path, "scene-0001", CanBusLog(pose=[pose], steeranglefeedback=[]))
    pose = {**pose, "rotation_rate": [0, 0]}
    with pytest.raises(ValueError, match="3 values"):
        write_can_bus(tmp_path, "scene-0001", CanBusLog(pose=[pose], steeranglefeedback=[]))
    steering = [{"utime": 10, "value": 0.0}, {"utime": 5, "value": 0.0}]
    with pytest.raises(ValueError, match="not sorted"):
        write_can_bus(tmp_path, "scene-0001", CanBusLog(pose=[], steeranglefeedback=steering))
