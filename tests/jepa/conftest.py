"""JEPA tests run single-threaded: on a shared 2-core machine OpenMP threads that wait for each other make
spconv and small matrix products many times slower than one thread."""

import pytest
import torch


@pytest.fixture(autouse=True)
def single_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
