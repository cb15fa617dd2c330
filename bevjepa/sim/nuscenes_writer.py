"""Simulated drives written as a complete nuScenes dataroot that the official devkit loads unchanged.

Layout: the 13 tables in ``<dataroot>/<version>/``, keyframe sweeps in ``samples/<CHANNEL>/`` and the
others in ``sweeps/<CHANNEL>/`` (named ``<log>__<CHANNEL>__<timestamp_us>``), the semantic-prior masks in
``maps/``, the map expansion in ``maps/expansion/`` and the CAN bus streams in ``can_bus/``. Tokens are
hashes of the seed and of what a record describes, so the same input always gives the same bytes.
"""

import bisect
import json
from collections import defaultdict
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from nuscenes.utils.data_classes import Box
from nuscenes.utils.geometry_utils import transform_matrix
from pyquaternion import Quaternion

from bevjepa.sim.box_points import PointsInBoxCounter
from bevjepa.sim.calibration import SENSOR_MOUNTS, SensorMount
from bevjepa.sim.can_bus import check_can_bus_scene_name, write_can_bus
from bevjepa.sim.map_expansion import write_map_expansion
from bevjepa.sim.nuscenes_taxonomy import (
    ATTRIBUTE_NAMES,
    ATTRIBUTES,
    CATEGORIES,
    CATEGORY_NAMES,
    TABLE_NAMES,
    visibility_records,
    visibility_token,
)
from bevjepa.sim.nuscenes_tokens import table_token
from bevjepa.sim.pcd_files import write_lidar_bin, write_radar_pcd
from bevjepa.sim.semantic_prior import SEMANTIC_PRIOR_TOKENS, semantic_prior_filename, write_semantic_prior
from bevjepa.sim.types import LOCATIONS, ObjectState, SceneLog, SensorCapture, TownMap

MOUNTS = {mount.channel: mount for mount in SENSOR_MOUNTS}
LIDAR_CHANNEL = "LIDAR_TOP"
VEHICLE_NAME = "bevjepa-sim"


def yaw_quaternion(yaw: float) -> list[float]:
    """Rotation about +z by ``yaw`` radians as a nuScenes quaternion [w, x, y, z]."""
    return [float(np.cos(yaw / 2.0)), 0.0, 0.0, float(np.sin(yaw / 2.0))]


def sensor_data_filename(log_name: str, capture: SensorCapture) -> str:
    """Dataroot-relative path of a capture's file, named like nuScenes sensor files."""
    folder = "samples" if capture.is_key_frame else "sweeps"
    suffix = ".pcd.bin" if MOUNTS[capture.channel].modality == "lidar" else ".pcd"
    return f"{folder}/{capture.channel}/{log_name}__{capture.channel}__{capture.timestamp_us}{suffix}"


def _sensor_to_global(ego_pose: dict, calibrated_sensor: dict) -> np.ndarray:
    """4x4 sensor-to-global transform built from the records exactly as the devkit builds it."""
    global_from_ego = transform_matrix(ego_pose["translation"], Quaternion(ego_pose["rotation"]))
    ego_from_sensor = transform_matrix(
        calibrated_sensor["translation"], Quaternion(calibrated_sensor["rotation"])
    )
    return global_from_ego @ ego_from_sensor


class _Tables:
    """The rows of the 13 tables, filled scene by scene."""

    def __init__(self, seed: int):
        self.seed = seed
        self.rows: dict[str, list[dict]] = {name: [] for name in TABLE_NAMES}
        self.category_tokens = {name: self.token("category", name) for name in CATEGORY_NAMES}
        self.attribute_tokens = {name: self.token("attribute", name) for name in ATTRIBUTE_NAMES}
        self.sensor_tokens = {channel: self.token("sensor", channel) for channel in MOUNTS}
        self.rows["category"] = [
            {"token": self.category_tokens[name], "name": name, "description": description, "index": index}
            for index, (name, description) in enumerate(CATEGORIES)
        ]
        self.rows["attribute"] = [
            {"token": self.attribute_tokens[name], "name": name, "description": description}
            for name, description in ATTRIBUTES
        ]
        self.rows["visibility"] = visibility_records()
        self.rows["sensor"] = [
            {"token": self.sensor_tokens[channel], "channel": channel, "modality": mount.modality}
            for channel, mount in MOUNTS.items()
        ]

    def token(self, *parts: object) -> str:
        return table_token(self.seed, *parts)


