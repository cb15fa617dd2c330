"""A simplified Continental ARS408 automotive radar (the five nuScenes RADAR_* channels), ray-cast.

The radar scans a horizontal fan of rays at its mounting height: a wide near beam (about +-60 degrees, up to
about 70 m) and a narrow far beam (about +-9 degrees, up to about 250 m). Each object or structure the fan
hits gives one return, or a few when it spans several metres, detected with a probability that falls with
range and rises with radar cross-section. Like the real sensor it measures range, azimuth and only the radial
(Doppler) component of velocity; z is 0 because the ARS408 does not resolve elevation.

Returns use the field order of nuScenes radar ``.pcd`` files, in the sensor frame (x forward, y left):
``x y z dyn_prop id rcs vx vy vx_comp vy_comp is_quality_valid ambig_state x_rms y_rms invalid_state pdh0
vx_rms vy_rms``. Every emitted return passes the devkit's default ``RadarPointCloud`` filters
(invalid_state 0, dyn_prop 0..6, ambig_state 3), as real clusters and real false alarms do.
"""

from dataclasses import dataclass

import numpy as np

from bevjepa.sim.pcd_files import RADAR_FIELDS
from bevjepa.sim.raycast import HIT_BOX, HIT_CYLINDER, cast_rays
from bevjepa.sim.types import RaycastScene

_FIELD = {name: i for i, name in enumerate(RADAR_FIELDS)}

# ARS408 dynamic-property codes (see nuScenes' RadarPointCloud); 7 (stopped) fails the default filters.
DYN_PROP_MOVING = 0
DYN_PROP_STATIONARY = 1
DYN_PROP_ONCOMING = 2
DYN_PROP_STATIONARY_CANDIDATE = 3
DYN_PROP_CROSSING_MOVING = 6
AMBIG_STATE_UNAMBIGUOUS = 3
INVALID_STATE_VALID = 0
PDH0_BELOW_25_PERCENT = 1

# The ARS408 reports standard deviations as a 5-bit index into a geometric table from 0.005 to 10 (0x1E);
# 0x1F means invalid.
_RMS_TABLE_FIRST, _RMS_TABLE_LAST, _RMS_CODE_LAST = 0.005, 10.0, 30


@dataclass(frozen=True)
class RadarConfig:
    """Field of view, sensitivity and noise of the simulated radar.

    Attributes:
        near_half_fov_deg, near_range_m: half-width and reach of the wide near-range beam.
        far_half_fov_deg, far_range_m: half-width and reach of the narrow far-range beam.
        azimuth_step_deg: spacing of the ray fan (finer than the targets it must not miss).
        min_detectable_rcs_dbsm, reference_range_m: the RCS detected with probability 0.5 at the reference
            range; the threshold rises by 40 log10(range / reference) dB (radar equation).
        detection_softness_db: width of the detection probability's transition.
        return_spacing_m: one return per this much visible extent of a target.
        max_returns_per_target: cap on the returns from one object or structure.
        max_returns: cap on the returns of one sweep (nuScenes files hold up to 125); the nearest are kept.
        range_noise_std_m, azimuth_noise_std_deg, velocity_noise_std_mps, rcs_noise_std_db: measurement noise.
        false_alarm_rate: expected false alarms (ghosts from multipath and clutter) per sweep.
        moving_speed_mps: targets faster than this are reported as moving.
        cylinder_rcs_dbsm: RCS of poles, which the scene gives no RCS for.
    """

    near_half_fov_deg: float = 60.0
    near_range_m: float = 70.0
    far_half_fov_deg: float = 9.0
    far_range_m: float = 250.0
    azimuth_step_deg: float = 0.2
    min_detectable_rcs_dbsm: float = -5.0
    reference_range_m: float = 100.0
    detection_softness_db: float = 2.0
    return_spacing_m: float = 2.5
    max_returns_per_target: int = 6
    max_returns: int = 125
    range_noise_std_m: float = 0.1
    azimuth_noise_std_deg: float = 0.3
    velocity_noise_std_mps: float = 0.1
    rcs_noise_std_db: float = 2.0
    false_alarm_rate: float = 3.0
    moving_speed_mps: float = 0.5
    cylinder_rcs_dbsm: float = 5.0

    def __post_init__(self) -> None:
        if not 0.0 < self.far_half_fov_deg <= self.near_half_fov_deg <= 180.0:
            raise ValueError("need 0 < far_half_fov_deg <= near_half_fov_deg <= 180")
        if not 0.0 < self.near_range_m <= self.far_range_m:
            raise ValueError("need 0 < near_range_m <= far_range_m")
        if self.azimuth_step_deg <= 0.0 or self.max_returns < 1 or self.max_returns_per_target < 1:
            raise ValueError(f"azimuth_step_deg and the return caps must be positive, got {self}")

    def max_range_at(self, azimuth: np.ndarray) -> np.ndarray:
        """(R,) reach in metres at each sensor-frame azimuth (radians); 0 outside the field of view."""
        half_angle = np.rad2deg(np.abs(azimuth))
        reach = np.where(half_angle <= self.near_half_fov_deg, self.near_range_m, 0.0)
        return np.where(half_angle <= self.far_half_fov_deg, self.far_range_m, reach)


