"""The closed-loop simulator: determinism, autopilot, safety checks, sensor degradation."""

import dataclasses

import numpy as np
import pytest

from bevjepa.sim.calibration import RADARS
from bevjepa.sim.ego import EgoSpec, propagate
from bevjepa.sim.lidar import LidarConfig
from bevjepa.sim.simulator import Simulator
from bevjepa.sim.simulator_config import SimulatorConfig
from bevjepa.sim.town import generate_town
from bevjepa.sim.types import EgoAction, EgoState

CONFIG = SimulatorConfig(
    location="boston-seaport", lidar=dataclasses.replace(LidarConfig.tiny(), azimuth_steps=180), warmup_s=1.0
)


@pytest.fixture(scope="module")
def town():
    return generate_town("boston-seaport", 21)


def test_reset_and_step_are_deterministic(town):
    runs = []
    for _ in range(2):
        simulator = Simulator(CONFIG)
        frames = [simulator.reset(seed=5, town=town)] + [simulator.step() for _ in range(10)]
        runs.append(frames)
    for a, b in zip(*runs, strict=True):
        assert a.timestamp_us == b.timestamp_us
        assert np.array_equal(a.ego.position, b.ego.position)
        assert np.array_equal(a.lidar.data, b.lidar.data)
        assert all(np.array_equal(r.data, s.data) for r, s in zip(a.radars, b.radars, strict=True))
        assert all(np.array_equal(o.box, p.box) for o, p in zip(a.objects, b.objects, strict=True))
    other = Simulator(CONFIG).reset(seed=6, town=town)
    assert not np.array_equal(other.ego.position, runs[0][0].ego.position)


def test_a_frame_holds_every_sensor_and_the_clock(town):
    simulator = Simulator(CONFIG)
    first = simulator.reset(seed=1, town=town, start_timestamp_us=1_600_000_000_000_000)
    second = simulator.step()
    assert first.timestamp_us == 1_600_000_000_000_000 and second.timestamp_us - first.timestamp_us == 50_000
    assert second.time_s == pytest.approx(0.05)
    assert second.lidar.channel == "LIDAR_TOP" and second.lidar.data.shape[1] == 5
    assert len(second.lidar.data) > 1000
    assert [r.channel for r in second.radars] == [mount.channel for mount in RADARS]
    assert all(r.data.shape[1] == 18 for r in second.radars)
    ids = {o.instance_id for o in second.objects}
    assert len(ids) == len(second.objects)
    # The ego is integrated every 10 ms: its history feeds the 100 Hz CAN bus.
    times = [t for t, _ in simulator.ego_history]
    assert np.all(np.diff(times) == 10_000) and times[-1] == second.timestamp_us


def test_autopilot_follows_its_route_safely(town):
    simulator = Simulator(CONFIG)
    simulator.reset(seed=3, town=town)
    worst_offset, progress = 0.0, []
    for _ in range(300):
        simulator.advance()
        checks = simulator.checks()
        assert not checks.collision and not checks.off_road
        worst_offset = max(worst_offset, abs(checks.lateral_offset_m))
        progress.append(checks.route_progress_m)
    assert worst_offset < 0.8
    assert np.all(np.diff(progress) >= -1e-6) and progress[-1] > 15.0
    assert 0.0 < checks.route_completion < 1.0


def test_steering_off_the_road_is_flagged(town):
    simulator = Simulator(CONFIG)
    simulator.reset(seed=3, town=town)
    for _ in range(120):
        simulator.advance(EgoAction(acceleration=1.0, yaw_rate=0.6))
        checks = simulator.checks()
        if checks.off_road or checks.collision:
            break
    assert checks.off_road or checks.collision
    assert simulator.ego.yaw_rate > 0.3, "the commanded yaw rate was applied"