def _check_scene(scene: SceneLog) -> None:
    """Raise ValueError, naming the scene, for anything nuScenes could not represent."""
    check_can_bus_scene_name(scene.name)
    timestamps = [capture.timestamp_us for capture in scene.captures]
    if timestamps != sorted(timestamps):
        raise ValueError(f"{scene.name}: captures are not sorted by time")
    keyframe_times = [keyframe.timestamp_us for keyframe in scene.keyframes]
    if not keyframe_times or keyframe_times != sorted(set(keyframe_times)):
        raise ValueError(f"{scene.name}: keyframes must be non-empty, sorted and at distinct times")
    unknown = {capture.channel for capture in scene.captures} - set(MOUNTS)
    if unknown:
        raise ValueError(f"{scene.name}: captures from unknown channels {sorted(unknown)}")
    lidar_keyframes = [
        c.timestamp_us for c in scene.captures if c.channel == LIDAR_CHANNEL and c.is_key_frame
    ]
    if lidar_keyframes != keyframe_times:
        raise ValueError(f"{scene.name}: the LIDAR_TOP key-frame captures do not match the keyframe times")
    _keyframe_assignment(scene, keyframe_times)
    categories: dict[int, str] = {}
    for keyframe in scene.keyframes:
        instance_ids = [obj.instance_id for obj in keyframe.objects]
        if len(set(instance_ids)) != len(instance_ids):
            raise ValueError(f"{scene.name}: an instance appears twice at {keyframe.timestamp_us}")
        for obj in keyframe.objects:
            if obj.category not in CATEGORY_NAMES:
                raise ValueError(f"{scene.name}: unknown nuScenes category {obj.category!r}")
            if obj.attribute and obj.attribute not in ATTRIBUTE_NAMES:
                raise ValueError(f"{scene.name}: unknown nuScenes attribute {obj.attribute!r}")
            if categories.setdefault(obj.instance_id, obj.category) != obj.category:
                raise ValueError(f"{scene.name}: instance {obj.instance_id} changes category")


def _keyframe_assignment(scene: SceneLog, sample_times: list[int]) -> dict[tuple[str, int], int]:
    """Sample index of every key-frame capture: the sample nearest in time; one per sample and channel."""
    assignment = {}
    for channel in sorted({capture.channel for capture in scene.captures}):
        keyframes = [c.timestamp_us for c in scene.captures if c.channel == channel and c.is_key_frame]
        samples = [int(np.argmin(np.abs(np.asarray(sample_times) - time))) for time in keyframes]
        if sorted(samples) != list(range(len(sample_times))):
            raise ValueError(
                f"{scene.name}: {channel} needs exactly one key-frame capture nearest to each of the "
                f"{len(sample_times)} keyframes, got key frames at {keyframes}"
            )
        assignment.update({(channel, time): sample for time, sample in zip(keyframes, samples, strict=True)})
    return assignment


def _link_chain(records: list[dict]) -> None:
    """Set ``prev``/``next`` along ``records`` (already in time order)."""
    for index, record in enumerate(records):
        record["prev"] = records[index - 1]["token"] if index > 0 else ""
        record["next"] = records[index + 1]["token"] if index + 1 < len(records) else ""


