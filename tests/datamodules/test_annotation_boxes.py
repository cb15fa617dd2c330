"""Annotation boxes in a LiDAR frame: equal to the devkit's own boxes, now and at future keyframes."""

import numpy as np
import pytest
from nuscenes.nuscenes import NuScenes
from nuscenes.utils.data_classes import Box, LidarPointCloud
from nuscenes.utils.geometry_utils import transform_matrix
from pyquaternion import Quaternion

from bevjepa.geometry.boxes import points_in_boxes
from datamodules.labels import (
    AnnotationBoxes,
    future_agent_boxes,
    global_boxes_to_lidar,
    sample_boxes_lidar,
    track_instances,
)


@pytest.fixture(scope="module")
def nusc(synthetic_dataroot) -> NuScenes:
    dataroot, version = synthetic_dataroot
    return NuScenes(version=version, dataroot=str(dataroot), verbose=False)


def _lidar_to_global(nusc: NuScenes, sample_token: str) -> np.ndarray:
    sample_data = nusc.get("sample_data", nusc.get("sample", sample_token)["data"]["LIDAR_TOP"])
    calibration = nusc.get("calibrated_sensor", sample_data["calibrated_sensor_token"])
    pose = nusc.get("ego_pose", sample_data["ego_pose_token"])
    return transform_matrix(pose["translation"], Quaternion(pose["rotation"])) @ transform_matrix(
        calibration["translation"], Quaternion(calibration["rotation"])
    )


def _devkit_boxes_in(nusc: NuScenes, sample_token: str, lidar_to_global: np.ndarray) -> list[Box]:
    """The devkit's boxes of a keyframe moved into a LiDAR frame with ``Box.translate`` / ``Box.rotate``."""
    boxes = []
    for token in nusc.get("sample", sample_token)["anns"]:
        box = nusc.get_box(token)
        box.velocity = nusc.box_velocity(token)
        box.translate(-lidar_to_global[:3, 3])
        box.rotate(Quaternion(matrix=lidar_to_global[:3, :3]).inverse)
        boxes.append(box)
    return boxes


def _assert_match_devkit(ours: AnnotationBoxes, devkit: list[Box]) -> None:
    assert len(ours.boxes) == len(devkit)
    for box, expected in zip(ours.boxes, devkit, strict=True):
        np.testing.assert_allclose(box[:3], expected.center, atol=1e-9)
        np.testing.assert_allclose(box[3:6], expected.wlh[[1, 0, 2]], atol=1e-12)
        assert np.cos(box[6] - expected.orientation.yaw_pitch_roll[0]) == pytest.approx(1.0, abs=1e-12)
    np.testing.assert_allclose(ours.velocities, np.array([b.velocity[:2] for b in devkit]), atol=1e-9)
    assert ours.categories == [b.name for b in devkit]


def test_keyframe_boxes_equal_the_devkits_sensor_frame_boxes(nusc):
    for sample in nusc.sample:
        lidar_token = sample["data"]["LIDAR_TOP"]
        ours = sample_boxes_lidar(nusc, sample["token"], _lidar_to_global(nusc, sample["token"]))
        _, devkit_boxes, _ = nusc.get_sample_data(lidar_token)
        assert len(ours.boxes) == len(devkit_boxes) > 0
        for box, expected in zip(ours.boxes, devkit_boxes, strict=True):
            np.testing.assert_allclose(box[:3], expected.center, atol=1e-9)
            np.testing.assert_allclose(box[3:6], expected.wlh[[1, 0, 2]], atol=1e-12)
            assert np.cos(box[6] - expected.orientation.yaw_pitch_roll[0]) == pytest.approx(1.0, abs=1e-12)
        assert ours.instance_tokens == [
            nusc.get("sample_annotation", t)["instance_token"] for t in sample["anns"]
        ]


