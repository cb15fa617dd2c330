"""An on-disk cache of keyframe payloads, sharded by scene under ``<root>/<options hash>/<scene>/``.

Each keyframe is one array file (``datamodules.array_file``), ``<sample>.bin``: its voxels first (features
(V, C) float32, coords (V, 3) int16 ``[z, y, x]``, exactly as built), then everything else (visibility,
futures, labels) with the future tokens in the header. Loading maps the file: no unpickling and no copy
until the collate function writes the voxels into the batch, the one copy they need.

The options that made it are written beside it (``options.json``); a cache made with other options lives
under another hash and is never read by mistake. Files are written atomically, so an interrupted
preprocessing run resumes where it stopped.
"""

import json
import os
from pathlib import Path

import numpy as np
import torch

from datamodules.array_file import array_file_bytes, read_array_file
from datamodules.sample_options import SampleOptions


class SampleCache:
    """Keyframe payloads stored per scene.

    Args:
        root: the cache folder.
        options: the options whose payloads are cached here.
    """

    def __init__(self, root: str | Path, options: SampleOptions) -> None:
        self.options = options
        self.folder = Path(root) / options.cache_key()
        options_file = self.folder / "options.json"
        if options_file.is_file():
            stored = json.loads(options_file.read_text())
            if stored != options.describe():
                raise ValueError(
                    f"cache {self.folder} was made with other options than it is named for; delete it and "
                    f"preprocess again (stored {stored}, expected {options.describe()})"
                )

    def path(self, scene_name: str, sample_token: str) -> Path:
        """Where the payload of a keyframe lives."""
        return self.folder / scene_name / f"{sample_token}.bin"

    def contains(self, scene_name: str, sample_token: str) -> bool:
        return self.path(scene_name, sample_token).is_file()

    def save(self, scene_name: str, sample_token: str, payload: dict) -> None:
        """Write a payload atomically (a reader never sees half a file)."""
        path = self.path(scene_name, sample_token)
        path.parent.mkdir(parents=True, exist_ok=True)
        options_file = self.folder / "options.json"
        if not options_file.is_file():
            _write_atomically(
                options_file, json.dumps(self.options.describe(), indent=1, sort_keys=True).encode()
            )
        arrays = {"features": payload["features"].numpy(), "coords": payload["coords"].numpy()}
        meta = {}
        for key, value in payload.items():
            if key in ("features", "coords"):
                continue
            if key == "future_tokens":
                meta[key] = list(value)
            elif key == "future_boxes":  # one array instead of K
                arrays["future_box_counts"] = np.array([len(boxes) for boxes in value], dtype=np.int64)
                arrays[key] = torch.cat(value).numpy() if value else np.zeros((0, 7), np.float32)
            else:
                arrays[key] = value.numpy()
        _write_atomically(path, array_file_bytes(arrays, meta))

    def load_voxels(self, scene_name: str, sample_token: str) -> tuple[torch.Tensor, torch.Tensor]:
        """A keyframe's voxels: features (V, C) float32 and coords (V, 3) int16 ``[z, y, x]``."""
        arrays, _ = read_array_file(self.path(scene_name, sample_token), ("features", "coords"))
        return torch.from_numpy(arrays["features"]), torch.from_numpy(arrays["coords"])

    def load(self, scene_name: str, sample_token: str) -> dict:
        """A keyframe's whole payload, as ``SampleBuilder.build`` returned it."""
        arrays, meta = read_array_file(self.path(scene_name, sample_token))
        payload: dict = {name: torch.from_numpy(array) for name, array in arrays.items()}
        payload.update(meta)
        if "future_box_counts" in payload:
            counts = payload.pop("future_box_counts").tolist()
            payload["future_boxes"] = list(torch.split(payload["future_boxes"], counts))
        return payload


def _write_atomically(path: Path, content: bytes) -> None:
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_bytes(content)
    temporary.replace(path)
