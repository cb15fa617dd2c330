"""A spinning 32-beam LiDAR like nuScenes' LIDAR_TOP (Velodyne HDL-32E), ray-cast against the scene.

Returns are in the sensor frame as nuScenes stores them: ``[x, y, z, intensity, ring]`` with intensity in
0..255 and ring 0 for the lowest beam. One sweep is one full revolution taken from a single pose, which is
what the devkit's per-sweep ego-motion compensation assumes.
"""

import functools
from dataclasses import dataclass

import numba
import numpy as np

from bevjepa.sim.raycast import HIT_BOX, HIT_CYLINDER, HIT_NONE, box_hit_counts, cast_rays
from bevjepa.sim.types import RaycastScene

# Raindrop echoes are weak: their intensity is drawn uniformly below this.
_RAIN_CLUTTER_MAX_INTENSITY = 8.0


@dataclass(frozen=True)
class LidarConfig:
    """Beam layout, range and degradation of the simulated LiDAR.

    Attributes:
        beams: number of lasers, evenly spaced in elevation.
        elevation_min_deg, elevation_max_deg: elevation of the lowest and highest beam.
        azimuth_steps: firings per beam in one revolution (nuScenes LIDAR_TOP: 1084).
        max_range_m: returns beyond this are lost.
        range_noise_std_m: Gaussian noise on each measured range.
        dropout: probability that a return is lost (dark or wet surfaces, beam divergence).
        rain_clutter_rate: probability per firing of a spurious echo from a raindrop in front of the surface.
        rain_clutter_min_range_m, rain_clutter_max_range_m: range interval of raindrop echoes.
        ground_reflectivity, structure_reflectivity, vehicle_reflectivity, soft_object_reflectivity,
            pole_reflectivity: surface reflectivity (0..1) of asphalt, buildings and walls, metal-bodied
            objects (RCS >= ``metal_rcs_dbsm``), other annotated objects (people, cones) and poles/signs.
        metal_rcs_dbsm: radar cross-section from which an annotated object counts as metal-bodied.
        intensity_falloff_m: range at which the returned intensity has halved.
        intensity_noise_std: Gaussian noise on intensity, in 0..255 units.
    """

    beams: int = 32
    elevation_min_deg: float = -30.67
    elevation_max_deg: float = 10.67
    azimuth_steps: int = 1084
    max_range_m: float = 100.0
    range_noise_std_m: float = 0.02
    dropout: float = 0.0
    rain_clutter_rate: float = 0.0
    rain_clutter_min_range_m: float = 0.5
    rain_clutter_max_range_m: float = 10.0
    ground_reflectivity: float = 0.1
    structure_reflectivity: float = 0.15
    vehicle_reflectivity: float = 0.25
    soft_object_reflectivity: float = 0.15
    pole_reflectivity: float = 0.9
    metal_rcs_dbsm: float = 5.0
    intensity_falloff_m: float = 40.0
    intensity_noise_std: float = 2.0

    def __post_init__(self) -> None:
        if self.beams < 1 or self.azimuth_steps < 1:
            raise ValueError(
                f"beams and azimuth_steps must be positive, got {self.beams}, {self.azimuth_steps}"
            )
        if not self.elevation_min_deg <= self.elevation_max_deg:
            raise ValueError("elevation_min_deg must not exceed elevation_max_deg")
        if not 0.0 <= self.dropout <= 1.0 or not 0.0 <= self.rain_clutter_rate <= 1.0:
            raise ValueError(f"dropout and rain_clutter_rate must be in [0, 1], got {self}")
        if self.max_range_m <= 0.0 or self.range_noise_std_m < 0.0:
            raise ValueError(f"max_range_m must be positive and range_noise_std_m non-negative, got {self}")

    @classmethod
    def nuscenes(cls) -> "LidarConfig":
        """nuScenes LIDAR_TOP density: 32 x 1084 firings per 20 Hz sweep, 100 m range."""
        return cls()

    @classmethod
    def tiny(cls) -> "LidarConfig":
        """A coarse sweep (32 x 360 firings, 60 m) for tests and quick runs."""
        return cls(azimuth_steps=360, max_range_m=60.0)

    def elevations_deg(self) -> np.ndarray:
        """(beams,) elevation of each ring, ring 0 lowest."""
        return np.linspace(self.elevation_min_deg, self.elevation_max_deg, self.beams)


