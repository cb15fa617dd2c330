"""A map-style Dataset of nuScenes keyframes: reads payloads from the cache when present, builds them from
the raw files otherwise (the same tensors either way), and applies the bad-sample policy."""

import logging
from typing import Literal

from torch.utils.data import Dataset

from datamodules.lidar_files import SensorFileError
from datamodules.sample_builder import SampleBuilder
from datamodules.sample_cache import SampleCache
from datamodules.sample_records import KeyframeRecord

log = logging.getLogger(__name__)

OnBadSample = Literal["raise", "skip"]


class BadSampleError(RuntimeError):
    """A sample could not be built; the message names the sample token and what broke."""


class NuScenesBEVDataset(Dataset):
    """One item per keyframe record: a dict with the keyframe payload plus the future steps' voxels.

    Args:
        builder: builds payloads from raw files.
        records: the keyframes of the split.
        cache: read payloads from here when present (None: always build).
        future_voxels: whether items carry the future keyframes' voxels (``future_features`` /
            ``future_coords``, lists of K tensors, empty for invalid steps).
        on_bad_sample: ``raise`` a ``BadSampleError``, or ``skip``: log it and return
            ``{"skipped": token}`` for the collate function to count.
    """

    def __init__(
        self,
        builder: SampleBuilder,
        records: list[KeyframeRecord],
        cache: SampleCache | None,
        future_voxels: bool,
        on_bad_sample: OnBadSample = "raise",
    ) -> None:
        if on_bad_sample not in ("raise", "skip"):
            raise ValueError(f"on_bad_sample must be 'raise' or 'skip', got {on_bad_sample!r}")
        self.builder = builder
        self.records = records
        self.cache = cache
        self.future_voxels = future_voxels
        self.on_bad_sample = on_bad_sample

    def __len__(self) -> int:
        return len(self.records)

    def _payload(self, record: KeyframeRecord) -> dict:
        if self.cache is not None:
            try:
                return self.cache.load(record.scene_name, record.sample_token)
            except FileNotFoundError:
                pass  # not preprocessed: built below
        return self.builder.build(record)

    def _future_voxels(self, scene_name: str, sample_token: str) -> tuple:
        if self.cache is not None:
            try:
                return self.cache.load_voxels(scene_name, sample_token)
            except FileNotFoundError:
                pass  # not preprocessed: built below
        # Only the future keyframe's own view is needed: skip its labels and futures.
        view = self.builder.keyframe_view(self.builder.index.record(sample_token))
        return view["features"], view["coords"]

    def __getitem__(self, item: int) -> dict:
        record = self.records[item]
        try:
            payload = dict(self._payload(record))
            future_tokens = payload.pop("future_tokens")
            if self.future_voxels:
                futures = [
                    self._future_voxels(record.scene_name, token) if token else None
                    for token in future_tokens
                ]
                payload["future_features"] = [f[0] if f else None for f in futures]
                payload["future_coords"] = [f[1] if f else None for f in futures]
        except (SensorFileError, ValueError, KeyError, OSError) as error:
            message = f"sample {record.sample_token} (scene {record.scene_name}) is bad: {error}"
            if self.on_bad_sample == "raise":
                raise BadSampleError(message) from error
            log.warning("skipping %s", message)
            return {"skipped": record.sample_token}
        payload["sample_token"] = record.sample_token
        return payload
