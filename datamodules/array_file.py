"""A file of named numpy arrays behind a JSON header, read whole or in part with one read and no copies.

Layout: 8 bytes little-endian header length, the UTF-8 JSON header ``{"arrays": {name: {"dtype", "shape",
"offset"}}, "meta": {...}}``, then each array's raw bytes in C order at a 64-byte aligned offset from the
start of the file, in the order they were given. Arrays read back are views of a private memory map of the
file: no unpickling, and no copy of the bytes until someone writes to them. Reading into freshly allocated
memory would cost more than the read itself (the kernel zeroes every new page first); mapped page-cache
pages cost neither, and an array that is never touched (e.g. a label nobody asked for) is never read.
"""

import json
import math
import mmap
import os
import struct
from collections.abc import Iterable
from pathlib import Path

import numpy as np

ALIGNMENT = 64
_LENGTH = struct.Struct("<Q")


def _aligned(offset: int) -> int:
    return -(-offset // ALIGNMENT) * ALIGNMENT


def array_file_bytes(arrays: dict[str, np.ndarray], meta: dict | None = None) -> bytes:
    """The file content for ``arrays`` (written in the given order) and JSON-serialisable ``meta``."""
    arrays = {name: np.ascontiguousarray(array) for name, array in arrays.items()}
    entries, offset = {}, 0
    for name, array in arrays.items():
        entries[name] = {"dtype": array.dtype.str, "shape": list(array.shape), "offset": offset}
        offset = _aligned(offset + array.nbytes)
    header = json.dumps({"arrays": entries, "meta": meta or {}}).encode()
    data_start = _aligned(_LENGTH.size + len(header))
    content = bytearray(data_start + offset)
    content[: _LENGTH.size] = _LENGTH.pack(len(header))
    content[_LENGTH.size : _LENGTH.size + len(header)] = header
    for name, array in arrays.items():
        start = data_start + entries[name]["offset"]
        content[start : start + array.nbytes] = array.tobytes()
    return bytes(content)


def read_array_file(
    path: str | Path, names: Iterable[str] | None = None
) -> tuple[dict[str, np.ndarray], dict]:
    """Arrays and meta of an array file.

    Args:
        path: the file.
        names: the arrays wanted (None: all).

    Returns:
        ``(arrays, meta)``; arrays are writable views of a private, copy-on-write memory map of the file.

    Raises:
        ValueError: the file is truncated or its header is malformed, or a name is not in it.
    """
    with open(path, "rb") as file:
        size = os.fstat(file.fileno()).st_size
        if size < _LENGTH.size:
            raise ValueError(f"array file {path} is truncated (no header)")
        mapped = mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_COPY)
    (header_length,) = _LENGTH.unpack(mapped[: _LENGTH.size])
    try:
        header = json.loads(mapped[_LENGTH.size : _LENGTH.size + header_length])
        entries = header["arrays"]
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError) as error:
        raise ValueError(f"array file {path} has a malformed header: {error}") from error
    wanted = list(entries) if names is None else list(names)
    missing = [name for name in wanted if name not in entries]
    if missing:
        raise ValueError(f"array file {path} has no arrays {missing} (it has {list(entries)})")
    data_start = _aligned(_LENGTH.size + header_length)
    arrays = {}
    for name in wanted:
        entry = entries[name]
        dtype, count = np.dtype(entry["dtype"]), math.prod(entry["shape"])
        start = data_start + entry["offset"]
        if start + count * dtype.itemsize > size:
            raise ValueError(f"array file {path} is truncated (array {name!r} ends past its end)")
        arrays[name] = np.frombuffer(mapped, dtype, count, start).reshape(entry["shape"])
    return arrays, header.get("meta", {})
