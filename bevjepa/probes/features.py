"""Frozen features of a whole split, computed once: every method's tokens (and forecasts) next to the labels.

Encoders are frozen, so their tokens never change while heads train: the suite encodes each split once
(evaluation mode, no gradients) and trains every head of every method on the stored tokens.
"""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import torch
from torch import nn
from tqdm.auto import tqdm

from bevjepa.batch import BevBatch, VoxelBatch
from bevjepa.encoders.tokens import bev_to_tokens
from bevjepa.jepa.losses import layer_normalize
from bevjepa.probes.frozen_encoder import FrozenEncoder


@torch.no_grad()
def probe_tokens(encoder: nn.Module, token_patch: int, voxels: VoxelBatch) -> torch.Tensor:
    """Layer-normalised tokens (B, N, D) of a frozen encoder: what every probe head reads."""
    return layer_normalize(bev_to_tokens(encoder(voxels), token_patch))


@dataclass
class SplitLabels:
    """Probe labels of every sample of a split, stacked.

    Attributes:
        sample_tokens: S sample tokens.
        occupancy: (S, 1 + K, H, W) uint8 classes now and at each future step (255 ignore).
        map_rasters: (S, 6, H, W) bool.
        ego_trajectory: (S, K, 2) float32 logged future ego positions (current LiDAR frame).
        ego_status: (S, 4) float32 ``[vx, vy, yaw_rate, speed]`` now.
        valid: (S, K) bool, future steps that exist.
        poses: (S, K, 4, 4) float32 step k's LiDAR frame -> current.
        future_boxes: per sample, per step, (M, 7) agent boxes (current LiDAR frame).
    """

    sample_tokens: list[str]
    occupancy: torch.Tensor
    map_rasters: torch.Tensor
    ego_trajectory: torch.Tensor
    ego_status: torch.Tensor
    valid: torch.Tensor
    poses: torch.Tensor
    future_boxes: list[list[torch.Tensor]]

    def __len__(self) -> int:
        return len(self.sample_tokens)

    @property
    def future_steps(self) -> int:
        return self.ego_trajectory.shape[1]


@dataclass
class SplitFeatures:
    """A split's labels and, per method, its frozen tokens and forecasts.

    Attributes:
        labels: the stacked labels.
        tokens: method name -> (S, N, D) layer-normalised tokens.
        forecasts: method name -> (S, K', N, D) predicted tokens of steps 1..K' (each in its own keyframe's
            frame), for methods that forecast.
        encoded_futures: method name -> (S, K', N, D) tokens the encoder gives the future keyframes' own
            sweeps: what a perfect forecast would be, for methods that forecast (where extracted).
    """

    labels: SplitLabels
    tokens: dict[str, torch.Tensor] = field(default_factory=dict)
    forecasts: dict[str, torch.Tensor] = field(default_factory=dict)
    encoded_futures: dict[str, torch.Tensor] = field(default_factory=dict)


@dataclass
class TokenBatch:
    """A batch of stored tokens with their labels: what heads train and evaluate on.

    Attributes:
        tokens: (B, N, D).
        occupancy, map_rasters, ego_trajectory, ego_status, valid, poses: as in ``SplitLabels``, B rows.
        future_boxes: per sample, per step, (M, 7).
        forecasts: (B, K', N, D) or None.
        encoded_futures: (B, K', N, D) or None.
    """

    tokens: torch.Tensor
    occupancy: torch.Tensor
    map_rasters: torch.Tensor
    ego_trajectory: torch.Tensor
    ego_status: torch.Tensor
    valid: torch.Tensor
    poses: torch.Tensor
    future_boxes: list[list[torch.Tensor]]
    forecasts: torch.Tensor | None = None
    encoded_futures: torch.Tensor | None = None


def token_batch(
    features: SplitFeatures, method: str | None, indices: Sequence[int] | torch.Tensor
) -> TokenBatch:
    """The samples ``indices`` of ``method``'s stored features as one batch (``method`` None: labels only,
    with empty (B, 0, 0) tokens, for planners that read no scene)."""
    index = torch.as_tensor(indices, dtype=torch.long)
    labels = features.labels
    forecasts = features.forecasts.get(method) if method is not None else None
    encoded_futures = features.encoded_futures.get(method) if method is not None else None
    tokens = features.tokens[method][index] if method is not None else torch.zeros(len(index), 0, 0)
    return TokenBatch(
        tokens=tokens,
        occupancy=labels.occupancy[index].long(),
        map_rasters=labels.map_rasters[index],
        ego_trajectory=labels.ego_trajectory[index],
        ego_status=labels.ego_status[index],
        valid=labels.valid[index],
        poses=labels.poses[index],
        future_boxes=[labels.future_boxes[i] for i in index.tolist()],
        forecasts=forecasts[index] if forecasts is not None else None,
        encoded_futures=encoded_futures[index] if encoded_futures is not None else None,
    )


