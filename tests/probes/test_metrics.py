"""Probe and planning metrics against values computed by hand."""

import math

import numpy as np
import pytest
import torch
from torchmetrics.classification import MulticlassJaccardIndex, MultilabelJaccardIndex

from bevjepa.metrics import (
    EGO_LENGTH_M,
    EGO_WIDTH_M,
    NUSCENES_LIDAR_EGO_ORIGIN_XY,
    PlanningMetrics,
    planning_collisions,
    planning_l2,
    rectangles_overlap,
    trajectory_headings,
)

IGNORE = 255
# Ego driving along +x from the origin: the frame of the hand-built scenes below.
ALONG_X = {"start_xy": (0.0, 0.0), "start_yaw": 0.0}


def _box(cx: float, cy: float, length: float, width: float, yaw: float = 0.0) -> list[float]:
    return [cx, cy, 0.8, length, width, 1.6, yaw]


def _no_boxes(batch: int, steps: int) -> list[list[torch.Tensor]]:
    return [[torch.zeros(0, 7) for _ in range(steps)] for _ in range(batch)]


def test_occupancy_iou_ignores_unobserved_cells() -> None:
    # fmt: off
    target = torch.tensor([[[0, 1, 1, 2],
                            [0, 3, 255, 255],
                            [0, 0, 2, 2]]])
    pred = torch.tensor([[[0, 1, 0, 2],
                          [1, 3, 2, 3],
                          [0, 0, 2, 0]]])
    # fmt: on
    # Observed cells only: class 0: pred {00,20,21,02,23}, target {00,10,20,21} -> 3 / 6.
    # class 1: pred {01,10}, target {01,02} -> 1 / 3.  class 2: pred {03,22}, target {03,22,23} -> 2 / 3.
    # class 3: pred {11}, target {11} -> 1 / 1. The predictions 2 and 3 on the two ignored cells count nowhere.
    iou = MulticlassJaccardIndex(num_classes=4, ignore_index=IGNORE, average="none")(pred, target)
    assert torch.allclose(iou, torch.tensor([3 / 6, 1 / 3, 2 / 3, 1.0]))


def test_occupancy_iou_of_a_class_absent_from_target_and_prediction() -> None:
    target = torch.tensor([[[0, 1], [255, 1]]])
    pred = torch.tensor([[[0, 1], [3, 0]]])  # class 3 only on the ignored cell
    per_class = MulticlassJaccardIndex(num_classes=4, ignore_index=IGNORE, average="none")
    # A class seen nowhere scores zero_division (0 by default): use NaN and a NaN-aware mean for mIoU.
    assert torch.allclose(per_class(pred, target), torch.tensor([1 / 2, 1 / 2, 0.0, 0.0]))
    absent_is_nan = MulticlassJaccardIndex(
        num_classes=4, ignore_index=IGNORE, average="none", zero_division=float("nan")
    )(pred, target)
    assert torch.isnan(absent_is_nan[2:]).all() and absent_is_nan[:2].nanmean() == pytest.approx(0.5)


def test_map_iou_per_layer() -> None:
    target = torch.zeros(1, 6, 2, 2, dtype=torch.long)
    target[0, 0] = torch.tensor([[1, 1], [1, 0]])  # drivable_area
    target[0, 5] = torch.tensor([[0, 1], [0, 0]])  # divider
    logits = torch.full((1, 6, 2, 2), -3.0)
    logits[0, 0] = torch.tensor([[2.0, -1.0], [1.0, 1.0]])  # hits 00 and 10, misses 01, adds 11
    logits[0, 5] = torch.tensor([[0.0, 4.0], [0.0, 0.0]])  # sigmoid(0) = 0.5 is not above the threshold
    iou = MultilabelJaccardIndex(num_labels=6, average="none")(logits, target)
    expected = torch.tensor([2 / 4, 0.0, 0.0, 0.0, 0.0, 1.0])
    assert torch.allclose(iou, expected)