def _write_scene(tables: _Tables, dataroot: Path, scene: SceneLog, log_token: str) -> None:
    rows, token = tables.rows, tables.token
    sample_times = [keyframe.timestamp_us for keyframe in scene.keyframes]
    scene_token = token("scene", scene.name)
    samples = [
        {
            "token": token("sample", scene.name, time),
            "timestamp": time,
            "prev": "",
            "next": "",
            "scene_token": scene_token,
        }
        for time in sample_times
    ]
    _link_chain(samples)
    rows["sample"].extend(samples)

    calibrated = {}
    for channel in dict.fromkeys(capture.channel for capture in scene.captures):
        mount: SensorMount = MOUNTS[channel]
        calibrated[channel] = {
            "token": token("calibrated_sensor", scene.name, channel),
            "sensor_token": tables.sensor_tokens[channel],
            "translation": [float(value) for value in mount.translation],
            "rotation": [float(value) for value in mount.rotation],
            "camera_intrinsic": [],
        }
        rows["calibrated_sensor"].append(calibrated[channel])

    keyframe_sample = _keyframe_assignment(scene, sample_times)
    chains: dict[str, list[dict]] = defaultdict(list)
    keyframe_points: dict[tuple[str, int], np.ndarray] = {}  # (channel, sample index) -> (N, 3) global points
    for capture in scene.captures:
        ego_pose = {
            "token": token("ego_pose", scene.name, capture.channel, capture.timestamp_us),
            "timestamp": capture.timestamp_us,
            "rotation": yaw_quaternion(capture.ego.yaw),
            "translation": [float(capture.ego.position[0]), float(capture.ego.position[1]), 0.0],
        }
        rows["ego_pose"].append(ego_pose)
        if capture.is_key_frame:
            sample_index = keyframe_sample[(capture.channel, capture.timestamp_us)]
            xyz = np.asarray(capture.data, dtype=np.float64)[:, :3]  # (N, 3) sensor frame
            to_global = _sensor_to_global(ego_pose, calibrated[capture.channel])
            keyframe_points[(capture.channel, sample_index)] = xyz @ to_global[:3, :3].T + to_global[:3, 3]
        else:
            # The nuScenes convention: a sweep belongs to the sample that follows it closest in time
            # (sweeps after the last keyframe, to the last sample).
            sample_index = min(bisect.bisect_left(sample_times, capture.timestamp_us), len(samples) - 1)
        filename = sensor_data_filename(scene.log_name, capture)
        record = {
            "token": token("sample_data", scene.name, capture.channel, capture.timestamp_us),
            "sample_token": samples[sample_index]["token"],
            "ego_pose_token": ego_pose["token"],
            "calibrated_sensor_token": calibrated[capture.channel]["token"],
            "timestamp": capture.timestamp_us,
            "fileformat": "pcd",
            "is_key_frame": bool(capture.is_key_frame),
            "height": 0,
            "width": 0,
            "filename": filename,
        }
        chains[capture.channel].append(record)
        rows["sample_data"].append(record)
        path = dataroot / filename
        path.parent.mkdir(parents=True, exist_ok=True)
        writer = write_lidar_bin if MOUNTS[capture.channel].modality == "lidar" else write_radar_pcd
        writer(path, capture.data)
    for chain in chains.values():
        _link_chain(chain)

    _write_annotations(tables, scene, samples, keyframe_points)
    rows["scene"].append(
        {
            "token": scene_token,
            "log_token": log_token,
            "nbr_samples": len(samples),
            "first_sample_token": samples[0]["token"],
            "last_sample_token": samples[-1]["token"],
            "name": scene.name,
            "description": scene.description,
        }
    )


def _annotation_record(tables: _Tables, scene: SceneLog, sample: dict, obj: ObjectState) -> tuple[dict, Box]:
    cx, cy, cz, length, width, height, yaw = (float(value) for value in obj.box)
    record = {
        "token": tables.token("sample_annotation", scene.name, obj.instance_id, sample["timestamp"]),
        "sample_token": sample["token"],
        "instance_token": tables.token("instance", scene.name, obj.instance_id),
        "visibility_token": visibility_token(float(getattr(obj, "visibility", 1.0))),
        "attribute_tokens": [tables.attribute_tokens[obj.attribute]] if obj.attribute else [],
        "translation": [cx, cy, cz],
        "size": [width, length, height],  # nuScenes orders box sizes w, l, h
        "rotation": yaw_quaternion(yaw),
        "prev": "",
        "next": "",
        "num_lidar_pts": 0,
        "num_radar_pts": 0,
    }
    box = Box(record["translation"], record["size"], Quaternion(record["rotation"]))
    return record, box


def _write_annotations(
    tables: _Tables, scene: SceneLog, samples: list[dict], keyframe_points: dict[tuple[str, int], np.ndarray]
) -> None:
    """``sample_annotation`` and ``instance`` rows, with point counts from the keyframe sweeps."""
    tracks: dict[int, list[dict]] = {}
    categories: dict[int, str] = {}
    radar_channels = [channel for channel, mount in MOUNTS.items() if mount.modality == "radar"]
    for sample_index, (sample, keyframe) in enumerate(zip(samples, scene.keyframes, strict=True)):
        lidar_points = PointsInBoxCounter(keyframe_points[(LIDAR_CHANNEL, sample_index)])
        radar_sweeps = [
            keyframe_points[(c, sample_index)] for c in radar_channels if (c, sample_index) in keyframe_points
        ]
        radar_points = PointsInBoxCounter(np.concatenate(radar_sweeps) if radar_sweeps else np.zeros((0, 3)))
        for obj in keyframe.objects:
            categories[obj.instance_id] = obj.category
            record, box = _annotation_record(tables, scene, sample, obj)
            record["num_lidar_pts"] = lidar_points.count(box)
            # As in nuScenes: summed over all radars, without the devkit's default radar filters.
            record["num_radar_pts"] = radar_points.count(box)
            tracks.setdefault(obj.instance_id, []).append(record)
            tables.rows["sample_annotation"].append(record)
    for instance_id, track in tracks.items():
        _link_chain(track)
        tables.rows["instance"].append(
            {
                "token": track[0]["instance_token"],
                "category_token": tables.category_tokens[categories[instance_id]],
                "nbr_annotations": len(track),
                "first_annotation_token": track[0]["token"],
                "last_annotation_token": track[-1]["token"],
            }
        )