def test_collisions_are_detected_with_buildings_and_objects(town):
    simulator = Simulator(CONFIG)
    simulator.reset(seed=3, town=town)
    assert not simulator.checks().collision
    spec = simulator.config.ego
    building = town.static.structure_boxes[0]
    simulator.ego = _ego_centred_at(building[:2], building[6], spec)
    checks = simulator.checks()
    assert -1 in checks.collided_with and checks.off_road
    car = next(
        o for o in simulator.objects() if o.category == "vehicle.car" and o.attribute != "vehicle.parked"
    )
    simulator.ego = _ego_centred_at(car.box[:2], car.box[6], spec)
    assert car.instance_id in simulator.checks().collided_with


def _ego_centred_at(centre: np.ndarray, yaw: float, spec: EgoSpec) -> EgoState:
    rear_axle = centre - spec.centre_offset * np.array([np.cos(yaw), np.sin(yaw)])
    return EgoState(
        position=rear_axle, yaw=float(yaw), speed=0.0, acceleration=0.0, yaw_rate=0.0, steering=0.0
    )


def test_sensor_degradation_knobs_reach_the_lidar(town):
    clean = Simulator(CONFIG).reset(seed=2, town=town)
    degraded = Simulator(CONFIG.degraded(lidar_dropout=0.5, rain_clutter_rate=0.0)).reset(seed=2, town=town)
    assert 0.4 < len(degraded.lidar.data) / len(clean.lidar.data) < 0.6
    rainy = Simulator(CONFIG.degraded(rain_clutter_rate=0.3)).reset(seed=2, town=town)
    # Raindrop echoes replace farther returns by ones within 10 m.
    rainy_near = (np.linalg.norm(rainy.lidar.data[:, :3], axis=1) < 10.0).sum()
    clean_near = (np.linalg.norm(clean.lidar.data[:, :3], axis=1) < 10.0).sum()
    assert rainy_near > clean_near + 0.1 * len(clean.lidar.data)


def test_radar_between_steps_sees_the_world_of_its_instant(town):
    simulator = Simulator(CONFIG)
    simulator.reset(seed=4, town=town)
    start = simulator.timestamp_us
    before = simulator.raycast_scene()
    simulator.advance(EgoAction(acceleration=0.5, yaw_rate=0.05))
    after = simulator.raycast_scene()
    middle = simulator.raycast_scene(start + 25_000)
    assert np.allclose(middle.boxes[:, :2], 0.5 * (before.boxes[:, :2] + after.boxes[:, :2]), atol=1e-6)
    ego_middle = simulator.ego_at(start + 25_000)
    expected = propagate(simulator._previous.ego, EgoAction(0.5, 0.05), 0.025, simulator.config.ego)
    assert np.allclose(ego_middle.position, expected.position)
    capture = simulator.capture_radar(RADARS[0], start + 25_000)
    assert capture.timestamp_us == start + 25_000 and capture.ego is not None
    with pytest.raises(ValueError, match="outside the last step"):
        simulator.raycast_scene(start + 60_000)


def test_ego_model_respects_its_limits():
    spec = EgoSpec()
    state = EgoState(np.zeros(2), 0.0, 0.0, 0.0, 0.0, 0.0)
    spun = propagate(state, EgoAction(acceleration=0.0, yaw_rate=1.0), 1.0, spec)
    assert spun.yaw == 0.0 and np.allclose(spun.position, 0.0), "no turning on the spot"
    fast = propagate(state, EgoAction(acceleration=50.0, yaw_rate=0.0), 1.0, spec)
    assert fast.speed == pytest.approx(spec.max_acceleration)
    braking = propagate(fast, EgoAction(acceleration=-50.0, yaw_rate=0.0), 2.0, spec)
    assert braking.speed == 0.0
    turning = propagate(dataclasses.replace(state, speed=5.0), EgoAction(0.0, 0.5), 0.5, spec)
    assert turning.steering == pytest.approx(np.arctan(spec.wheelbase * 0.5 / 5.0))


def test_a_preset_name_configures_the_simulator():
    assert Simulator("tiny").config.lidar == LidarConfig.tiny()
    with pytest.raises(ValueError, match="unknown preset"):
        Simulator("huge")
