"""One torch thread for the tests that run spconv and small networks: on a shared 2-core machine, OpenMP
threads that wait for each other make them many times slower than a single thread.

Use in a conftest or test module: ``single_thread = pytest.fixture(autouse=True)(one_torch_thread)``.
"""

from collections.abc import Iterator

import torch


def one_torch_thread() -> Iterator[None]:
    """Run the test with one torch thread, then restore the previous count."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