def _rms_code(std: np.ndarray) -> np.ndarray:
    """ARS408 5-bit code of a standard deviation (the smallest table entry not below it)."""
    ratio = (_RMS_TABLE_LAST / _RMS_TABLE_FIRST) ** (1.0 / _RMS_CODE_LAST)
    code = np.ceil(np.log(np.maximum(std, _RMS_TABLE_FIRST) / _RMS_TABLE_FIRST) / np.log(ratio) - 1e-9)
    return np.clip(code, 0, _RMS_CODE_LAST)


def _dyn_prop(target_velocity: np.ndarray, line_of_sight: np.ndarray, moving_speed: float) -> np.ndarray:
    """(N,) dynamic property from each target's global velocity (N, 2) and unit line of sight (N, 2)."""
    speed = np.linalg.norm(target_velocity, axis=1)
    radial_share = np.sum(target_velocity * line_of_sight, axis=1) / np.maximum(speed, 1e-9)
    moving = np.where(radial_share < -0.5, DYN_PROP_ONCOMING, DYN_PROP_MOVING)
    moving = np.where(np.abs(radial_share) <= 0.5, DYN_PROP_CROSSING_MOVING, moving)
    return np.where(speed > moving_speed, moving, DYN_PROP_STATIONARY)


def _pick_target_rays(
    kind: np.ndarray, index: np.ndarray, distance: np.ndarray, config: RadarConfig, rng: np.random.Generator
) -> np.ndarray:
    """Indices of the rays that become returns: one per ``return_spacing_m`` of each target's visible extent.

    Rays are in azimuth order, so each target's rays are split into contiguous groups and one ray is drawn
    per group, spreading a large target's returns along its face.
    """
    on_target = np.flatnonzero((kind == HIT_BOX) | (kind == HIT_CYLINDER))
    if on_target.size == 0:
        return on_target
    target_key = kind[on_target].astype(np.int64) * (1 << 32) + index[on_target]
    keys, first_ray = np.unique(target_key, return_index=True)
    chosen = []
    step_rad = np.deg2rad(config.azimuth_step_deg)
    for key in keys[np.argsort(first_ray)]:
        rays = on_target[target_key == key]
        extent = rays.size * step_rad * float(np.mean(distance[rays]))
        n_returns = int(min(1 + extent // config.return_spacing_m, config.max_returns_per_target, rays.size))
        for group in np.array_split(rays, n_returns):
            chosen.append(group[rng.integers(group.size)])
    return np.asarray(chosen, dtype=np.int64)


@dataclass
class _Detections:
    """What the radar detected before measurement noise, one row per return (N,), global frame.

    Attributes:
        azimuth: sensor-frame azimuth (radians); range_m: true range; rcs: measured RCS (dBsm);
        velocity: (N, 2) target velocity; hit_ids: box id or -1; dyn_prop, pdh0: ARS408 codes.
    """

    azimuth: np.ndarray
    range_m: np.ndarray
    rcs: np.ndarray
    velocity: np.ndarray
    hit_ids: np.ndarray
    dyn_prop: np.ndarray
    pdh0: np.ndarray

    @staticmethod
    def concatenate(parts: list["_Detections"]) -> "_Detections":
        return _Detections(
            *(np.concatenate([getattr(part, name) for part in parts]) for name in _Detections.__annotations__)
        )


def _line_of_sight(azimuth: np.ndarray, rotation: np.ndarray) -> np.ndarray:
    """(N, 2) global horizontal unit vectors along sensor-frame azimuths (N,)."""
    sensor_frame = np.stack([np.cos(azimuth), np.sin(azimuth), np.zeros(azimuth.size)], axis=1)  # (N, 3)
    horizontal = (sensor_frame @ rotation.T)[:, :2]
    return horizontal / np.maximum(np.linalg.norm(horizontal, axis=1, keepdims=True), 1e-12)


def _target_detections(
    scene: RaycastScene,
    rotation: np.ndarray,
    origin: np.ndarray,
    config: RadarConfig,
    rng: np.random.Generator,
) -> _Detections:
    """Returns from what the ray fan hits, each kept with a probability set by its RCS and range."""
    half_fov = np.deg2rad(config.near_half_fov_deg)
    n_rays = int(np.floor(2.0 * config.near_half_fov_deg / config.azimuth_step_deg)) + 1
    ray_azimuth = np.linspace(-half_fov, half_fov, n_rays)  # (R,) sensor frame
    ray_directions = np.stack([np.cos(ray_azimuth), np.sin(ray_azimuth), np.zeros(n_rays)], axis=1)  # (R, 3)
    hits = cast_rays(scene, origin, ray_directions @ rotation.T, config.max_range_at(ray_azimuth))

    rays = _pick_target_rays(hits.kind, hits.index, hits.distance, config, rng)  # (T,)
    on_box = hits.kind[rays] == HIT_BOX
    rcs = np.full(rays.size, config.cylinder_rcs_dbsm)
    rcs[on_box] = np.asarray(scene.box_rcs, dtype=np.float64).reshape(-1)[hits.index[rays][on_box]]
    rcs += rng.normal(0.0, config.rcs_noise_std_db, rays.size)
    range_m = hits.distance[rays]
    margin_db = (
        rcs
        - 40.0 * np.log10(np.maximum(range_m, 1.0) / config.reference_range_m)
        - config.min_detectable_rcs_dbsm
    )
    detected = rng.random(rays.size) < 1.0 / (1.0 + np.exp(-margin_db / config.detection_softness_db))

    rays, on_box, rcs, range_m = rays[detected], on_box[detected], rcs[detected], range_m[detected]
    box_rows = hits.index[rays][on_box]
    velocity = np.zeros((rays.size, 2))
    velocity[on_box] = np.asarray(scene.box_velocities, dtype=np.float64).reshape(-1, 2)[box_rows]
    hit_ids = np.full(rays.size, -1, dtype=np.int32)
    hit_ids[on_box] = np.asarray(scene.box_ids).reshape(-1)[box_rows]
    azimuth = ray_azimuth[rays]
    return _Detections(
        azimuth=azimuth,
        range_m=range_m,
        rcs=rcs,
        velocity=velocity,
        hit_ids=hit_ids,
        dyn_prop=_dyn_prop(velocity, _line_of_sight(azimuth, rotation), config.moving_speed_mps),
        pdh0=np.full(rays.size, PDH0_BELOW_25_PERCENT),
    )


def _false_alarms(config: RadarConfig, rng: np.random.Generator) -> _Detections:
    """Weak, stationary-looking ghosts (multipath, clutter) anywhere in the field of view."""
    n_false = int(rng.poisson(config.false_alarm_rate))
    half_fov = np.deg2rad(config.near_half_fov_deg)
    azimuth = rng.uniform(-half_fov, half_fov, n_false)
    return _Detections(
        azimuth=azimuth,
        range_m=rng.uniform(1.0, config.max_range_at(azimuth)),
        rcs=rng.normal(config.min_detectable_rcs_dbsm - 5.0, 3.0, n_false),
        velocity=np.zeros((n_false, 2)),
        hit_ids=np.full(n_false, -1, dtype=np.int32),
        dyn_prop=np.full(n_false, DYN_PROP_STATIONARY_CANDIDATE),
        pdh0=rng.integers(2, 5, n_false),
    )


def cast_radar(
    scene: RaycastScene,
    sensor_to_global: np.ndarray,
    ego_velocity_global: np.ndarray,
    config: RadarConfig,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """Simulate one radar sweep from a fixed sensor pose.

    Args:
        scene: boxes (with ``box_velocities`` and ``box_rcs``) and cylinders in the global frame.
        sensor_to_global: (4, 4) pose of the radar frame (x forward, y left, z up).
        ego_velocity_global: (2,) or (3,) velocity of the sensor in the global frame, m/s; only x, y are used.
        config: field of view, sensitivity and noise.
        rng: draws detections, noise and false alarms.

    Returns:
        points (N, 18) float32 in nuScenes radar ``.pcd`` field order (``pcd_files.RADAR_FIELDS``), nearest
        first, and hit_ids (N,) int32: ``scene.box_ids`` of the target, -1 for structures, poles and false
        alarms.
    """
    rotation, origin = sensor_to_global[:3, :3], sensor_to_global[:3, 3]
    detections = _Detections.concatenate(
        [_target_detections(scene, rotation, origin, config, rng), _false_alarms(config, rng)]
    )
    n_points = detections.azimuth.size
    line_of_sight = _line_of_sight(detections.azimuth, rotation)  # (N, 2)
    sensor_velocity = np.asarray(ego_velocity_global, dtype=np.float64).reshape(-1)[:2]
    # The sensor measures Doppler against itself; adding back its own radial speed compensates ego motion.
    doppler = np.sum((detections.velocity - sensor_velocity) * line_of_sight, axis=1)
    doppler += rng.normal(0.0, config.velocity_noise_std_mps, n_points)
    compensated = doppler + line_of_sight @ sensor_velocity
    measured_range = np.maximum(detections.range_m + rng.normal(0.0, config.range_noise_std_m, n_points), 0.0)
    measured_azimuth = detections.azimuth + rng.normal(
        0.0, np.deg2rad(config.azimuth_noise_std_deg), n_points
    )

    points = np.zeros((n_points, len(RADAR_FIELDS)), dtype=np.float32)
    cos_az, sin_az = np.cos(measured_azimuth), np.sin(measured_azimuth)
    points[:, _FIELD["x"]] = measured_range * cos_az
    points[:, _FIELD["y"]] = measured_range * sin_az
    points[:, _FIELD["dyn_prop"]] = detections.dyn_prop
    points[:, _FIELD["rcs"]] = detections.rcs
    # Only the radial component is measured, so the velocity vectors point along the line of sight.
    points[:, _FIELD["vx"]] = doppler * cos_az
    points[:, _FIELD["vy"]] = doppler * sin_az
    points[:, _FIELD["vx_comp"]] = compensated * cos_az
    points[:, _FIELD["vy_comp"]] = compensated * sin_az
    points[:, _FIELD["is_quality_valid"]] = 1
    points[:, _FIELD["ambig_state"]] = AMBIG_STATE_UNAMBIGUOUS
    points[:, _FIELD["invalid_state"]] = INVALID_STATE_VALID
    lateral_std = measured_range * np.deg2rad(config.azimuth_noise_std_deg)
    points[:, _FIELD["x_rms"]] = _rms_code(np.hypot(cos_az * config.range_noise_std_m, sin_az * lateral_std))
    points[:, _FIELD["y_rms"]] = _rms_code(np.hypot(sin_az * config.range_noise_std_m, cos_az * lateral_std))
    points[:, _FIELD["vx_rms"]] = _rms_code(np.abs(cos_az) * config.velocity_noise_std_mps)
    points[:, _FIELD["vy_rms"]] = _rms_code(np.abs(sin_az) * config.velocity_noise_std_mps)
    points[:, _FIELD["pdh0"]] = detections.pdh0

    # The sensor lists clusters nearest first and truncates the list.
    order = np.argsort(measured_range, kind="stable")[: config.max_returns]
    points, hit_ids = points[order], detections.hit_ids[order]
    points[:, _FIELD["id"]] = np.arange(points.shape[0])
    return points, hit_ids
