"""Driving policies for the closed loop: latent MPC with the world model, and the baselines that need no
learned world (constant velocity, always brake, a policy that sees only the ego's own motion)."""

from collections.abc import Callable

import numpy as np
import torch

from bevjepa.planning.closed_loop import Observation, PlanStep
from bevjepa.planning.energy import LatentPlanningEnergy
from bevjepa.planning.goals import waypoint_goal
from bevjepa.planning.kinematics import KEYFRAME_STEP_S, LIDAR_POSE_IN_EGO, integrate_controls
from bevjepa.planning.optimizers import CrossEntropyMethod, RandomShooting, shift_plan

# Brakes as hard as the vehicle can.
FULL_BRAKE_MPS2 = -8.0


def episode_generator(seed: int, plan_index: int, device: torch.device | str = "cpu") -> torch.Generator:
    """The random source of one plan of an episode."""
    return torch.Generator(device).manual_seed(
        int(np.random.SeedSequence([seed, plan_index]).generate_state(1)[0])
    )


class LatentMPCPolicy:
    """Model-predictive control in embedding space: encode the sweeps, make the route waypoint a latent goal,
    optimise the controls against the energy, execute the first, replan (warm-started) at the next step.

    Args:
        energy: the latent planning energy (holds the world model).
        optimizer: CEM or random shooting over ``[acceleration, yaw_rate]`` sequences.
        name: the policy's name in results.
        warm_start: start each plan from the previous one shifted by a step.
    """

    needs_sensors = True
    privileged = False

    def __init__(
        self,
        energy: LatentPlanningEnergy,
        optimizer: CrossEntropyMethod | RandomShooting,
        name: str = "jepa_mpc_cem",
        warm_start: bool = True,
    ) -> None:
        self.energy = energy
        self.optimizer = optimizer
        self.name = name
        self.warm_start = warm_start
        self._seed, self._plan_index, self._previous = 0, 0, None

    def reset(self, seed: int) -> None:
        self._seed, self._plan_index, self._previous = seed, 0, None

    @torch.no_grad()
    def act(self, observation: Observation) -> PlanStep:
        world_model = self.energy.world_model
        device = world_model.device
        voxels = observation.voxels
        voxels = type(voxels)(voxels.features.to(device), voxels.coords.to(device), voxels.batch_size)
        context = world_model.context_tokens(voxels)  # (1, N, D)
        observed = world_model.target_tokens(voxels)  # (1, N, D)
        goal = waypoint_goal(
            observed,
            torch.tensor(observation.waypoint, device=device)[None],
            world_model.token_grid,
        )
        speed = torch.tensor([observation.ego.speed], device=device)
        warm = shift_plan(self._previous) if (self.warm_start and self._previous is not None) else None
        result = self.optimizer.plan(
            self.energy.bind(context, observed, speed, goal),
            1,
            episode_generator(self._seed, self._plan_index, device),
            warm_start=warm,
            device=device,
        )
        self._plan_index += 1
        self._previous = result.actions
        chosen = integrate_controls(result.actions[0].double(), speed.double()[0]).ego_poses[..., :2]
        candidates = integrate_controls(result.candidates[0].double(), speed.double()[0]).ego_poses[..., :2]
        return PlanStep(
            controls=result.actions[0].cpu().numpy(),
            trajectory=chosen.cpu().numpy(),
            candidates=candidates.cpu().numpy(),
        )


class EgoMotionPolicy:
    """Base of the policies that read only the ego's own state (no sensors, no privileged world) and keep
    nothing between plans."""

    needs_sensors = False
    privileged = False

    def reset(self, seed: int) -> None:
        """Nothing carries over between episodes."""


class ConstantVelocityPolicy(EgoMotionPolicy):
    """Keeps the current speed and yaw rate."""

    name = "constant_velocity"

    def __init__(self, horizon: int = 6) -> None:
        self.horizon = horizon

    def act(self, observation: Observation) -> PlanStep:
        controls = np.tile([0.0, observation.ego.yaw_rate], (self.horizon, 1))
        trajectory = integrate_controls(torch.tensor(controls), torch.tensor(observation.ego.speed)).ego_poses
        return PlanStep(controls=controls, trajectory=trajectory[:, :2].numpy())


class AlwaysBrakePolicy(EgoMotionPolicy):
    """Brakes to a stop and stays there (it cannot hit anything it drives into, nor get anywhere)."""

    name = "always_brake"

    def __init__(self, horizon: int = 6) -> None:
        self.horizon = horizon

    def act(self, observation: Observation) -> PlanStep:
        return PlanStep(controls=np.tile([FULL_BRAKE_MPS2, 0.0], (self.horizon, 1)))


def lidar_to_ego_points(points: np.ndarray) -> np.ndarray:
    """(..., 2) points in the LiDAR frame -> the ego frame."""
    x, y, yaw = LIDAR_POSE_IN_EGO
    cos, sin = np.cos(yaw), np.sin(yaw)
    return np.stack(
        [x + cos * points[..., 0] - sin * points[..., 1], y + sin * points[..., 0] + cos * points[..., 1]], -1
    )


def controls_tracking(waypoints: np.ndarray, speed: float, step_s: float = KEYFRAME_STEP_S) -> np.ndarray:
    """Controls that drive the ego through waypoints, one per step.

    Each step's mean speed is its chord length over ``step_s`` and its turn is twice the chord's angle to the
    heading at the step's start (a circular arc).

    Args:
        waypoints: (K, 2) ego (rear-axle) positions in the ego frame now, one per step.
        speed: speed now.
        step_s: seconds per step.

    Returns:
        (K, 2) ``[acceleration, yaw_rate]``.
    """
    controls, position, heading, velocity = [], np.zeros(2), 0.0, speed
    for point in waypoints:
        offset = point - position
        chord = float(np.linalg.norm(offset))
        angle = (
            (np.arctan2(offset[1], offset[0]) - heading + np.pi) % (2 * np.pi) - np.pi if chord > 0.1 else 0.0
        )
        end_speed = max(2 * chord / step_s - velocity, 0.0)
        controls.append([(end_speed - velocity) / step_s, 2 * angle / step_s])
        position, heading, velocity = point, heading + 2 * angle, end_speed
    return np.array(controls)


class EgoStatusPolicy(EgoMotionPolicy):
    """Drives the waypoints a model predicts from the ego status alone (no sensors): the open-loop planner
    that ego status makes look good on logs, put in the loop.

    Args:
        model: (1, 4) ``[vx, vy, yaw_rate, speed]`` in the LiDAR frame -> (1, K, 2) waypoints in the LiDAR frame.
    """

    name = "ego_status_mlp"

    def __init__(self, model: Callable[[torch.Tensor], torch.Tensor]) -> None:
        self.model = model

    @torch.no_grad()
    def act(self, observation: Observation) -> PlanStep:
        waypoints = self.model(torch.from_numpy(observation.ego_status)[None])[0].double().numpy()  # (K, 2)
        in_ego = lidar_to_ego_points(waypoints)
        return PlanStep(controls=controls_tracking(in_ego, observation.ego.speed), trajectory=in_ego)
