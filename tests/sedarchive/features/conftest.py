"""Feature tests run torch on one thread: on a shared 2-core machine two spinning OpenMP threads
are ten times slower than one, and the Dask workers the results are compared with use one."""
from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def one_torch_thread():
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
