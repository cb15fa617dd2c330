"""Audits of the world model as a planner's model, in the simulator where the true outcome of any action can
be produced: does action conditioning move predictions the right way (a left turn predicts something closer to
the true left-turn outcome than to the right-turn one, and vice versa), and does the latent distance to a goal
rank candidates as the true distance does."""

import copy
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from scipy.stats import spearmanr

from bevjepa.planning.closed_loop import (
    EpisodeRunner,
    Observation,
    RouteTracker,
    SensorFrames,
    radar_phases,
)
from bevjepa.planning.goals import goal_distance, waypoint_goal
from bevjepa.planning.kinematics import integrate_controls, world_model_actions
from bevjepa.planning.optimizers import CONTROL_BOUNDS, ActionBounds
from bevjepa.planning.policies import episode_generator
from bevjepa.planning.world_model import LatentWorldModel
from bevjepa.sim.simulator import Simulator
from bevjepa.sim.town import Town
from bevjepa.sim.types import EgoAction


@dataclass
class AuditInstant:
    """One audited moment.

    Attributes:
        seed: the episode seed.
        left_closer_to_left, right_closer_to_right: whether each turn's prediction is closer to its own true
            outcome than to the other turn's.
        distances: (2, 2) latent distance of prediction i (left, right) to true outcome j (left, right).
        rank_correlation: Spearman's rho between latent goal distance and true goal distance over candidates.
    """

    seed: int
    left_closer_to_left: bool
    right_closer_to_right: bool
    distances: np.ndarray
    rank_correlation: float


def _drive(
    runner: EpisodeRunner,
    simulator: Simulator,
    frames: SensorFrames,
    actions: list[EgoAction | None],
    start_us: int,
    phases: dict[str, int],
) -> None:
    """Drive one plan's worth of steps per action (None: the autopilot), capturing what the data path fuses."""
    for action in actions:
        for step in range(runner.settings.replan_steps):
            before = simulator.timestamp_us
            simulator.advance(action)
            runner.capture_sweeps(simulator, frames, step, before, start_us, phases)


def audit_instant(
    world_model: LatentWorldModel,
    runner: EpisodeRunner,
    sensor_frames: Callable[[str], SensorFrames],
    town: Town,
    seed: int,
    warmup_plans: int = 4,
    yaw_rate: float = 0.25,
    candidates: int = 64,
    bounds: ActionBounds = CONTROL_BOUNDS,
) -> AuditInstant:
    """Audit one moment: after ``warmup_plans`` steps of the autopilot in the episode of ``seed``.

    Args:
        world_model: the world model.
        runner: gives the simulator settings, the clock and the sensor capture of the closed loop.
        sensor_frames: makes the data path for a town's location.
        town: the town.
        seed: the episode seed.
        warmup_plans: keyframe steps the autopilot drives first.
        yaw_rate: rad/s of the left (+) and right (-) turns, at constant speed for the horizon.
        candidates: random control sequences for the rank correlation.
        bounds: their bounds.

    Returns:
        The audit of that moment.
    """
    simulator = Simulator(runner.config)
    simulator.reset_world(seed, town)
    route = RouteTracker(simulator)
    phases, start_us = radar_phases(seed), simulator.timestamp_us
    horizon = world_model.max_steps
    device = world_model.device
    with sensor_frames(town.location) as frames:
        frames.add(simulator.capture_lidar())
        _drive(runner, simulator, frames, [None] * warmup_plans, start_us, phases)
        observation: Observation = runner.observe(
            simulator, route, simulator.checks().route_progress_m, frames
        )
    voxels = observation.voxels
    voxels = type(voxels)(voxels.features.to(device), voxels.coords.to(device), voxels.batch_size)
    context = world_model.context_tokens(voxels)
    speed = torch.tensor([observation.ego.speed], dtype=torch.float64, device=device)

    turns = torch.tensor([[[0.0, yaw_rate]] * horizon, [[0.0, -yaw_rate]] * horizon], dtype=torch.float64)
    actions, poses, _ = world_model_actions(integrate_controls(turns[None].to(device), speed[:, None]))
    predicted = world_model.rollout(context, actions.float(), poses.float())[0, :, -1]  # (2, N, D)
    outcomes = []
    for sign in (1.0, -1.0):
        branch = copy.deepcopy(simulator)
        with sensor_frames(town.location) as frames:
            _drive(runner, branch, frames, [EgoAction(0.0, sign * yaw_rate)] * horizon, start_us, phases)
            outcome_voxels = frames.voxels()
        outcome_voxels = type(outcome_voxels)(
            outcome_voxels.features.to(device), outcome_voxels.coords.to(device), 1
        )
        outcomes.append(world_model.target_tokens(outcome_voxels)[0])
    outcome = torch.stack(outcomes)  # (2, N, D)
    distances = (predicted[:, None] - outcome[None]).pow(2).mean(dim=(-1, -2)).cpu().numpy()  # (2, 2)

    low, high = bounds.tensors(device)
    generator = episode_generator(seed, 0, device)
    random_controls = low + (high - low) * torch.rand(
        (1, candidates, horizon, len(low)), generator=generator, device=device
    )
    rollout = integrate_controls(random_controls.double(), speed[:, None])
    actions, poses, _ = world_model_actions(rollout)
    waypoint = torch.tensor(observation.waypoint, device=device)[None]
    goal = waypoint_goal(world_model.target_tokens(voxels), waypoint, world_model.token_grid)
    latent = goal_distance(world_model.rollout(context, actions.float(), poses.float())[:, :, -1], goal)[0]
    true = torch.linalg.vector_norm(rollout.ego_poses[0, :, -1, :2] - waypoint[0, :2], dim=-1)
    rho = spearmanr(latent.cpu().numpy(), true.cpu().numpy()).statistic
    return AuditInstant(
        seed=seed,
        left_closer_to_left=bool(distances[0, 0] < distances[0, 1]),
        right_closer_to_right=bool(distances[1, 1] < distances[1, 0]),
        distances=distances,
        rank_correlation=float(rho),
    )


def summarise_audits(instants: list[AuditInstant]) -> dict:
    """Shares and means over audited moments, as plain JSON values."""
    if not instants:
        return {}
    correct = [i.left_closer_to_left for i in instants] + [i.right_closer_to_right for i in instants]
    rhos = np.array([i.rank_correlation for i in instants])
    margins = [i.distances[0, 1] - i.distances[0, 0] for i in instants]
    margins += [i.distances[1, 0] - i.distances[1, 1] for i in instants]
    return {
        "instants": len(instants),
        "turn_prediction_closer_to_own_outcome": float(np.mean(correct)),
        "turn_prediction_margin_mean": float(np.mean(margins)),
        "latent_vs_true_goal_distance_spearman_mean": float(np.nanmean(rhos)),
        "latent_vs_true_goal_distance_spearman_median": float(np.nanmedian(rhos)),
        "latent_vs_true_goal_distance_spearman_positive_share": float(np.mean(rhos > 0)),
        "per_instant": [
            {
                "seed": i.seed,
                "distances_pred_left_right_x_true_left_right": np.round(i.distances, 5).tolist(),
                "spearman": round(i.rank_correlation, 4),
            }
            for i in instants
        ],
    }
