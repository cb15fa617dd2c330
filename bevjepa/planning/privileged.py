"""The privileged planner: the same optimiser and kinematics as latent MPC, but an energy computed from the
simulator's true state (object boxes moving at their current velocities, the true drivable area): the upper
bound of what a planner with a perfect cost map could do."""

from dataclasses import dataclass

import numpy as np
import torch

from bevjepa.planning.closed_loop import Observation, PlanStep, to_global_frame
from bevjepa.planning.energy import EGO_CENTRE_AHEAD_M, EGO_HALF_LENGTH_M
from bevjepa.planning.kinematics import KEYFRAME_STEP_S, integrate_controls
from bevjepa.planning.optimizers import CrossEntropyMethod, shift_plan
from bevjepa.planning.policies import episode_generator

EGO_HALF_WIDTH_M = 0.865


@dataclass(frozen=True)
class PrivilegedWeights:
    """Weights of the privileged energy.

    Attributes:
        goal: distance (m) of the final position to the waypoint.
        collision: penetration (m) of the ego's circles into objects' circles, summed over time.
        off_road: footprint points off the drivable area, summed over time.
        overspeed: m/s above the speed limit, summed over steps.
        lane: distance (m) of the rear axle from the route, summed over time.
    """

    goal: float = 1.0
    collision: float = 50.0
    off_road: float = 5.0
    overspeed: float = 2.0
    lane: float = 0.5


