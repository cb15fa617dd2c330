"""Ray casting kernels against analytic answers and against a brute-force nearest-hit search."""

import numpy as np
import pytest

from bevjepa.sim.raycast import (
    HIT_BOX,
    HIT_CYLINDER,
    HIT_GROUND,
    HIT_NONE,
    box_hit_counts,
    cast_rays,
    ray_box,
    ray_cylinder,
    ray_ground,
)
from bevjepa.sim.types import RaycastScene


def _unit(*components: float) -> np.ndarray:
    vector = np.array(components, dtype=np.float64)
    return vector / np.linalg.norm(vector)


def _scene(boxes: np.ndarray, cylinders: np.ndarray | None = None) -> RaycastScene:
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 7)
    return RaycastScene(
        boxes=boxes,
        box_ids=np.arange(len(boxes), dtype=np.int32),
        box_velocities=np.zeros((len(boxes), 2)),
        box_rcs=np.zeros(len(boxes), dtype=np.float32),
        cylinders=np.zeros((0, 4)) if cylinders is None else np.asarray(cylinders, dtype=np.float64),
    )


def test_ray_ground_distance() -> None:
    assert ray_ground(np.array([0.0, 0.0, 2.0]), _unit(1, 0, -1)) == pytest.approx(2.0 * np.sqrt(2.0))
    assert ray_ground(np.array([5.0, 3.0, 1.5]), _unit(0, 0, -1)) == pytest.approx(1.5)
    assert ray_ground(np.array([0.0, 0.0, 2.0]), _unit(1, 0, 0)) == np.inf
    assert ray_ground(np.array([0.0, 0.0, 2.0]), _unit(1, 0, 0.1)) == np.inf


def test_ray_box_analytic_hits() -> None:
    origin = np.array([0.0, 0.0, 1.0])
    cube = np.array([10.0, 0.0, 1.0, 2.0, 2.0, 2.0, 0.0])
    distance, *normal = ray_box(origin, _unit(1, 0, 0), cube)
    assert distance == pytest.approx(9.0)
    np.testing.assert_allclose(normal, [-1.0, 0.0, 0.0])
    # Turned by 45 degrees the cube shows the ray an edge at sqrt(2) from its centre.
    distance, *_ = ray_box(origin, _unit(1, 0, 0), np.array([10.0, 0.0, 1.0, 2.0, 2.0, 2.0, np.pi / 4]))
    assert distance == pytest.approx(10.0 - np.sqrt(2.0))
    # Straight down onto the roof of a 2 m high box.
    distance, *normal = ray_box(np.array([10.0, 0.5, 7.0]), _unit(0, 0, -1), cube)
    assert distance == pytest.approx(5.0)
    np.testing.assert_allclose(normal, [0.0, 0.0, 1.0])
    # A long box turned by 90 degrees: its 4 m length now lies along y, so the ray meets its 1 m half-width.
    distance, *normal = ray_box(origin, _unit(1, 0, 0), np.array([10.0, 0.0, 1.0, 4.0, 2.0, 2.0, np.pi / 2]))
    assert distance == pytest.approx(9.0)
    np.testing.assert_allclose(normal, [-1.0, 0.0, 0.0], atol=1e-12)


def test_ray_box_misses() -> None:
    cube = np.array([10.0, 0.0, 1.0, 2.0, 2.0, 2.0, 0.0])
    origin = np.array([0.0, 0.0, 1.0])
    assert ray_box(origin, _unit(-1, 0, 0), cube)[0] == np.inf  # pointing away
    assert ray_box(origin, _unit(1, 0.2, 0), cube)[0] == np.inf  # passes beside it
    assert ray_box(np.array([0.0, 0.0, 2.5]), _unit(1, 0, 0), cube)[0] == np.inf  # passes over it
    assert ray_box(np.array([10.0, 0.0, 1.0]), _unit(1, 0, 0), cube)[0] == np.inf  # starts inside


def _inside_box(points: np.ndarray, box: np.ndarray, margin: float) -> np.ndarray:
    c, s = np.cos(box[6]), np.sin(box[6])
    rel = points - box[:3]
    local = np.stack([c * rel[:, 0] + s * rel[:, 1], -s * rel[:, 0] + c * rel[:, 1], rel[:, 2]], axis=1)
    return np.all(np.abs(local) <= box[3:6] / 2 + margin, axis=1)


