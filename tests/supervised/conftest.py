"""Supervised pretraining tests use the JEPA tests' structured scenes and small networks, and run single-threaded (as
the JEPA tests do, for the same reason: OpenMP threads that wait for each other on a shared 2-core machine)."""

import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "jepa"))


@pytest.fixture(autouse=True)
def single_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
