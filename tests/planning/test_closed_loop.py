"""Closed-loop episodes: metrics that tell a stopped car from a driving one, reproducible episodes, pictures
and animations."""

import numpy as np
import pytest
from PIL import Image
from tiny_world_model import GRID, tiny_world_model
from torch_threads import one_torch_thread

from bevjepa.planning.closed_loop import EpisodeRunner, EpisodeSettings
from bevjepa.planning.energy import LatentPlanningEnergy
from bevjepa.planning.hazards import with_hazard
from bevjepa.planning.optimizers import CONTROL_BOUNDS as BOUNDS
from bevjepa.planning.optimizers import CEMSettings, CrossEntropyMethod
from bevjepa.planning.pictures import episode_animation, episode_picture
from bevjepa.planning.policies import AlwaysBrakePolicy, ConstantVelocityPolicy, LatentMPCPolicy
from bevjepa.planning.privileged import PrivilegedPolicy
from bevjepa.sim.presets import get_preset
from bevjepa.sim.town import generate_town
from datamodules.live_frames import LiveSensorFrames

SEED = 1  # a drive whose first 40 m run straight on: constant velocity reaches the goal


single_thread = pytest.fixture(autouse=True)(one_torch_thread)


@pytest.fixture(scope="module")
def town():
    return generate_town("boston-seaport", 1234, get_preset("tiny").simulator.town)


@pytest.fixture(scope="module")
def runner():
    settings = EpisodeSettings(goal_distance_m=40.0, max_duration_s=8.0)
    return EpisodeRunner(get_preset("tiny").simulator_for("boston-seaport"), settings, _live_frames)


def _live_frames(location: str) -> LiveSensorFrames:
    return LiveSensorFrames(GRID, lidar_sweeps=3, radar=True, radar_sweeps=3, location=location)


def test_always_brake_never_collides_but_fails_to_progress(runner, town) -> None:
    brake = runner.run(AlwaysBrakePolicy(), town, SEED)
    driving = runner.run(ConstantVelocityPolicy(), town, SEED)
    assert brake.collisions == 0 and not brake.success
    assert brake.route_completion < 0.15 and brake.duration_s == pytest.approx(8.0)
    assert driving.success and driving.route_completion > 0.9 and driving.collisions == 0
    assert driving.distance_m > 5 * brake.distance_m
    assert driving.duration_s < brake.duration_s


def test_a_hazard_on_the_lane_is_hit_by_constant_velocity_and_counted(runner, town) -> None:
    blocked = with_hazard(town, runner.config, SEED, "car", distance_m=25.0)
    result = runner.run(ConstantVelocityPolicy(), blocked, SEED)
    hazard_id = len(town.static.objects)
    assert result.collisions == 1 and not result.success
    assert result.collided_categories == ["vehicle.car"]
    assert result.hazards_in_path[hazard_id] == "vehicle.car" and result.hazards_hit == [hazard_id]
    privileged = PrivilegedPolicy(CrossEntropyMethod(BOUNDS, CEMSettings(samples=32, iterations=2)))
    assert runner.run(privileged, blocked, SEED).hazards_hit == []


def test_latent_mpc_episode_is_deterministic_for_a_seed(town, tmp_path) -> None:
    runner = EpisodeRunner(
        get_preset("tiny").simulator_for("boston-seaport"),
        EpisodeSettings(goal_distance_m=40.0, max_duration_s=1.5),
        _live_frames,
    )
    cem = CrossEntropyMethod(BOUNDS, CEMSettings(horizon=3, samples=8, elites=2, iterations=2))
    policy = LatentMPCPolicy(LatentPlanningEnergy(tiny_world_model(max_time_offset=3)), cem)
    first, second = runner.run(policy, town, SEED), runner.run(policy, town, SEED)
    assert len(first.plans) == 3 and first.plans[0].candidates.shape == (8, 3, 2)
    np.testing.assert_array_equal(first.path, second.path)
    for a, b in zip(first.plans, second.plans, strict=True):
        np.testing.assert_array_equal(a.candidates, b.candidates)
    assert first.summary() | {"planning_ms": 0} == second.summary() | {"planning_ms": 0}
    other = runner.run(policy, town, SEED + 1)
    assert not np.array_equal(other.path[:5], first.path[:5])
    picture = episode_picture(first, town, tmp_path / "episode.png")
    assert picture.stat().st_size > 10_000
    assert first.plans[0].ego_box.shape == (7,) and first.plans[0].agent_boxes.shape[1:] == (7,)
    animation = episode_animation(first, town, tmp_path / "episode.gif")
    with Image.open(animation) as gif:
        assert gif.n_frames == len(first.plans) + 1  # a frame per plan, then the outcome
        assert gif.info["loop"] == 0
