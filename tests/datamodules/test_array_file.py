"""Array files: named arrays behind a JSON header, read back whole or in part as memory-mapped views."""

from pathlib import Path

import numpy as np
import pytest

from datamodules.array_file import array_file_bytes, read_array_file


def _arrays() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {
        "features": rng.normal(size=(57, 10)).astype(np.float32),
        "coords": rng.integers(0, 1024, size=(57, 3)).astype(np.int16),
        "valid": np.array([True, False, True]),
        "empty": np.zeros((0, 7), np.float32),
        "pose": np.eye(4)[None].repeat(2, 0),
    }


def test_arrays_and_meta_come_back_exactly(tmp_path: Path):
    path = tmp_path / "sample.bin"
    path.write_bytes(array_file_bytes(_arrays(), {"future_tokens": ["a", ""]}))
    arrays, meta = read_array_file(path)
    assert meta == {"future_tokens": ["a", ""]}
    assert list(arrays) == list(_arrays())
    for name, expected in _arrays().items():
        assert arrays[name].dtype == expected.dtype and arrays[name].shape == expected.shape, name
        np.testing.assert_array_equal(arrays[name], expected)
    arrays["features"][0, 0] = 123.0  # private mapping: writable, the file is untouched
    assert read_array_file(path)[0]["features"][0, 0] == _arrays()["features"][0, 0]


def test_named_arrays_only(tmp_path: Path):
    path = tmp_path / "sample.bin"
    path.write_bytes(array_file_bytes(_arrays()))
    arrays, _ = read_array_file(path, ("coords", "pose"))
    assert list(arrays) == ["coords", "pose"]
    np.testing.assert_array_equal(arrays["pose"], _arrays()["pose"])
    with pytest.raises(ValueError, match="no arrays \\['nothing'\\]"):
        read_array_file(path, ("nothing",))


@pytest.mark.parametrize("keep", [0, 5, 200, -16])
def test_truncated_or_garbled_files_are_named(tmp_path: Path, keep: int):
    path = tmp_path / "broken.bin"
    content = array_file_bytes(_arrays())
    path.write_bytes(content[:keep])
    with pytest.raises(ValueError, match=r"broken\.bin"):
        read_array_file(path)