@functools.lru_cache(maxsize=8)
def _firing_pattern(config: LidarConfig) -> tuple[np.ndarray, np.ndarray]:
    """Unit directions (R, 3) in the sensor frame at zero azimuth phase, and each ray's ring (R,).

    Rays are ordered by firing time: all beams of one azimuth step, then the next step.
    """
    elevation = np.deg2rad(config.elevations_deg())  # (B,)
    azimuth = 2.0 * np.pi * np.arange(config.azimuth_steps) / config.azimuth_steps  # (S,)
    cos_el = np.cos(elevation)[None, :]
    directions = np.stack(
        [
            cos_el * np.cos(azimuth)[:, None],
            cos_el * np.sin(azimuth)[:, None],
            np.broadcast_to(np.sin(elevation)[None, :], (config.azimuth_steps, config.beams)),
        ],
        axis=-1,
    ).reshape(-1, 3)  # (S * B, 3)
    rings = np.tile(np.arange(config.beams, dtype=np.int32), config.azimuth_steps)  # (S * B,)
    directions.flags.writeable = False
    rings.flags.writeable = False
    return directions, rings


def _rotation_about_z(angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def _box_reflectivity(scene: RaycastScene, config: LidarConfig) -> np.ndarray:
    """(M,) reflectivity of each box's surface."""
    box_ids = np.asarray(scene.box_ids, dtype=np.int64).reshape(-1)
    is_metal = np.asarray(scene.box_rcs).reshape(-1) >= config.metal_rcs_dbsm
    object_reflectivity = np.where(is_metal, config.vehicle_reflectivity, config.soft_object_reflectivity)
    # Paint and clothing differ between objects: a fixed per-instance factor in [0.5, 1.5).
    instance_factor = 0.5 + (box_ids * 2654435761 % 1000) / 1000.0
    return np.where(box_ids >= 0, object_reflectivity * instance_factor, config.structure_reflectivity)


@numba.njit(cache=True)
def _sweep_returns(
    base_directions, phase, rings, hits, surface_reflectivity, box_reflectivity, box_ids, config_values, rng
):
    """Turn each ray's nearest hit into a measured return: rain clutter, dropout, range noise, intensity.

    ``hits`` is ``(distance, kind, index, cos_incidence)`` of ``RayHits``; ``surface_reflectivity`` is
    ``[ground, pole]``; ``config_values`` is ``[range_noise_std, dropout, rain_clutter_rate,
    rain_clutter_min_range, rain_clutter_max_range, intensity_falloff, intensity_noise_std]``.

    Returns:
        points (N, 5) float32 in the sensor frame (the firing pattern turned by ``phase``) and hit_ids (N,).
    """
    distance, kind, index, cos_incidence = hits
    noise_std, dropout, rain_rate, rain_min, rain_max, falloff, intensity_noise_std = config_values
    cos_phase, sin_phase = np.cos(phase), np.sin(phase)
    n_rays = distance.shape[0]
    points = np.empty((n_rays, 5), dtype=np.float32)
    hit_ids = np.full(n_rays, -1, dtype=np.int32)
    n = 0
    for r in range(n_rays):
        # Raindrop echoes arrive before the surface behind them and replace its return.
        clutter_range = np.inf
        if rain_rate > 0.0 and rng.random() < rain_rate:
            clutter_range = rng.uniform(rain_min, rain_max)
        is_clutter = clutter_range < distance[r]
        if not is_clutter and kind[r] == HIT_NONE:
            continue
        if dropout > 0.0 and rng.random() < dropout:
            continue
        if is_clutter:
            measured = clutter_range
            intensity = rng.uniform(0.0, _RAIN_CLUTTER_MAX_INTENSITY)
        else:
            measured = distance[r] + (rng.normal(0.0, noise_std) if noise_std > 0.0 else 0.0)
            if measured <= 0.0:
                continue
            if kind[r] == HIT_BOX:
                reflectivity = box_reflectivity[index[r]]
                hit_ids[n] = box_ids[index[r]]
            elif kind[r] == HIT_CYLINDER:
                reflectivity = surface_reflectivity[1]
            else:
                reflectivity = surface_reflectivity[0]
            incidence = min(max(cos_incidence[r], 0.0), 1.0)
            intensity = 255.0 * reflectivity * (0.2 + 0.8 * incidence) / (1.0 + measured / falloff)
            if intensity_noise_std > 0.0:
                intensity += rng.normal(0.0, intensity_noise_std)
        bx, by, bz = base_directions[r, 0], base_directions[r, 1], base_directions[r, 2]
        points[n, 0] = measured * (cos_phase * bx - sin_phase * by)
        points[n, 1] = measured * (sin_phase * bx + cos_phase * by)
        points[n, 2] = measured * bz
        points[n, 3] = min(max(np.round(intensity), 0.0), 255.0)
        points[n, 4] = rings[r]
        n += 1
    return points[:n], hit_ids[:n]


def cast_lidar(
    scene: RaycastScene, sensor_to_global: np.ndarray, config: LidarConfig, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Simulate one LiDAR sweep from a fixed sensor pose.

    Args:
        scene: boxes and cylinders in the global frame (the ground plane z = 0 is always there).
        sensor_to_global: (4, 4) pose of the LIDAR_TOP frame.
        config: beam layout, range and degradation.
        rng: draws the sweep's azimuth phase (firings do not line up between sweeps), noise, dropout and
            rain clutter.

    Returns:
        points (N, 5) float32 ``[x, y, z, intensity 0..255, ring]`` in the sensor frame, in firing order, and
        hit_ids (N,) int32: ``scene.box_ids`` of the hit box, -1 for ground, cylinders and rain clutter.
        Rays into the sky or beyond ``max_range_m`` return nothing.
    """
    base_directions, rings = _firing_pattern(config)
    phase = rng.uniform(0.0, 2.0 * np.pi / config.azimuth_steps)
    rotation = sensor_to_global[:3, :3] @ _rotation_about_z(phase)
    max_ranges = np.full(base_directions.shape[0], config.max_range_m)
    hits = cast_rays(scene, sensor_to_global[:3, 3], base_directions @ rotation.T, max_ranges)
    config_values = np.array(
        [
            config.range_noise_std_m,
            config.dropout,
            config.rain_clutter_rate,
            config.rain_clutter_min_range_m,
            config.rain_clutter_max_range_m,
            config.intensity_falloff_m,
            config.intensity_noise_std,
        ]
    )
    return _sweep_returns(
        base_directions,
        phase,
        rings,
        (hits.distance, hits.kind, hits.index, hits.cos_incidence),
        np.array([config.ground_reflectivity, config.pole_reflectivity]),
        _box_reflectivity(scene, config),
        np.ascontiguousarray(scene.box_ids, dtype=np.int32).reshape(-1),
        config_values,
        rng,
    )


def lidar_visibility(scene: RaycastScene, sensor_to_global: np.ndarray, config: LidarConfig) -> np.ndarray:
    """Share of each box's expected LiDAR rays that reach it, as nuScenes' visibility levels measure.

    A ray is expected for a box when it would hit the box in an empty world (ground plane only, within
    ``max_range_m``); it reaches the box when the box is its nearest hit in ``scene``. Noise-free, at zero
    azimuth phase.

    Args:
        scene: boxes and cylinders in the global frame.
        sensor_to_global: (4, 4) pose of the LIDAR_TOP frame.
        config: beam layout and range.

    Returns:
        (M,) float64 in [0, 1] per row of ``scene.boxes``; 0 where no ray could reach the box.
    """
    directions, _ = _firing_pattern(config)
    rotation, origin = sensor_to_global[:3, :3], sensor_to_global[:3, 3]
    unobstructed, first = box_hit_counts(scene, origin, directions @ rotation.T, config.max_range_m)
    visibility = np.zeros(unobstructed.shape[0])
    reachable = unobstructed > 0
    visibility[reachable] = first[reachable] / unobstructed[reachable]
    return visibility
