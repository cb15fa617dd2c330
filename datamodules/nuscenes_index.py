"""The sample index: nuScenes tables turned into typed keyframe records, split by scene.

Everything a loader needs about a keyframe (file paths, timestamps and the rigid transform of every sweep)
is read from the tables once, with the rotations of all sweeps of a split converted in one vectorised
pass, so that loading sensor files needs no devkit objects and no per-point Python.
"""

import json
from collections.abc import Iterable
from pathlib import Path

import numpy as np
from nuscenes.nuscenes import NuScenes
from nuscenes.utils.splits import create_splits_scenes

from bevjepa.sim.nuscenes_taxonomy import TABLE_NAMES
from datamodules.sample_records import KeyframeRecord, SweepRecord
from datamodules.sweep_transforms import rigid_transforms

LIDAR_CHANNEL = "LIDAR_TOP"
RADAR_CHANNELS = (
    "RADAR_FRONT",
    "RADAR_FRONT_LEFT",
    "RADAR_FRONT_RIGHT",
    "RADAR_BACK_LEFT",
    "RADAR_BACK_RIGHT",
)
SPLITS_FILENAME = "bevjepa_splits.json"
# Official nuScenes splits per version suffix, as nuscenes.utils.splits.create_splits_logs pairs them.
OFFICIAL_SPLITS_BY_VERSION = {
    "trainval": ("train", "val", "train_detect", "train_track"),
    "mini": ("mini_train", "mini_val"),
    "test": ("test",),
}


def open_nuscenes(dataroot: str | Path, version: str) -> NuScenes:
    """Load a nuScenes-format dataroot with the devkit, after checking that it is one.

    Args:
        dataroot: the folder holding ``<version>/``, ``samples/`` and ``sweeps/``.
        version: the table folder, e.g. ``v1.0-trainval``.

    Returns:
        The devkit's ``NuScenes`` (tables loaded, quiet).

    Raises:
        FileNotFoundError: the dataroot does not exist, has no ``<version>`` folder (the message lists the
            versions it has) or the version folder lacks tables.
    """
    dataroot = Path(dataroot).expanduser()
    if not dataroot.is_dir():
        raise FileNotFoundError(f"nuScenes dataroot {dataroot} does not exist or is not a folder")
    table_folder = dataroot / version
    if not table_folder.is_dir():
        versions = sorted(child.name for child in dataroot.iterdir() if (child / "sample.json").is_file())
        raise FileNotFoundError(
            f"nuScenes version {version!r} not found in dataroot {dataroot}: no folder {table_folder}; "
            f"versions found there: {versions or 'none (is this a nuScenes dataroot?)'}"
        )
    missing = [name for name in TABLE_NAMES if not (table_folder / f"{name}.json").is_file()]
    if missing:
        raise FileNotFoundError(
            f"nuScenes version {version!r} in {dataroot} is incomplete: missing tables "
            f"{', '.join(f'{name}.json' for name in missing)} in {table_folder}"
        )
    return NuScenes(version=version, dataroot=str(dataroot), verbose=False)


