"""Train/val splits of a synthetic dataroot, by scene name, in ``<dataroot>/bevjepa_splits.json``.

Real nuScenes defines its splits by scene name in ``nuscenes.utils.splits``; a synthetic dataroot carries
its own in the same spirit: ``{"train": [scene names], "val": [scene names]}``, with val held out.
"""

import json
from pathlib import Path

SPLITS_FILENAME = "bevjepa_splits.json"
SPLIT_NAMES = ("train", "val")


def write_splits(dataroot: Path, splits: dict[str, list[str]]) -> Path:
    """Write the splits file of a dataroot.

    Args:
        dataroot: the dataset folder.
        splits: ``{"train": [...], "val": [...]}`` of disjoint scene names.

    Returns:
        The written file.
    """
    if set(splits) != set(SPLIT_NAMES):
        raise ValueError(f"splits must be exactly {SPLIT_NAMES}, got {sorted(splits)}")
    if set(splits["train"]) & set(splits["val"]):
        raise ValueError("a scene cannot be in both train and val")
    path = Path(dataroot) / SPLITS_FILENAME
    path.write_text(json.dumps({name: sorted(splits[name]) for name in SPLIT_NAMES}, indent=2) + "\n")
    return path


def load_splits(dataroot: Path) -> dict[str, list[str]]:
    """The train/val scene names of a synthetic dataroot.

    Args:
        dataroot: a dataset folder written by ``bevjepa.sim.generate``.

    Returns:
        ``{"train": [...], "val": [...]}``.

    Raises:
        FileNotFoundError: when the dataroot has no splits file (e.g. real nuScenes: use its own splits).
    """
    path = Path(dataroot) / SPLITS_FILENAME
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} not found: only synthetic dataroots carry it (real nuScenes uses nuscenes.utils.splits)"
        )
    splits = json.loads(path.read_text())
    if set(splits) != set(SPLIT_NAMES):
        raise ValueError(f"{path}: expected the keys {SPLIT_NAMES}, got {sorted(splits)}")
    return {name: list(splits[name]) for name in SPLIT_NAMES}


def split_of_scene(dataroot: Path, scene_name: str) -> str:
    """``"train"`` or ``"val"`` for a scene of a synthetic dataroot (KeyError if it is in neither)."""
    for name, scenes in load_splits(dataroot).items():
        if scene_name in scenes:
            return name
    raise KeyError(f"scene {scene_name} is in no split of {dataroot}")