def test_ray_box_agrees_with_dense_sampling() -> None:
    """The slab test's answer is where dense samples along the ray first enter the box."""
    rng = np.random.default_rng(0)
    step = 0.01
    samples = np.arange(0.0, 40.0, step)
    n_hits = 0
    for _ in range(300):
        box = np.concatenate(
            [
                rng.uniform(-10, 10, 2),
                rng.uniform(0.5, 3, 1),
                rng.uniform(1.0, 6.0, 3),
                rng.uniform(-np.pi, np.pi, 1),
            ]
        )
        origin = np.array([*rng.uniform(-15, 15, 2), rng.uniform(0.0, 4.0)])
        # Aim near the box so that roughly half the rays hit.
        direction = _unit(*(box[:3] + rng.normal(0, 2.5, 3) - origin))
        distance, *normal = ray_box(origin, direction, box)
        inside = _inside_box(origin + samples[:, None] * direction, box, margin=0.0)
        if _inside_box(origin[None], box, margin=0.0)[0]:
            assert distance == np.inf
            continue
        if distance == np.inf:
            assert not inside.any()
            continue
        n_hits += 1
        assert samples[inside.argmax()] == pytest.approx(distance, abs=step)
        # The normal is a unit vector pointing back against the ray, out of the box.
        assert np.linalg.norm(normal) == pytest.approx(1.0)
        assert np.dot(normal, direction) < 0.0
        hit_point = origin + distance * direction
        assert not _inside_box((hit_point + 1e-3 * np.asarray(normal))[None], box, margin=0.0)[0]
    assert n_hits > 50


def test_ray_cylinder_analytic_hits_and_misses() -> None:
    pole = np.array([5.0, 0.0, 1.0, 3.0])  # x, y, radius, height
    distance, *normal = ray_cylinder(np.array([0.0, 0.0, 1.0]), _unit(1, 0, 0), pole)
    assert distance == pytest.approx(4.0)
    np.testing.assert_allclose(normal, [-1.0, 0.0, 0.0])
    # Off-centre by half a radius: the side is met at x = 5 - cos(30 deg).
    distance, *normal = ray_cylinder(np.array([0.0, 0.5, 1.0]), _unit(1, 0, 0), pole)
    assert distance == pytest.approx(5.0 - np.cos(np.pi / 6))
    np.testing.assert_allclose(normal, [-np.cos(np.pi / 6), 0.5, 0.0])
    # Straight down onto the top cap.
    distance, *normal = ray_cylinder(np.array([5.2, 0.3, 10.0]), _unit(0, 0, -1), pole)
    assert distance == pytest.approx(7.0)
    np.testing.assert_allclose(normal, [0.0, 0.0, 1.0])
    # Sloping down over the rim onto the cap: enters the top at x = 4.5 after dropping 1 m.
    distance, *_ = ray_cylinder(np.array([3.5, 0.0, 4.0]), _unit(1, 0, -1), pole)
    assert distance == pytest.approx(np.sqrt(2.0) * 1.0)
    assert ray_cylinder(np.array([0.0, 0.0, 3.5]), _unit(1, 0, 0), pole)[0] == np.inf  # over the top
    assert ray_cylinder(np.array([0.0, 1.2, 1.0]), _unit(1, 0, 0), pole)[0] == np.inf  # beside it
    assert ray_cylinder(np.array([0.0, 0.0, 1.0]), _unit(-1, 0, 0), pole)[0] == np.inf  # pointing away
    assert ray_cylinder(np.array([5.0, 0.0, 1.0]), _unit(1, 0, 0), pole)[0] == np.inf  # starts inside


def _brute_force_nearest(scene: RaycastScene, origin: np.ndarray, direction: np.ndarray, max_range: float):
    best, kind, index = min(ray_ground(origin, direction), np.inf), HIT_GROUND, -1
    if best > max_range:
        best, kind = max_range, HIT_NONE
    for row, box in enumerate(scene.boxes):
        distance = ray_box(origin, direction, box)[0]
        if distance < best:
            best, kind, index = distance, HIT_BOX, row
    for row, cylinder in enumerate(scene.cylinders):
        distance = ray_cylinder(origin, direction, cylinder)[0]
        if distance < best:
            best, kind, index = distance, HIT_CYLINDER, row
    return (np.inf if kind == HIT_NONE else best), kind, index