def test_boxes_hold_the_annotated_point_counts(nusc):
    """Counting the keyframe's LiDAR points inside our boxes gives nuScenes' own ``num_lidar_pts``."""
    for sample in nusc.sample:
        ours = sample_boxes_lidar(nusc, sample["token"], _lidar_to_global(nusc, sample["token"]))
        cloud = LidarPointCloud.from_file(nusc.get_sample_data_path(sample["data"]["LIDAR_TOP"]))
        counts = points_in_boxes(cloud.points[:3].T.astype(np.float64), ours.boxes).sum(axis=1)
        expected = [nusc.get("sample_annotation", t)["num_lidar_pts"] for t in sample["anns"]]
        np.testing.assert_array_equal(counts, expected)


def test_future_boxes_equal_the_devkits_in_the_current_frame(nusc):
    for scene in nusc.scene:
        current = nusc.get("sample", scene["first_sample_token"])
        future_tokens = []
        while (
            len(future_tokens) < 6 and nusc.get("sample", (future_tokens or [current["token"]])[-1])["next"]
        ):
            future_tokens.append(nusc.get("sample", (future_tokens or [current["token"]])[-1])["next"])
        reference = _lidar_to_global(nusc, current["token"])
        futures = future_agent_boxes(nusc, future_tokens, reference)
        assert len(futures) == len(future_tokens) >= 3
        for token, future in zip(future_tokens, futures, strict=True):
            _assert_match_devkit(future, _devkit_boxes_in(nusc, token, reference))

        now = sample_boxes_lidar(nusc, current["token"], reference)
        boxes, present = track_instances(now, futures)
        assert boxes.shape == (len(futures), len(now.boxes), 7) and present.shape == boxes.shape[:2]
        for step, future in enumerate(futures):
            for column, token in enumerate(now.instance_tokens):
                assert present[step, column] == (token in future.instance_tokens)
                if present[step, column]:
                    np.testing.assert_array_equal(
                        boxes[step, column], future.boxes[future.instance_tokens.index(token)]
                    )
                else:
                    assert not boxes[step, column].any()


def test_min_points_drops_empty_annotations(nusc):
    sample = nusc.sample[0]
    reference = _lidar_to_global(nusc, sample["token"])
    everything = sample_boxes_lidar(nusc, sample["token"], reference)
    kept = sample_boxes_lidar(nusc, sample["token"], reference, min_points=1)
    annotations = [nusc.get("sample_annotation", t) for t in sample["anns"]]
    assert len(kept.boxes) == sum(a["num_lidar_pts"] + a["num_radar_pts"] >= 1 for a in annotations)
    assert len(kept.boxes) <= len(everything.boxes)
    nothing = sample_boxes_lidar(nusc, sample["token"], reference, min_points=10**9)
    assert nothing.boxes.shape == (0, 7) and nothing.velocities.shape == (0, 2)


def test_global_round_trip_of_the_real_frame_boxes(real_frame):
    """The real frame's LiDAR boxes, sent to the global frame by the devkit and back by us, are unchanged
    (its LiDAR is tilted by about a degree, so this checks the yaw projection too)."""
    lidar_to_global = real_frame.ego_to_global @ real_frame.lidar_to_ego
    translations, sizes, rotations = [], [], []
    for cx, cy, cz, length, width, height, yaw in real_frame.boxes:
        box = Box([cx, cy, cz], [width, length, height], Quaternion(axis=[0.0, 0.0, 1.0], angle=yaw))
        box.rotate(Quaternion(matrix=lidar_to_global[:3, :3], atol=1e-6))
        box.translate(lidar_to_global[:3, 3])
        translations.append(box.center)
        sizes.append(box.wlh)
        rotations.append(box.orientation.elements)
    boxes = global_boxes_to_lidar(
        np.array(translations), np.array(sizes), np.array(rotations), lidar_to_global
    )
    np.testing.assert_allclose(boxes[:, :6], real_frame.boxes[:, :6], atol=1e-6)
    np.testing.assert_allclose(np.cos(boxes[:, 6] - real_frame.boxes[:, 6]), 1.0, atol=1e-10)
