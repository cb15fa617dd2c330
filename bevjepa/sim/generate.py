"""Generate a synthetic nuScenes dataroot from a preset: towns, recorded scenes, splits, nuScenes files.

Every random choice derives from the dataset seed (towns from (seed, town), scenes from (seed, scene)), and
scenes are recorded independently, so the output is byte-identical for a seed however many worker
processes record it.
"""

import functools
import multiprocessing
import os
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np

from bevjepa.sim.can_bus import can_bus_scene_names
from bevjepa.sim.nuscenes_writer import write_nuscenes
from bevjepa.sim.presets import Preset
from bevjepa.sim.recorder import SceneSpec, record_scene
from bevjepa.sim.simulator import Simulator
from bevjepa.sim.splits import write_splits
from bevjepa.sim.town import Town, generate_town
from bevjepa.sim.types import SceneLog

# Drives start on weekday mornings of July 2018 (local time), like much of nuScenes.
_FIRST_DAY = datetime(2018, 7, 23)
_LOCAL_ZONES = {"singapore": timezone(timedelta(hours=8)), "boston": timezone(timedelta(hours=-4))}


@dataclass
class GeneratedDataset:
    """What ``generate_dataset`` wrote, kept in memory: the towns, the scene logs and the splits."""

    towns: list[Town]
    scenes: list[SceneLog]
    splits: dict[str, list[str]]


@dataclass(frozen=True)
class PlannedScene:
    """One scene of a dataset before it is recorded."""

    town_index: int
    split: str
    spec: SceneSpec


def town_seed(seed: int, town_index: int) -> int:
    """Seed of a dataset's town."""
    return int(np.random.SeedSequence([seed, 1, town_index]).generate_state(1)[0])


def plan_scenes(preset: Preset, seed: int) -> list[PlannedScene]:
    """Names, seeds, start times and splits of a preset's scenes.

    Args:
        preset: the dataset recipe.
        seed: the dataset seed.

    Returns:
        The scenes in name order: training towns first, the held-out validation town(s) last.
    """
    count = preset.towns * preset.scenes_per_town
    names = can_bus_scene_names(count)
    rng = np.random.default_rng([seed, 2])
    planned = []
    for index, name in enumerate(names):
        town_index = index // preset.scenes_per_town
        location = preset.locations()[town_index]
        day = _FIRST_DAY + timedelta(days=index // 6)
        local_start = day.replace(hour=9, tzinfo=_LOCAL_ZONES[location.split("-")[0]]) + timedelta(
            minutes=75 * (index % 6), seconds=int(rng.integers(0, 3600))
        )
        start_us = int(local_start.timestamp()) * 1_000_000 + int(rng.integers(0, 1_000_000))
        spec = SceneSpec(
            name=name,
            seed=int(np.random.SeedSequence([seed, 3, index]).generate_state(1)[0]),
            start_timestamp_us=start_us,
            duration_s=preset.scene_duration_s,
            annotation_range_m=preset.annotation_range_m,
        )
        split = "val" if town_index >= preset.towns - preset.val_towns else "train"
        planned.append(PlannedScene(town_index=town_index, split=split, spec=spec))
    return planned


@functools.lru_cache(maxsize=4)
def _town(preset: Preset, seed: int, town_index: int) -> Town:
    """A preset's town, generated once per process."""
    location = preset.locations()[town_index]
    return generate_town(location, town_seed(seed, town_index), preset.simulator.town)


def _record(preset: Preset, seed: int, planned: PlannedScene) -> SceneLog:
    town = _town(preset, seed, planned.town_index)
    return record_scene(Simulator(preset.simulator_for(town.location)), town, planned.spec)


def record_dataset(
    preset: Preset,
    seed: int,
    workers: int | None = None,
    on_scene_done: Callable[[SceneLog], None] | None = None,
) -> tuple[list[Town], list[SceneLog], list[PlannedScene]]:
    """Generate a preset's towns and record its scenes.

    Args:
        preset: the dataset recipe.
        seed: the dataset seed.
        workers: processes recording scenes in parallel; None for one per CPU core (at most one per scene).
        on_scene_done: called with each scene log as it completes (in name order).

    Returns:
        The towns, the scene logs in name order, and the plan they were recorded from.
    """
    planned = plan_scenes(preset, seed)
    workers = min(workers or os.cpu_count() or 1, len(planned))
    if workers <= 1:
        logs = []
        for scene in planned:
            logs.append(_record(preset, seed, scene))
            if on_scene_done is not None:
                on_scene_done(logs[-1])
    else:
        # Fork keeps start-up cheap (no re-import); workers hold no state the parent needs.
        context = multiprocessing.get_context(
            "fork" if "fork" in multiprocessing.get_all_start_methods() else None
        )
        with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
            logs = []
            for log in pool.map(functools.partial(_record, preset, seed), planned):
                logs.append(log)
                if on_scene_done is not None:
                    on_scene_done(log)
    towns = [_town(preset, seed, index) for index in range(preset.towns)]
    return towns, logs, planned


def generate_dataset(
    preset: Preset,
    dataroot: Path,
    seed: int,
    workers: int | None = None,
    on_scene_done: Callable[[SceneLog], None] | None = None,
) -> GeneratedDataset:
    """Write a complete synthetic nuScenes dataroot for a preset.

    Args:
        preset: the dataset recipe; the version folder is ``preset.version``.
        dataroot: destination folder (should be empty).
        seed: the dataset seed.
        workers: processes recording scenes in parallel (None: one per CPU core).
        on_scene_done: progress callback, called with each recorded scene.

    Returns:
        The towns, scene logs and splits that were written.
    """
    towns, logs, planned = record_dataset(preset, seed, workers, on_scene_done)
    dataroot = Path(dataroot)
    write_nuscenes(dataroot, preset.version, [town.map for town in towns], logs, seed)
    splits: dict[str, list[str]] = {"train": [], "val": []}
    for scene in planned:
        splits[scene.split].append(scene.spec.name)
    write_splits(dataroot, splits)
    return GeneratedDataset(towns=towns, scenes=logs, splits=splits)
