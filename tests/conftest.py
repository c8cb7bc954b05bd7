"""Fixtures shared by every test: a temporary archive and a small real Dask cluster."""
from __future__ import annotations

import pytest


def _cuda_available() -> bool:
    try:
        import torch

        return torch.cuda.is_available()
    except Exception:  # torch missing or broken: no GPU tests
        return False


def pytest_collection_modifyitems(config, items):
    if _cuda_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU (none on this machine)")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def archive(tmp_path):
    from catalog import Archive

    return Archive.create(tmp_path / "archive")


@pytest.fixture(scope="session")
def dask_client():
    """One LocalCluster (2 worker processes, 1 thread each) shared by the whole session."""
    from distributed import Client, LocalCluster

    from sedarchive.dask.environ import worker_config

    with worker_config():  # workers as sedarchive starts them: without Dask's malloc trim
        cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0",
                               silence_logs=40)
    with cluster, Client(cluster) as client:
        yield client