def _trajectories_with_errors() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Two samples; sample 0 errs 0.1 k m at step k, sample 1 errs 1 m everywhere but ends after step 4."""
    gt = torch.cumsum(torch.tensor([[0.0, 2.0]]).repeat(2, 6, 1), dim=1)  # (2, 6, 2) straight along +y
    pred = gt.clone()
    steps = torch.arange(1, 7, dtype=torch.float32)
    # Error vectors (0.06 k, 0.08 k) have length 0.1 k; sample 1 is off by (0.6, 0.8) -> 1 m.
    pred[0] += torch.stack([0.06 * steps, -0.08 * steps], dim=-1)
    pred[1] += torch.tensor([0.6, 0.8])
    valid = torch.ones(2, 6, dtype=torch.bool)
    valid[1, 4:] = False
    pred[1, 4:] = 100.0  # past the scene end: must not count
    return pred, gt, valid


def test_planning_l2_both_conventions() -> None:
    pred, gt, valid = _trajectories_with_errors()
    l2 = planning_l2(pred, gt, valid)
    # Per-step means over valid samples: steps 1-4 (0.1k + 1) / 2, steps 5-6 sample 0 only: 0.5, 0.6.
    per_step = [0.55, 0.6, 0.65, 0.7, 0.5, 0.6]
    assert l2["l2_at_1s"].item() == pytest.approx(per_step[1])
    assert l2["l2_at_2s"].item() == pytest.approx(per_step[3])
    assert l2["l2_at_3s"].item() == pytest.approx(per_step[5])
    assert l2["l2_avg_1s"].item() == pytest.approx((0.55 + 0.6) / 2)
    assert l2["l2_avg_2s"].item() == pytest.approx((0.55 + 0.6 + 0.65 + 0.7) / 4)
    assert l2["l2_avg_3s"].item() == pytest.approx(sum(per_step) / 6)


def test_planning_metrics_accumulate_like_one_batch() -> None:
    pred, gt, valid = _trajectories_with_errors()
    metric = PlanningMetrics(num_steps=6)
    metric.update(pred[:1], gt[:1], valid[:1], _no_boxes(1, 6))
    metric.update(pred[1:], gt[1:], valid[1:], _no_boxes(1, 6))
    result = metric.compute()
    for name, value in planning_l2(pred, gt, valid).items():
        assert result[name].item() == pytest.approx(value.item())
    assert all(result[f"collision_{kind}_{h}"] == 0 for kind in ("at", "avg") for h in ("1s", "2s", "3s"))


def test_collisions_in_both_conventions() -> None:
    # Ego along +x at 2 m per step; its box centre is 0.5 m ahead of each waypoint.
    waypoints = torch.stack([torch.arange(1, 7) * 2.0, torch.zeros(6)], dim=-1)  # (6, 2)
    pred = waypoints.unsqueeze(0).repeat(4, 1, 1)  # (4, 6, 2)
    valid = torch.ones(4, 6, dtype=torch.bool)
    boxes = _no_boxes(4, 6)
    # Sample 0: an agent on the path at step 3 only (it is ahead of the ego at every other step's time).
    boxes[0][2] = torch.tensor([_box(6.5 + 3.0, 0.0, 4.0, 1.8)])  # ego front at 8.542, agent rear at 7.5
    for step in (0, 1, 3, 4, 5):
        boxes[0][step] = torch.tensor([_box(40.0, 0.0, 4.0, 1.8)])
    # Sample 1: an agent beside the ego at steps 5 and 6, 0.05 m clear of its side.
    beside = EGO_WIDTH_M / 2 + 0.9 + 0.05
    boxes[1][4] = torch.tensor([_box(10.5, beside, 4.0, 1.8)])
    boxes[1][5] = torch.tensor([_box(12.5, -beside, 4.0, 1.8)])
    # Sample 2: collides at steps 4 and 6, but step 6 is past the end of its scene.
    boxes[2][3] = torch.tensor([_box(8.5, 1.0, 4.0, 1.8)])
    boxes[2][5] = torch.tensor([_box(12.5, 0.0, 4.0, 1.8)])
    valid[2, 5] = False
    # Sample 3: collides at step 1 with one of several agents.
    boxes[3][0] = torch.tensor([_box(30.0, 5.0, 4.0, 1.8), _box(2.5, -1.5, 1.0, 1.5), _box(-9.0, 0.0, 4, 2)])
    collided = planning_collisions(pred, boxes, valid, **ALONG_X)
    expected = torch.zeros(4, 6, dtype=torch.bool)
    expected[0, 2] = expected[2, 3] = expected[3, 0] = True
    assert torch.equal(collided, expected)

    metric = PlanningMetrics(num_steps=6, **ALONG_X)
    metric.update(pred, pred, valid, boxes)
    result = metric.compute()
    # Per-step rates (%): step 1 sample 3, step 3 sample 0, step 4 sample 2 of 4; step 6 has 3 valid samples.
    per_step = [25.0, 0.0, 25.0, 25.0, 0.0, 0.0]
    assert result["collision_at_1s"].item() == per_step[1]
    assert result["collision_at_2s"].item() == per_step[3]
    assert result["collision_at_3s"].item() == per_step[5]
    assert result["collision_avg_1s"].item() == pytest.approx(25.0 / 2)
    assert result["collision_avg_2s"].item() == pytest.approx(75.0 / 4)
    assert result["collision_avg_3s"].item() == pytest.approx(75.0 / 6)


def test_collision_rates_of_planning_metrics() -> None:
    # The same kind of scene in the nuScenes LiDAR frame (the metric's default): ego origin at (0, -0.94),
    # heading +y. Two samples, an agent on the path at step 3 in sample 0 and at step 6 in sample 1.
    x0, y0 = NUSCENES_LIDAR_EGO_ORIGIN_XY
    waypoints = torch.stack([torch.full((6,), x0), y0 + torch.arange(1, 7) * 2.0], dim=-1)  # (6, 2)
    pred = waypoints.unsqueeze(0).repeat(2, 1, 1)
    valid = torch.ones(2, 6, dtype=torch.bool)
    boxes = _no_boxes(2, 6)
    boxes[0][2] = torch.tensor([_box(x0, y0 + 6.5 + 3.0, 4.0, 1.8, math.pi / 2)])
    boxes[1][5] = torch.tensor([_box(x0 + 1.0, y0 + 12.5, 1.0, 1.0)])
    metric = PlanningMetrics(num_steps=6)
    metric.update(pred, pred, valid, boxes)
    result = metric.compute()
    # Per-step rates (%): [0, 0, 50, 0, 0, 50].
    assert result["collision_at_1s"].item() == 0.0
    assert result["collision_at_2s"].item() == 0.0
    assert result["collision_at_3s"].item() == pytest.approx(50.0)
    assert result["collision_avg_1s"].item() == 0.0
    assert result["collision_avg_2s"].item() == pytest.approx(50.0 / 4)
    assert result["collision_avg_3s"].item() == pytest.approx(100.0 / 6)
    assert result["l2_avg_3s"].item() == 0.0


def test_stationary_ego_has_no_false_collisions() -> None:
    # The ego stands still at the origin, heading +x: its box spans x in [-1.542, 2.542], y in [-0.925, 0.925].
    pred = torch.zeros(1, 6, 2)
    valid = torch.ones(1, 6, dtype=torch.bool)
    boxes = _no_boxes(1, 6)
    clear = 0.02
    # A car passes on the left, a turning pedestrian crosses ahead, a car follows behind: all 2 cm clear.
    for step in range(6):
        x = -12.0 + 4.0 * step
        boxes[0][step] = torch.tensor(
            [
                _box(x, EGO_WIDTH_M / 2 + 0.9 + clear, 4.2, 1.8),
                _box(2.542 + 0.3 * math.sqrt(2) + clear, -3.0 + step, 0.6, 0.6, yaw=step * 0.3),
                _box(-1.542 - 2.2 - clear, 0.0, 4.4, 1.9),
            ]
        )
    assert not planning_collisions(pred, boxes, valid, **ALONG_X).any()
    # Jitter of a few centimetres does not turn the ego: it keeps its heading and its clearance.
    jitter = torch.tensor([[0.01, 0.01], [-0.01, 0.02], [0.0, -0.01], [0.01, 0.0], [0.0, 0.0], [-0.01, 0.0]])
    assert not planning_collisions(jitter.unsqueeze(0) * 0.5, boxes, valid, **ALONG_X).any()


def test_agent_on_the_ego_path_collides() -> None:
    pred = torch.stack([torch.arange(1, 7) * 3.0, torch.zeros(6)], dim=-1).unsqueeze(0)  # (1, 6, 2)
    valid = torch.ones(1, 6, dtype=torch.bool)
    parked = torch.tensor([_box(15.0, 0.0, 4.5, 1.9)])  # a parked car straight ahead, on the path
    boxes = [[parked for _ in range(6)]]
    collided = planning_collisions(pred, boxes, valid, **ALONG_X)
    # Ego box centres at 3.5, 6.5, ... 18.5 with half-length 2.042; the car spans x in [12.75, 17.25].
    assert collided[0].tolist() == [False, False, False, True, True, True]


def test_ego_heading_follows_the_path() -> None:
    # Driving along +y from the LiDAR frame's ego origin; then a stop; then a turn to -x.
    x0, y0 = NUSCENES_LIDAR_EGO_ORIGIN_XY
    pred = torch.tensor(
        [[[x0, y0 + 2], [x0, y0 + 4], [x0 + 0.05, y0 + 4], [x0 - 2, y0 + 4], [x0 - 4, y0 + 4]]]
    )
    headings = trajectory_headings(pred)
    expected = torch.tensor([[math.pi / 2, math.pi / 2, math.pi / 2, math.pi, math.pi]])
    assert torch.allclose(headings, expected)
    # At step 4 the ego heads to -x: an agent 3 m ahead of that waypoint in -x collides, one at +y does not.
    boxes = _no_boxes(1, 5)
    boxes[0][3] = torch.tensor([_box(x0 - 2 - 2.0, y0 + 4, 1.0, 1.0), _box(x0 - 2, y0 + 4 + 2.0, 1.0, 1.0)])
    collided = planning_collisions(pred, boxes, torch.ones(1, 5, dtype=torch.bool))
    assert collided[0].tolist() == [False, False, False, True, False]
    overlaps = rectangles_overlap(
        torch.tensor([x0 - 2 - 0.5, y0 + 4, EGO_LENGTH_M, EGO_WIDTH_M, math.pi]),
        torch.tensor([[x0 - 2 - 2.0, y0 + 4, 1.0, 1.0, 0.0], [x0 - 2, y0 + 4 + 2.0, 1.0, 1.0, 0.0]]),
    )
    assert overlaps.tolist() == [True, False]


def test_rotated_boxes_overlap_only_when_the_rotation_says_so() -> None:
    ego = torch.tensor([0.0, 0.0, 4.0, 2.0, 0.0])  # x in [-2, 2], y in [-1, 1]
    # A 2 x 2 square turned 45 deg (|dx| + |dy| <= sqrt 2 around its centre) at (3.3, 2.3): its bounding box
    # covers the ego's corner (2, 1), but the corner lies 2.6 / sqrt 2 = 1.84 m from its centre along the
    # diagonal, its face only 1 m: no overlap.
    diamond_off_corner = torch.tensor([3.3, 2.3, 2.0, 2.0, math.pi / 4])
    # The square unrotated at (3.3, 0) is 0.3 m clear of the ego's front; turned 45 deg its tip reaches
    # x = 3.3 - sqrt 2 = 1.886 < 2.
    square_ahead = torch.tensor([3.3, 0.0, 2.0, 2.0, 0.0])
    diamond_ahead = torch.tensor([3.3, 0.0, 2.0, 2.0, math.pi / 4])
    # A 6 x 0.4 bar centred at (4, 2.5): flat it passes above the ego (y >= 2.3); turned 45 deg its end
    # (4 - 3 / sqrt 2, 2.5 - 3 / sqrt 2) = (1.88, 0.38) lies inside the ego.
    bar_flat = torch.tensor([4.0, 2.5, 6.0, 0.4, 0.0])
    bar_turned = torch.tensor([4.0, 2.5, 6.0, 0.4, math.pi / 4])
    others = torch.stack([diamond_off_corner, square_ahead, diamond_ahead, bar_flat, bar_turned])  # (5, 5)
    assert rectangles_overlap(ego, others).tolist() == [False, False, True, False, True]
    assert rectangles_overlap(others, ego).tolist() == [False, False, True, False, True]
    # The ego itself turned 45 deg reaches a unit square at (1.6, 1.6) that its unturned self misses (y >= 1.1):
    # the square's corner (1.1, 1.1) is 1.56 m ahead of the turned ego's centre, on its axis.
    square = torch.tensor([1.6, 1.6, 1.0, 1.0, 0.0])
    assert not rectangles_overlap(ego, square)
    assert rectangles_overlap(torch.tensor([0.0, 0.0, 4.0, 2.0, math.pi / 4]), square)


def test_collision_reads_the_box_columns_of_the_dataset(synthetic_dataroot) -> None:
    """``sample_boxes_lidar`` boxes are ``[cx, cy, cz, dx=length, dy=width, dz, yaw]``, as the collision reads."""
    from nuscenes.nuscenes import NuScenes
    from nuscenes.utils.geometry_utils import transform_matrix
    from pyquaternion import Quaternion

    from datamodules.labels.annotation_boxes import sample_boxes_lidar

    dataroot, version = synthetic_dataroot
    nusc = NuScenes(version=version, dataroot=str(dataroot), verbose=False)
    sample = next(s for s in nusc.sample if len(s["anns"]) >= 3)
    lidar = nusc.get("sample_data", sample["data"]["LIDAR_TOP"])
    calibration = nusc.get("calibrated_sensor", lidar["calibrated_sensor_token"])
    pose = nusc.get("ego_pose", lidar["ego_pose_token"])
    lidar_to_global = transform_matrix(pose["translation"], Quaternion(pose["rotation"])) @ transform_matrix(
        calibration["translation"], Quaternion(calibration["rotation"])
    )
    # The frame convention the metric defaults to: the ego origin and heading in the LiDAR frame.
    ego_origin_in_lidar = np.linalg.inv(
        transform_matrix(calibration["translation"], Quaternion(calibration["rotation"]))
    )
    assert np.allclose(ego_origin_in_lidar[:2, 3], NUSCENES_LIDAR_EGO_ORIGIN_XY, atol=1e-3)
    assert np.allclose(ego_origin_in_lidar[:2, 0], [0.0, 1.0], atol=1e-3)  # ego +x (forward) is LiDAR +y

    annotations = sample_boxes_lidar(nusc, sample["token"], lidar_to_global)
    boxes = torch.from_numpy(annotations.boxes.astype(np.float32))  # (M, 7)
    sizes = np.array([nusc.get("sample_annotation", t)["size"] for t in sample["anns"]])  # (M, 3) w, l, h
    assert np.allclose(annotations.boxes[:, 3:6], sizes[:, [1, 0, 2]], atol=1e-6)
    # Probe points just inside and just outside each box along its length and its width axis.
    yaw = boxes[:, 6]
    along = torch.stack([torch.cos(yaw), torch.sin(yaw)], dim=-1)  # (M, 2)
    across = torch.stack([-torch.sin(yaw), torch.cos(yaw)], dim=-1)
    probes = torch.stack(
        [
            boxes[:, :2] + 0.45 * boxes[:, 3:4] * along,
            boxes[:, :2] + 0.55 * boxes[:, 3:4] * along,
            boxes[:, :2] + 0.45 * boxes[:, 4:5] * across,
            boxes[:, :2] + 0.55 * boxes[:, 4:5] * across,
        ],
        dim=1,
    )  # (M, 4, 2)
    M = len(boxes)
    tiny = torch.cat([probes, torch.full((M, 4, 2), 1e-3), torch.zeros(M, 4, 1)], dim=-1)  # (M, 4, 5)
    hits = rectangles_overlap(boxes[:, None, [0, 1, 3, 4, 6]], tiny)
    assert hits.tolist() == [[True, False, True, False]] * M
    # Through planning_collisions: one sample whose 4 waypoints are the probe points of the first box.
    waypoints = probes[:1]  # (1, 4, 2)
    collided = planning_collisions(
        waypoints, [[boxes[:1]] * 4], torch.ones(1, 4, dtype=torch.bool), 1e-3, 1e-3, ego_centre_ahead=0.0
    )
    assert collided[0].tolist() == [True, False, True, False]


def test_horizons_without_valid_samples_are_nan_and_mismatched_boxes_are_refused() -> None:
    pred = torch.zeros(2, 6, 2)
    valid = torch.ones(2, 6, dtype=torch.bool)
    valid[:, 5] = False  # both scenes end before 3 s
    l2 = planning_l2(pred, pred + torch.tensor([0.3, 0.4]), valid)
    assert l2["l2_at_2s"].item() == pytest.approx(0.5)
    assert math.isnan(l2["l2_at_3s"].item()) and math.isnan(l2["l2_avg_3s"].item())
    with pytest.raises(ValueError, match="future_boxes"):
        planning_collisions(pred, _no_boxes(2, 5), valid)
