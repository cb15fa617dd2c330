"""JEPA tests run single-threaded: on a shared 2-core machine OpenMP threads that wait for each other make
spconv and small matrix products many times slower than one thread."""

import pytest
from torch_threads import one_torch_thread

single_thread = pytest.fixture(autouse=True)(one_torch_thread)