def _random_scene(rng: np.random.Generator, origin: np.ndarray) -> RaycastScene:
    boxes = np.concatenate(
        [
            rng.uniform(-40, 40, (60, 2)) + origin[:2],
            rng.uniform(0.5, 4.0, (60, 1)),
            rng.uniform(0.5, 12.0, (60, 3)),
            rng.uniform(-np.pi, np.pi, (60, 1)),
        ],
        axis=1,
    )
    # Boxes straddling the azimuth seam behind the origin, and a low one under it (seen from above).
    boxes[0] = [origin[0] - 6.0, origin[1], 2.0, 3.0, 4.0, 4.0, 0.3]
    boxes[1] = [origin[0] - 15.0, origin[1] + 0.5, 5.0, 2.0, 10.0, 10.0, 0.0]
    boxes[2] = [origin[0], origin[1], 0.5, 3.0, 3.0, 1.0, 0.2]
    cylinders = np.concatenate(
        [
            rng.uniform(-30, 30, (25, 2)) + origin[:2],
            rng.uniform(0.1, 1.0, (25, 1)),
            rng.uniform(1, 8, (25, 1)),
        ],
        axis=1,
    )
    return _scene(boxes, cylinders)


@pytest.mark.parametrize("n_bins", [1, 7, 1024])
def test_cast_rays_matches_brute_force(n_bins: int) -> None:
    """The azimuth bins and early exit never change the answer, whatever the bin count."""
    rng = np.random.default_rng(1)
    origin = np.array([3.0, -2.0, 1.8])
    scene = _random_scene(rng, origin)
    directions = rng.normal(size=(1500, 3))
    directions[:, 2] = np.abs(directions[:, 2]) * np.where(rng.random(1500) < 0.7, -0.3, 0.3)
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    max_ranges = rng.uniform(5.0, 60.0, 1500)
    hits = cast_rays(scene, origin, directions, max_ranges, n_bins=n_bins)
    for r in range(len(directions)):
        distance, kind, index = _brute_force_nearest(scene, origin, directions[r], max_ranges[r])
        assert hits.kind[r] == kind
        assert hits.index[r] == index
        assert hits.distance[r] == pytest.approx(distance)
    assert {HIT_NONE, HIT_GROUND, HIT_BOX, HIT_CYLINDER} <= set(hits.kind.tolist())


def test_cast_rays_respects_max_range_and_reports_incidence() -> None:
    scene = _scene([[20.0, 0.0, 1.0, 2.0, 2.0, 2.0, 0.0]])
    origin = np.array([0.0, 0.0, 1.0])
    directions = np.stack([_unit(1, 0, 0), _unit(1, 0, 0), _unit(1, 0.02, 0)])
    hits = cast_rays(scene, origin, directions, np.array([30.0, 10.0, 30.0]))
    assert hits.kind.tolist() == [HIT_BOX, HIT_NONE, HIT_BOX]
    assert hits.distance[0] == pytest.approx(19.0)
    assert hits.distance[1] == np.inf and hits.index[1] == -1
    assert hits.cos_incidence[0] == pytest.approx(1.0)
    assert hits.cos_incidence[2] == pytest.approx(directions[2, 0])


def test_cast_rays_on_empty_scene_sees_only_ground() -> None:
    scene = _scene(np.zeros((0, 7)))
    origin = np.array([0.0, 0.0, 2.0])
    hits = cast_rays(scene, origin, np.stack([_unit(1, 0, -1), _unit(1, 0, 1)]), np.full(2, 100.0))
    assert hits.kind.tolist() == [HIT_GROUND, HIT_NONE]
    assert hits.distance[0] == pytest.approx(2.0 * np.sqrt(2.0))
    assert hits.cos_incidence[0] == pytest.approx(np.sqrt(0.5))


def test_box_hit_counts_separates_expected_from_first_hits() -> None:
    # Box 1 hides entirely behind box 0; box 2 stands in the open.
    scene = _scene(
        [
            [10.0, 0.0, 2.0, 1.0, 6.0, 4.0, 0.0],
            [20.0, 0.0, 1.0, 2.0, 2.0, 2.0, 0.0],
            [0.0, 15.0, 1.0, 2.0, 2.0, 2.0, 0.0],
        ]
    )
    azimuth = np.linspace(-np.pi, np.pi, 3600, endpoint=False)
    elevation = np.deg2rad(np.linspace(-10, 10, 21))
    az, el = np.meshgrid(azimuth, elevation)
    directions = np.stack([np.cos(el) * np.cos(az), np.cos(el) * np.sin(az), np.sin(el)], -1).reshape(-1, 3)
    unobstructed, first = box_hit_counts(scene, np.array([0.0, 0.0, 1.0]), directions, 100.0)
    assert np.all(unobstructed > 0)
    assert first[0] == unobstructed[0]
    assert first[1] == 0
    assert first[2] == unobstructed[2]
