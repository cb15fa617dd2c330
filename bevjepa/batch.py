"""Typed batches that flow from the data modules into the models (Lightning moves them to the device)."""

from dataclasses import dataclass, field

import torch

# Columns of ``ProbeLabels.ego_status``: velocity in the current LiDAR frame, yaw rate, speed.
EGO_STATUS_FEATURES = ("vx_mps", "vy_mps", "yaw_rate_radps", "speed_mps")
EGO_VELOCITY = slice(0, 2)
EGO_YAW_RATE = EGO_STATUS_FEATURES.index("yaw_rate_radps")
EGO_SPEED = EGO_STATUS_FEATURES.index("speed_mps")


@dataclass
class VoxelBatch:
    """Voxels of a batch of samples, ready for the sparse encoder.

    Attributes:
        features: (V, F) float32 per-voxel features (e.g. mean x, y, z, intensity, time lag).
        coords: (V, 4) int32 ``[batch, z, y, x]`` voxel indices (spconv's order).
        batch_size: number of samples in the batch.
    """

    features: torch.Tensor
    coords: torch.Tensor
    batch_size: int

    def __post_init__(self) -> None:
        if self.features.shape[0] != self.coords.shape[0] or self.coords.shape[-1] != 4:
            raise ValueError(
                f"VoxelBatch features {tuple(self.features.shape)} and coords {tuple(self.coords.shape)} "
                "do not describe the same voxels as (V, F) and (V, 4)"
            )


@dataclass
class BevOccupancyBatch:
    """Voxels plus a BEV occupancy target (cells under annotated boxes) for supervised training.

    Attributes:
        voxels: the input voxels.
        occupancy: (B, H, W) float32 in {0, 1}, on the grid's BEV cells.
    """

    voxels: VoxelBatch
    occupancy: torch.Tensor


@dataclass
class FutureFrames:
    """The keyframes after the current one (t + 0.5 s, t + 1 s, ...) and the ego's motion between them.

    Attributes:
        voxels: K voxel batches, step k's keyframe voxelized in ITS OWN LiDAR frame (empty when the DataModule
            was asked for the future motion only, ``future_voxels=False``).
        poses: (B, K, 4, 4) float32 transform from step k's LiDAR frame to the current LiDAR frame (zeros
            where the step is invalid).
        actions: (B, K, 4) float32 ``[dx, dy, dyaw, speed]``: the ego's motion from step k-1 to step k
            (step 0 = now) expressed in the current LiDAR frame (metres, radians), and its speed (m/s) at k.
        valid: (B, K) bool, False for steps past the end of the scene (their voxels are empty).
    """

    voxels: list[VoxelBatch]
    poses: torch.Tensor
    actions: torch.Tensor
    valid: torch.Tensor


@dataclass
class ProbeLabels:
    """Labels for probes and evaluation only: pretraining never reads them.

    Attributes:
        occupancy: (B, 1 + K, H, W) int64 classes (0 free, 1 vehicle, 2 vulnerable road user,
            3 static obstacle, 255 unobserved / ignore) now and at each future step, in the current frame.
        map_rasters: (B, 6, H, W) bool drivable_area, ped_crossing, walkway, stop_line, carpark_area, divider.
        ego_trajectory: (B, K, 2) float32 future ego positions in the current LiDAR frame.
        future_boxes: per sample, per future step, (M, 7) float32 agent boxes in the current LiDAR frame.
        ego_status: (B, 4) float32 ``EGO_STATUS_FEATURES`` ``[vx, vy, yaw_rate, speed]`` of the ego now, in the current LiDAR frame
            (m/s, rad/s), from ego poses at and before the keyframe only (CAN bus speed where present).
    """

    occupancy: torch.Tensor
    map_rasters: torch.Tensor
    ego_trajectory: torch.Tensor
    future_boxes: list[list[torch.Tensor]]
    ego_status: torch.Tensor


@dataclass
class BevBatch:
    """What the nuScenes DataModule yields: one batch of keyframes in their LiDAR frames.

    Attributes:
        sample_tokens: B nuScenes ``sample`` tokens.
        voxels: the current keyframe's fused LiDAR (+ radar) voxels.
        visibility: (B, H, W) uint8 per BEV cell from the context sweeps: 0 free, 1 occupied, 2 unobserved.
        target_visibility: (B, H, W) uint8, the same from neighbouring keyframes (past and future)
            aligned into the current frame: cells unobserved now but observed there are occluded targets.
        futures: the future keyframes' poses and actions (and voxels), or None when the DataModule was asked
            for no future steps.
        labels: probe labels, or None when not requested.
        skipped_sample_tokens: samples dropped from this batch because their data was bad (only with the
            DataModule's ``on_bad_sample: skip``).
    """

    sample_tokens: list[str]
    voxels: VoxelBatch
    visibility: torch.Tensor
    target_visibility: torch.Tensor
    futures: FutureFrames | None = None
    labels: ProbeLabels | None = None
    skipped_sample_tokens: list[str] = field(default_factory=list)
