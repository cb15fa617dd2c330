"""CAN bus files of the nuScenes CAN bus expansion, as ``nuscenes.can_bus.can_bus_api.NuScenesCanBus`` reads.

Per scene, ``can_bus/<scene_name>_<message>.json`` for ``pose`` (50 Hz) and ``steeranglefeedback``
(100 Hz), plus the two derived files the API also serves: ``route`` (the driven path as a polyline of
[x, y] map points) and ``meta`` (per-message statistics).
"""

import json
import re
from pathlib import Path

import numpy as np

from bevjepa.sim.types import CanBusLog

# Scenes NuScenesCanBus refuses outright because real nuScenes has no CAN bus data for them.
CAN_BUS_BLACKLIST = frozenset((*range(161, 169), *range(170, 177), *range(309, 315)))
_SCENE_NAME = re.compile(r"^scene-\d{4}$")
_POSE_KEYS = ("accel", "orientation", "pos", "rotation_rate", "utime", "vel")
_POSE_VECTOR_SIZES = {"accel": 3, "orientation": 4, "pos": 3, "rotation_rate": 3, "vel": 3}
ROUTE_SPACING_M = 2.0


def check_can_bus_scene_name(scene_name: str) -> None:
    """Raise ValueError unless NuScenesCanBus can serve ``scene_name``.

    Args:
        scene_name: must be ``scene-NNNN`` and not one of the scene numbers the devkit blacklists.
    """
    if not _SCENE_NAME.match(scene_name):
        raise ValueError(
            f"scene name {scene_name!r} is not of the form 'scene-NNNN' that NuScenesCanBus needs"
        )
    if int(scene_name[-4:]) in CAN_BUS_BLACKLIST:
        raise ValueError(
            f"{scene_name} is on NuScenesCanBus' list of scenes without CAN bus data; "
            f"pick a scene number outside {sorted(CAN_BUS_BLACKLIST)}"
        )


def can_bus_scene_names(count: int, first_number: int = 1) -> list[str]:
    """``count`` scene names ``scene-NNNN`` numbered upwards, skipping the devkit's CAN bus blacklist.

    Args:
        count: how many names.
        first_number: the lowest scene number to use.

    Returns:
        Names usable for scenes that carry CAN bus data.
    """
    names = []
    number = first_number
    while len(names) < count:
        if number > 9999:
            raise ValueError(f"cannot name {count} scenes from scene-{first_number:04d} within scene-9999")
        if number not in CAN_BUS_BLACKLIST:
            names.append(f"scene-{number:04d}")
        number += 1
    return names


def _pose_message(message: dict) -> dict:
    missing = set(_POSE_KEYS) - set(message)
    if missing:
        raise ValueError(f"pose message lacks {sorted(missing)}")
    record = {"utime": int(message["utime"])}
    for key, size in _POSE_VECTOR_SIZES.items():
        values = [float(value) for value in np.asarray(message[key], dtype=np.float64).reshape(-1)]
        if len(values) != size:
            raise ValueError(f"pose message field {key!r} must have {size} values, got {len(values)}")
        record[key] = values
    return dict(sorted(record.items()))


def _steer_message(message: dict) -> dict:
    return {"utime": int(message["utime"]), "value": float(message["value"])}


def _route(pose_messages: list[dict]) -> list[list[float]]:
    """The driven path resampled every ``ROUTE_SPACING_M`` metres, first and last pose included."""
    positions = np.array([message["pos"][:2] for message in pose_messages], dtype=np.float64)  # (P, 2)
    if len(positions) == 0:
        return []
    travelled = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(positions, axis=0), axis=1))])
    marks = np.arange(0.0, travelled[-1], ROUTE_SPACING_M)
    route = np.stack(
        [np.interp(marks, travelled, positions[:, 0]), np.interp(marks, travelled, positions[:, 1])], 1
    )
    route = np.concatenate([route, positions[-1:]], axis=0)  # (R, 2)
    return [[float(x), float(y)] for x, y in route]


def _message_stats(messages: list[dict]) -> dict:
    """Count, rate and time span of a message stream, plus min/max/mean of every numeric field."""
    utimes = np.array([message["utime"] for message in messages], dtype=np.int64)
    span_s = float(utimes[-1] - utimes[0]) * 1e-6 if len(utimes) else 0.0
    stats = {
        "message_count": len(messages),
        "message_freq": (len(messages) - 1) / span_s if span_s > 0 else 0.0,
        "timespan": span_s,
        "var_stats": {},
    }
    for key in sorted(messages[0]) if messages else ():
        if key == "utime":
            continue
        values = np.array([message[key] for message in messages], dtype=np.float64)
        stats["var_stats"][key] = {
            "max": np.max(values, axis=0).tolist(),
            "mean": np.mean(values, axis=0).tolist(),
            "min": np.min(values, axis=0).tolist(),
        }
    return stats


def write_can_bus(dataroot: Path, scene_name: str, can_bus: CanBusLog) -> list[Path]:
    """Write one scene's CAN bus files under ``dataroot/can_bus``.

    Args:
        dataroot: the nuScenes dataroot.
        scene_name: ``scene-NNNN``, not on the devkit's blacklist.
        can_bus: the scene's streams; pose ``pos`` is global, the other vectors are in the ego frame.

    Returns:
        The written files.
    """
    check_can_bus_scene_name(scene_name)
    pose = [_pose_message(message) for message in can_bus.pose]
    steering = [_steer_message(message) for message in can_bus.steeranglefeedback]
    for name, messages in (("pose", pose), ("steeranglefeedback", steering)):
        utimes = [message["utime"] for message in messages]
        if utimes != sorted(utimes):
            raise ValueError(f"{scene_name}: {name} messages are not sorted by utime")
    folder = dataroot / "can_bus"
    folder.mkdir(parents=True, exist_ok=True)
    contents = {
        "meta": {"pose": _message_stats(pose), "steeranglefeedback": _message_stats(steering)},
        "pose": pose,
        "route": _route(pose),
        "steeranglefeedback": steering,
    }
    paths = []
    for message_name, content in contents.items():
        path = folder / f"{scene_name}_{message_name}.json"
        path.write_text(json.dumps(content))
        paths.append(path)
    return paths
