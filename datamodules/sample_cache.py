"""An on-disk cache of keyframe payloads, sharded by scene: ``<root>/<options hash>/<scene>/<sample>.pt``.

The options that made it are written beside it (``options.json``); a cache made with other options lives
under another hash and is never read by mistake. Files are written atomically, so an interrupted
preprocessing run resumes where it stopped.
"""

import json
import os
from pathlib import Path

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
        """Where the payload of a keyframe lives."""
        return self.folder / scene_name / f"{sample_token}.pt"

    def contains(self, scene_name: str, sample_token: str) -> bool:
        return self.path(scene_name, sample_token).is_file()

    def save(self, scene_name: str, sample_token: str, payload: dict) -> None:
        """Write a payload atomically (a reader never sees half a file)."""
        path = self.path(scene_name, sample_token)
        path.parent.mkdir(parents=True, exist_ok=True)
        options_file = self.folder / "options.json"
        if not options_file.is_file():
            temporary = options_file.with_suffix(f".{os.getpid()}.tmp")
            temporary.write_text(json.dumps(self.options.describe(), indent=1, sort_keys=True))
            temporary.replace(options_file)
        temporary = path.with_suffix(f".{os.getpid()}.tmp")
        torch.save(payload, temporary)
        temporary.replace(path)

    def load(self, scene_name: str, sample_token: str) -> dict:
        """Read a payload; tensors are memory-mapped, so reading only the voxels touches only them."""
        return torch.load(self.path(scene_name, sample_token), mmap=True, weights_only=True)