def _write_table(path: Path, rows: list[dict]) -> None:
    with path.open("w") as file:
        json.dump(rows, file, indent=0)  # nuScenes tables: one key per line, no indentation


def _check_inputs(towns: list[TownMap], scenes: list[SceneLog]) -> dict[str, TownMap]:
    """Validate everything before the first file is written; returns the towns by location."""
    towns_by_location = {}
    for town in towns:
        if town.location not in LOCATIONS or town.location in towns_by_location:
            raise ValueError(f"towns need distinct locations among {LOCATIONS}; {town.location!r} is not")
        towns_by_location[town.location] = town
    names = [scene.name for scene in scenes]
    if len(set(names)) != len(names):
        raise ValueError("scene names must be unique")
    log_locations: dict[str, str] = {}
    filenames: set[str] = set()
    for scene in scenes:
        if scene.location not in towns_by_location:
            raise ValueError(f"{scene.name}: no town for location {scene.location!r}")
        if log_locations.setdefault(scene.log_name, scene.location) != scene.location:
            raise ValueError(f"{scene.name}: log {scene.log_name} is already in another location")
        _check_scene(scene)
        for capture in scene.captures:
            filename = sensor_data_filename(scene.log_name, capture)
            if filename in filenames:
                raise ValueError(
                    f"{scene.name}: two captures of log {scene.log_name} would both be {filename}"
                )
            filenames.add(filename)
    return towns_by_location


def write_nuscenes(
    dataroot: Path, version: str, towns: list[TownMap], scenes: list[SceneLog], seed: int
) -> None:
    """Write a complete nuScenes dataroot.

    Everything is validated before the first file is written. Files already in ``dataroot`` are left in
    place (overwritten where names coincide), so give it an empty folder.

    Args:
        dataroot: destination folder (created if needed).
        version: table folder name, e.g. ``v1.0-mini``.
        towns: at most one per location; every scene's location needs one.
        scenes: the drives, each becoming one nuScenes scene; scenes sharing a ``log_name`` share a log.
        seed: dataset seed, part of every token.
    """
    dataroot = Path(dataroot)
    towns_by_location = _check_inputs(towns, scenes)
    tables = _Tables(seed)
    for scene in scenes:
        log_token = tables.token("log", scene.log_name)
        if all(log["token"] != log_token for log in tables.rows["log"]):
            first_time = scene.captures[0].timestamp_us if scene.captures else scene.keyframes[0].timestamp_us
            date = datetime.fromtimestamp(first_time * 1e-6, tz=timezone.utc).strftime("%Y-%m-%d")
            tables.rows["log"].append(
                {
                    "token": log_token,
                    "logfile": scene.log_name,
                    "vehicle": VEHICLE_NAME,
                    "date_captured": date,
                    "location": scene.location,
                }
            )
        _write_scene(tables, dataroot, scene, log_token)
        write_can_bus(dataroot, scene.name, scene.can_bus)

    for location, town in towns_by_location.items():
        write_map_expansion(dataroot, town, seed)
        write_semantic_prior(dataroot, town)
        map_token = SEMANTIC_PRIOR_TOKENS[location]
        tables.rows["map"].append(
            {
                "category": "semantic_prior",
                "token": map_token,
                "filename": semantic_prior_filename(location),
                "log_tokens": [log["token"] for log in tables.rows["log"] if log["location"] == location],
            }
        )

    table_folder = dataroot / version
    table_folder.mkdir(parents=True, exist_ok=True)
    for name, rows in tables.rows.items():
        _write_table(table_folder / f"{name}.json", rows)
