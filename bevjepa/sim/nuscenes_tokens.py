"""Deterministic nuScenes tokens: the same seed and content always give the same token.

Table records use the 32-hex-digit tokens of the nuScenes tables; map-expansion records use the
dashed UUID form that the nuScenes map expansion files use.
"""

import hashlib


def _digest(seed: int, parts: tuple) -> str:
    key = "\x1f".join(str(part) for part in (seed, *parts))
    return hashlib.md5(key.encode("utf-8")).hexdigest()


def table_token(seed: int, *parts: object) -> str:
    """A 32-hex-digit token for a table record.

    Args:
        seed: dataset seed, so that different datasets never share tokens.
        parts: what identifies the record, e.g. ``("sample", scene_name, timestamp_us)``.

    Returns:
        32 lowercase hex characters.
    """
    return _digest(seed, parts)


def map_token(seed: int, *parts: object) -> str:
    """A token in the dashed UUID form of nuScenes map-expansion records.

    Args:
        seed: dataset seed.
        parts: what identifies the record, e.g. ``("lane", location, index)``.

    Returns:
        ``xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx``.
    """
    hex_digits = _digest(seed, parts)
    return "-".join((hex_digits[:8], hex_digits[8:12], hex_digits[12:16], hex_digits[16:20], hex_digits[20:]))
