"""Supervised pretraining tests use the JEPA tests' structured scenes and small networks, and run single-threaded (as
the JEPA tests do, for the same reason: OpenMP threads that wait for each other on a shared 2-core machine)."""

import sys
from pathlib import Path

import pytest
from torch_threads import one_torch_thread

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "jepa"))


single_thread = pytest.fixture(autouse=True)(one_torch_thread)
