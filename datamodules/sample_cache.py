"""An on-disk cache of keyframe payloads, sharded by scene under ``<root>/<options hash>/<scene>/``.

Each keyframe is two files: ``<sample>.voxels.npy``, its voxels as one (V, C + 3) float32 array of features
and ``[z, y, x]`` (what a sample also reads of each of its future keyframes, so it loads in one read), and ``<sample>.pt`` with everything else (visibility, futures, labels).

The options that made it are written beside it (``options.json``); a cache made with other options lives
under another hash and is never read by mistake. Files are written atomically, so an interrupted
preprocessing run resumes where it stopped.
"""

import json
import os
from pathlib import Path

import numpy as np
import torch

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
        """Where the payload of a keyframe lives (its voxels sit beside it, see ``voxels_path``)."""
        return self.folder / scene_name / f"{sample_token}.pt"

    def voxels_path(self, scene_name: str, sample_token: str) -> Path:
        return self.folder / scene_name / f"{sample_token}.voxels.npy"

    def contains(self, scene_name: str, sample_token: str) -> bool:
        # The payload file is written last, so its presence means both files are complete.
        return self.path(scene_name, sample_token).is_file()

    def save(self, scene_name: str, sample_token: str, payload: dict) -> None:
        """Write a payload atomically (a reader never sees half a file)."""
        path = self.path(scene_name, sample_token)
        path.parent.mkdir(parents=True, exist_ok=True)
        options_file = self.folder / "options.json"
        if not options_file.is_file():
            _write_atomically(
                options_file,
                lambda f: f.write(json.dumps(self.options.describe(), indent=1, sort_keys=True).encode()),
            )
        voxels = torch.cat([payload["features"], payload["coords"].float()], dim=1).numpy()  # (V, C + 3)
        _write_atomically(self.voxels_path(scene_name, sample_token), lambda f: np.save(f, voxels))
        rest = {key: value for key, value in payload.items() if key not in ("features", "coords")}
        if "future_boxes" in rest:  # one tensor instead of K keeps loading fast
            rest["future_box_counts"] = torch.tensor([len(b) for b in rest["future_boxes"]])
            rest["future_boxes"] = torch.cat(rest["future_boxes"])
        _write_atomically(path, lambda f: torch.save(rest, f))

    def load_voxels(self, scene_name: str, sample_token: str) -> tuple[torch.Tensor, torch.Tensor]:
        """A keyframe's voxels: features (V, C) float32 and coords (V, 3) int32 ``[z, y, x]``."""
        # One plain read: memory-mapping costs more in page faults than it saves for files read whole.
        voxels = torch.from_numpy(np.load(self.voxels_path(scene_name, sample_token)))  # (V, C + 3)
        return voxels[:, :-3], voxels[:, -3:].int()

    def load(self, scene_name: str, sample_token: str) -> dict:
        """A keyframe's whole payload, as ``SampleBuilder.build`` returned it."""
        payload = torch.load(self.path(scene_name, sample_token), weights_only=True)
        payload["features"], payload["coords"] = self.load_voxels(scene_name, sample_token)
        if "future_box_counts" in payload:
            counts = payload.pop("future_box_counts").tolist()
            payload["future_boxes"] = list(torch.split(payload["future_boxes"], counts))
        return payload


def _write_atomically(path: Path, write) -> None:
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(temporary, "wb") as file:
        write(file)
    temporary.replace(path)