class NuScenesIndex:
    """Keyframe records of a nuScenes-format dataroot, split by scene.

    Splits: when ``<dataroot>/bevjepa_splits.json`` exists (``{"train": [scene names], "val": [...]}``,
    as synthetic dataroots carry) it defines the splits; otherwise the official nuScenes splits of the
    version are used (``train``, ``val``, ``train_detect``, ``train_track`` for ``*-trainval``;
    ``mini_train``, ``mini_val`` for ``*-mini``; ``test`` for ``*-test``).

    Args:
        nusc: the loaded dataset (see ``open_nuscenes``).
        lidar_sweeps: LIDAR_TOP sweeps per keyframe, the keyframe sweep included (fewer where the
            ``prev`` chain ends early).
        radar_sweeps: sweeps per RADAR_* channel, the keyframe sweep included; 6 spans the 0.5 s between
            keyframes at the radars' 13 Hz.
        radar: whether records carry radar sweeps.
        future_steps: how many following keyframes of the same scene a record lists (6 = 3 s at 2 Hz).
    """

    def __init__(
        self,
        nusc: NuScenes,
        lidar_sweeps: int = 10,
        radar_sweeps: int = 6,
        radar: bool = True,
        future_steps: int = 6,
    ):
        if lidar_sweeps < 1 or radar_sweeps < 1 or future_steps < 0:
            raise ValueError(
                f"need lidar_sweeps >= 1, radar_sweeps >= 1 and future_steps >= 0; got {lidar_sweeps}, "
                f"{radar_sweeps} and {future_steps}"
            )
        self.nusc = nusc
        self.dataroot = Path(nusc.dataroot)
        self._dataroot_text = str(self.dataroot)  # one string shared by every record
        self.lidar_sweeps = lidar_sweeps
        self.radar_sweeps = radar_sweeps
        self.radar = radar
        self.future_steps = future_steps
        self._scenes_by_name = {scene["name"]: scene for scene in nusc.scene}
        self._splits: dict[str, list[str]] | None = None

    @property
    def split_names(self) -> list[str]:
        """The split names this dataroot offers.

        Raises:
            ValueError: the split file is malformed, or there is none and the version is not official.
        """
        return list(self._loaded_splits())

    def _loaded_splits(self) -> dict[str, list[str]]:
        if self._splits is None:
            self._splits = self._load_splits()
        return self._splits

    def _load_splits(self) -> dict[str, list[str]]:
        splits_path = self.dataroot / SPLITS_FILENAME
        if splits_path.is_file():
            try:
                splits = json.loads(splits_path.read_text())
            except json.JSONDecodeError as error:
                raise ValueError(f"split file {splits_path} is not valid JSON: {error}") from error
            if not isinstance(splits, dict) or not all(
                isinstance(names, list) and all(isinstance(name, str) for name in names)
                for names in splits.values()
            ):
                raise ValueError(f"split file {splits_path} must map split names to lists of scene names")
            return splits
        suffix = self.nusc.version.rsplit("-", 1)[-1]
        if suffix not in OFFICIAL_SPLITS_BY_VERSION:
            raise ValueError(
                f"no splits for {self.nusc.version} in {self.dataroot}: it is not an official nuScenes "
                f"version (*-trainval, *-mini, *-test) and has no split file {splits_path}"
            )
        official = create_splits_scenes()
        return {name: list(official[name]) for name in OFFICIAL_SPLITS_BY_VERSION[suffix]}

    def scene_names(self, split: str) -> list[str]:
        """The scenes of a split, in the split's order.

        Args:
            split: one of ``split_names``.

        Returns:
            Scene names.

        Raises:
            ValueError: an unknown split, or a split naming scenes the dataroot does not have.
        """
        splits = self._loaded_splits()
        if split not in splits:
            raise ValueError(
                f"unknown split {split!r} for {self.nusc.version} in {self.dataroot}; "
                f"available: {self.split_names}"
            )
        names = splits[split]
        missing = [name for name in names if name not in self._scenes_by_name]
        if missing:
            raise ValueError(
                f"split {split!r} names {len(missing)} scenes that {self.nusc.version} in {self.dataroot} "
                f"does not have, e.g. {missing[:5]}"
            )
        return list(names)

    def records(self, split: str) -> list[KeyframeRecord]:
        """Records of every keyframe of a split, scene by scene in time order.

        Args:
            split: one of ``split_names``.

        Returns:
            The keyframe records.
        """
        sample_tokens = []
        for name in self.scene_names(split):
            token = self._scenes_by_name[name]["first_sample_token"]
            while token:
                sample_tokens.append(token)
                token = self.nusc.get("sample", token)["next"]
        return self.records_of(sample_tokens)

    def record(self, sample_token: str) -> KeyframeRecord:
        """The record of one keyframe (e.g. a future keyframe of another record)."""
        return self.records_of([sample_token])[0]

    def records_of(self, sample_tokens: Iterable[str]) -> list[KeyframeRecord]:
        """Records of the given keyframes, in the given order.

        Args:
            sample_tokens: ``sample`` tokens.

        Returns:
            One record per token.
        """
        samples = [self.nusc.get("sample", token) for token in sample_tokens]
        chains = [self._sweep_chains(sample) for sample in samples]
        needed = list(dict.fromkeys(sd["token"] for chain in chains for sds in chain.values() for sd in sds))
        sensor_to_global = dict(
            zip(needed, self._sensor_to_global([self._sd(t) for t in needed]), strict=True)
        )
        return [
            self._build_record(sample, chain, sensor_to_global)
            for sample, chain in zip(samples, chains, strict=True)
        ]

    def _sd(self, token: str) -> dict:
        return self.nusc.get("sample_data", token)

    def _sweep_chains(self, sample: dict) -> dict[str, list[dict]]:
        """``sample_data`` rows per channel: the keyframe sweep, then earlier ones following ``prev``."""
        if LIDAR_CHANNEL not in sample["data"]:
            raise ValueError(f"sample {sample['token']} has no {LIDAR_CHANNEL} data")
        channels = [(LIDAR_CHANNEL, self.lidar_sweeps)]
        if self.radar:
            channels += [
                (channel, self.radar_sweeps) for channel in RADAR_CHANNELS if channel in sample["data"]
            ]
        chains = {}
        for channel, count in channels:
            chain = [self._sd(sample["data"][channel])]
            while len(chain) < count and chain[-1]["prev"]:
                chain.append(self._sd(chain[-1]["prev"]))
            chains[channel] = chain
        return chains

    def _sensor_to_global(self, sample_datas: list[dict]) -> np.ndarray:
        """(M, 4, 4) ego_pose @ calibrated_sensor of each ``sample_data`` row, in one vectorised pass."""
        poses = [self.nusc.get("ego_pose", sd["ego_pose_token"]) for sd in sample_datas]
        calibrations = [
            self.nusc.get("calibrated_sensor", sd["calibrated_sensor_token"]) for sd in sample_datas
        ]
        ego_to_global = rigid_transforms(
            np.array([pose["rotation"] for pose in poses]).reshape(-1, 4),
            np.array([pose["translation"] for pose in poses]).reshape(-1, 3),
        )
        sensor_to_ego = rigid_transforms(
            np.array([calib["rotation"] for calib in calibrations]).reshape(-1, 4),
            np.array([calib["translation"] for calib in calibrations]).reshape(-1, 3),
        )
        return ego_to_global @ sensor_to_ego  # (M, 4, 4)

    def _sweep_record(self, sd: dict, sensor_to_global: dict[str, np.ndarray]) -> SweepRecord:
        return SweepRecord(
            path=sd["filename"],
            token=sd["token"],
            timestamp_us=int(sd["timestamp"]),
            sensor_to_global=sensor_to_global[sd["token"]],
        )

    def _build_record(
        self, sample: dict, chains: dict[str, list[dict]], sensor_to_global: dict[str, np.ndarray]
    ) -> KeyframeRecord:
        scene = self.nusc.get("scene", sample["scene_token"])
        log = self.nusc.get("log", scene["log_token"])
        keyframe_lidar = chains[LIDAR_CHANNEL][0]
        calibration = self.nusc.get("calibrated_sensor", keyframe_lidar["calibrated_sensor_token"])
        lidar_to_ego = rigid_transforms(
            np.array([calibration["rotation"]]), np.array([calibration["translation"]])
        )
        futures = []
        token = sample["next"]
        while token and len(futures) < self.future_steps:
            futures.append(token)
            token = self.nusc.get("sample", token)["next"]
        radar = {
            channel: tuple(self._sweep_record(sd, sensor_to_global) for sd in chains[channel])
            for channel in RADAR_CHANNELS
            if channel in chains
        }
        return KeyframeRecord(
            sample_token=sample["token"],
            scene_name=scene["name"],
            location=log["location"],
            timestamp_us=int(keyframe_lidar["timestamp"]),
            lidar_to_global=sensor_to_global[keyframe_lidar["token"]],
            lidar_to_ego=lidar_to_ego[0],
            lidar_sweeps=tuple(self._sweep_record(sd, sensor_to_global) for sd in chains[LIDAR_CHANNEL]),
            radar_sweeps=radar,
            annotation_tokens=tuple(sample["anns"]),
            future_sample_tokens=tuple(futures),
            dataroot=self._dataroot_text,
        )