def box_circles(boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Three circles that cover each box.

    Args:
        boxes: (M, 7) ``[cx, cy, cz, dx, dy, dz, yaw]``.

    Returns:
        centres (M, 3, 2) and radii (M,).
    """
    offsets = np.array([-1.0, 0.0, 1.0]) / 3  # share of the length
    heading = np.stack([np.cos(boxes[:, 6]), np.sin(boxes[:, 6])], -1)  # (M, 2)
    centres = boxes[:, None, :2] + (offsets[None, :, None] * boxes[:, 3, None, None]) * heading[:, None]
    radii = np.hypot(boxes[:, 3] / 6, boxes[:, 4] / 2)
    return centres, radii


class PrivilegedPolicy:
    """CEM on the true cost map.

    Args:
        optimizer: the optimiser (same bounds and horizon as latent MPC).
        weights: energy weights.
        speed_limit_mps: the speed above which the energy penalises.
        raster_resolution_m: cell size of the drivable-area look-up raster around the ego.
        safety_margin_m: added to every object's radius.
    """

    name = "privileged_cem"
    needs_sensors = False
    privileged = True

    def __init__(
        self,
        optimizer: CrossEntropyMethod,
        weights: PrivilegedWeights = PrivilegedWeights(),
        speed_limit_mps: float = 10.0,
        raster_resolution_m: float = 0.5,
        safety_margin_m: float = 0.3,
    ) -> None:
        self.optimizer = optimizer
        self.weights = weights
        self.speed_limit_mps = speed_limit_mps
        self.resolution = raster_resolution_m
        self.margin = safety_margin_m
        self._seed, self._plan_index, self._previous = 0, 0, None

    def reset(self, seed: int) -> None:
        self._seed, self._plan_index, self._previous = seed, 0, None

    def _drivable_raster(self, observation: Observation) -> tuple[torch.Tensor, float]:
        """(R, R) float drivable area around the ego (ego frame, rows along y), and its half extent (m)."""
        extent = 60.0
        centres = np.arange(-extent, extent, self.resolution) + self.resolution / 2
        grid_x, grid_y = np.meshgrid(centres, centres)  # rows along y
        points = np.stack([grid_x.ravel(), grid_y.ravel()], -1)
        pose = np.array([*observation.ego.position, observation.ego.yaw])
        drivable = observation.simulator.town.on_drivable_area(to_global_frame(points, pose))
        return torch.from_numpy(drivable.reshape(len(centres), len(centres)).astype(np.float32)), extent

    def _objects(self, observation: Observation) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Objects near the ego in the ego frame: circle centres (M, 3, 2), velocities (M, 2), radii (M,)."""
        ego = observation.ego
        objects = [
            o for o in observation.simulator.objects() if np.linalg.norm(o.box[:2] - ego.position) < 60
        ]
        if not objects:
            return torch.zeros(0, 3, 2), torch.zeros(0, 2), torch.zeros(0)
        boxes = np.array([o.box for o in objects])
        velocities = np.array([o.velocity for o in objects])
        centres, radii = box_circles(boxes)
        cos, sin = np.cos(ego.yaw), np.sin(ego.yaw)
        rotation = np.array([[cos, sin], [-sin, cos]])  # global -> ego
        centres = (centres - ego.position) @ rotation.T
        velocities = velocities @ rotation.T
        return torch.from_numpy(centres), torch.from_numpy(velocities), torch.from_numpy(radii + self.margin)

    def energy(self, observation: Observation):
        """The energy of ``(1, S, H, 2)`` control candidates for this observation."""
        weights = self.weights
        drivable, extent = self._drivable_raster(observation)
        centres, velocities, radii = self._objects(observation)
        speed = torch.tensor(observation.ego.speed, dtype=torch.float64)
        waypoint = torch.from_numpy(observation.waypoint[:2])
        route = torch.from_numpy(observation.route_ahead)  # (P, 2)
        ego_offsets = torch.tensor(
            [-0.5, EGO_CENTRE_AHEAD_M, 2 * EGO_CENTRE_AHEAD_M + 0.5], dtype=torch.float64
        )
        ego_radius = float(np.hypot(EGO_HALF_LENGTH_M / 3, EGO_HALF_WIDTH_M))
        corners = torch.tensor(
            [
                [-0.72, -EGO_HALF_WIDTH_M],
                [-0.72, EGO_HALF_WIDTH_M],
                [3.364, -EGO_HALF_WIDTH_M],
                [3.364, EGO_HALF_WIDTH_M],
            ],
            dtype=torch.float64,
        )

        def energy(controls: torch.Tensor) -> torch.Tensor:
            fine = controls.double().repeat_interleave(2, dim=-2)  # (B, S, 2H, 2): 0.25 s steps
            rollout = integrate_controls(fine, speed, step_s=KEYFRAME_STEP_S / 2, substeps=5)
            poses = rollout.ego_poses  # (B, S, T, 3)
            heading = torch.stack([torch.cos(poses[..., 2]), torch.sin(poses[..., 2])], -1)  # (B, S, T, 2)
            normal = torch.stack([-heading[..., 1], heading[..., 0]], -1)
            times = torch.arange(1, poses.shape[-2] + 1, dtype=torch.float64) * KEYFRAME_STEP_S / 2  # (T,)
            ego_circles = (
                poses[..., None, :2] + ego_offsets[:, None] * heading[..., None, :]
            )  # (B, S, T, 3, 2)
            collision = torch.zeros(poses.shape[:2], dtype=torch.float64)
            if len(radii):
                moved = centres[None] + times[:, None, None, None] * velocities[None, :, None]  # (T, M, 3, 2)
                gaps = torch.linalg.vector_norm(
                    ego_circles[..., :, None, None, :] - moved[None, None, :, None], dim=-1
                )  # (B, S, T, 3, M, 3)
                penetration = (ego_radius + radii[:, None] - gaps).clamp(min=0)
                collision = penetration.amax(dim=(-1, -2, -3)).sum(-1)
            footprint = (
                poses[..., None, :2]
                + corners[:, :1] * heading[..., None, :]
                + corners[:, 1:] * normal[..., None, :]
            )
            normalised = (footprint / extent).float()  # (B, S, T, 4, 2) in [-1, 1]
            inside = torch.nn.functional.grid_sample(
                drivable[None, None].expand(len(normalised.flatten(0, 1)), -1, -1, -1),
                normalised.flatten(0, 1),
                align_corners=False,
                padding_mode="zeros",
            )  # (B * S, 1, T, 4)
            off_road = (1 - inside).clamp(min=0).sum(dim=(1, 2, 3)).view(poses.shape[:2]).double()
            goal = torch.linalg.vector_norm(poses[..., -1, :2] - waypoint, dim=-1)
            overspeed = (rollout.end_speeds - self.speed_limit_mps).clamp(min=0).sum(-1)
            lane = (
                torch.cdist(poses[..., :2].flatten(0, 1), route[None]).amin(-1).sum(-1).view(poses.shape[:2])
            )
            return (
                weights.goal * goal
                + weights.collision * collision
                + weights.off_road * off_road
                + weights.overspeed * overspeed
                + weights.lane * lane
            ).float()

        return energy

    @torch.no_grad()
    def act(self, observation: Observation) -> PlanStep:
        warm = shift_plan(self._previous) if self._previous is not None else None
        result = self.optimizer.plan(
            self.energy(observation), 1, episode_generator(self._seed, self._plan_index), warm_start=warm
        )
        self._plan_index += 1
        self._previous = result.actions
        speed = torch.tensor(observation.ego.speed, dtype=torch.float64)
        chosen = integrate_controls(result.actions[0].double(), speed).ego_poses[..., :2]
        candidates = integrate_controls(result.candidates[0].double(), speed).ego_poses[..., :2]
        return PlanStep(result.actions[0].numpy(), chosen.numpy(), candidates.numpy())