def _check_batch(batch: BevBatch, forecasting: bool, future_steps_to_encode: int) -> None:
    if batch.labels is None:
        raise ValueError("batches carry no probe labels: build the DataModule with labels=True")
    if batch.futures is None or batch.futures.poses.shape[1] == 0:
        raise ValueError(
            "batches carry no future steps: build the DataModule with future_steps > 0 (6 for 3 s)"
        )
    if forecasting and batch.futures.actions.shape[1] < 1:
        raise ValueError("forecasting needs the logged actions of the future steps")
    if len(batch.futures.voxels) < future_steps_to_encode:
        raise ValueError(
            f"encoding {future_steps_to_encode} future keyframes needs their voxels: build the DataModule with"
            f" future_voxels=True (the batch carries {len(batch.futures.voxels)})"
        )


def extract_split_features(
    batches: Iterable[BevBatch],
    encoders: Sequence[FrozenEncoder],
    forecast_steps: int,
    description: str = "encoding",
    total: int | None = None,
    encode_futures: bool = False,
) -> SplitFeatures:
    """Encode every batch of a split with every frozen encoder and stack the labels.

    Args:
        batches: the split's batches (with labels and future poses / actions).
        encoders: the methods' frozen encoders.
        forecast_steps: future keyframes to forecast with methods that can (0: none).
        description, total: progress-bar text and number of batches.
        encode_futures: also encode those future keyframes' own voxels with the forecasting methods'
            encoders (batches must carry the future voxels).

    Returns:
        The split's features.
    """
    tokens: dict[str, list[torch.Tensor]] = {frozen.name: [] for frozen in encoders}
    forecasts: dict[str, list[torch.Tensor]] = {
        f.name: [] for f in encoders if f.can_forecast and forecast_steps
    }
    encoded_futures: dict[str, list[torch.Tensor]] = (
        {name: [] for name in forecasts} if encode_futures else {}
    )
    future_steps_to_encode = forecast_steps if encoded_futures else 0
    columns: dict[str, list] = {
        name: [] for name in ("occupancy", "map", "trajectory", "status", "valid", "poses")
    }
    sample_tokens: list[str] = []
    future_boxes: list[list[torch.Tensor]] = []
    for batch in tqdm(batches, desc=description, total=total, leave=False):
        _check_batch(batch, bool(forecasts), future_steps_to_encode)
        labels, futures = batch.labels, batch.futures
        for frozen in encoders:
            tokens[frozen.name].append(probe_tokens(frozen.encoder, frozen.token_patch, batch.voxels))
            if frozen.name in forecasts:
                with torch.no_grad():
                    predicted = frozen.source.predict_future_tokens(batch.voxels, futures, forecast_steps)
                forecasts[frozen.name].append(predicted)  # (B, K', N, D)
            if frozen.name in encoded_futures:
                future_voxels = futures.voxels[:future_steps_to_encode]
                encoded = [
                    probe_tokens(frozen.encoder, frozen.token_patch, voxels) for voxels in future_voxels
                ]
                encoded_futures[frozen.name].append(torch.stack(encoded, dim=1))  # (B, K', N, D)
        sample_tokens += batch.sample_tokens
        columns["occupancy"].append(labels.occupancy.to(torch.uint8))
        columns["map"].append(labels.map_rasters.bool())
        columns["trajectory"].append(labels.ego_trajectory.float())
        columns["status"].append(labels.ego_status.float())
        columns["valid"].append(futures.valid.bool())
        columns["poses"].append(futures.poses.float())
        future_boxes += [list(steps) for steps in labels.future_boxes]
    if not sample_tokens:
        raise ValueError("the split yielded no samples")
    split_labels = SplitLabels(
        sample_tokens=sample_tokens,
        occupancy=torch.cat(columns["occupancy"]),
        map_rasters=torch.cat(columns["map"]),
        ego_trajectory=torch.cat(columns["trajectory"]),
        ego_status=torch.cat(columns["status"]),
        valid=torch.cat(columns["valid"]),
        poses=torch.cat(columns["poses"]),
        future_boxes=future_boxes,
    )
    return SplitFeatures(
        labels=split_labels,
        tokens={name: torch.cat(parts) for name, parts in tokens.items()},
        forecasts={name: torch.cat(parts) for name, parts in forecasts.items()},
        encoded_futures={name: torch.cat(parts) for name, parts in encoded_futures.items()},
    )
