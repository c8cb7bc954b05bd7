"""Workers start without Dask's ``MALLOC_TRIM_THRESHOLD_=65536`` (issue 16): read from real workers."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from sedarchive.dask import environ
from sedarchive.dask.recipes import kubernetes_spec, load_recipe, slurm_groups
from sedarchive.dask.startup import start_cluster
from sedarchive.dask.tasks import dask_client

DEPLOY = Path(__file__).resolve().parents[3] / "deploy"


def _envs(client) -> list[dict[str, str | None]]:
    """Each worker's own ``os.environ`` values (``os.getenv`` runs in the worker process)."""
    by_name = {k: client.run(os.getenv, k) for k in ("MALLOC_TRIM_THRESHOLD_", "OMP_NUM_THREADS")}
    return [{k: values[w] for k, values in by_name.items()} for w in sorted(by_name["OMP_NUM_THREADS"])]


def test_plain_dask_workers_get_the_trim_but_sedarchive_workers_do_not():
    """The control first (a plain LocalCluster has it), then the local cluster of ``dask_client``."""
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=1, threads_per_worker=1, dashboard_address=":0", silence_logs=40) as cluster, \
            Client(cluster) as client:
        assert _envs(client) == [{"MALLOC_TRIM_THRESHOLD_": "65536", "OMP_NUM_THREADS": "1"}]
    with dask_client(n_workers=1, quiet=True) as client:  # after the control: nothing leaks from it
        assert _envs(client) == [{"MALLOC_TRIM_THRESHOLD_": None, "OMP_NUM_THREADS": "1"}]


def test_local_recipe_workers_have_no_trim(tmp_path):
    recipe = tmp_path / "local.yaml"
    recipe.write_text(yaml.safe_dump({"kind": "local", "workers": 1}))
    from distributed import Client

    with start_cluster(recipe) as cluster, Client(cluster) as client:
        assert _envs(client) == [{"MALLOC_TRIM_THRESHOLD_": None, "OMP_NUM_THREADS": "1"}]


def test_a_nanny_started_elsewhere_with_the_recipe_variable_has_no_trim():
    """What a SLURM job or a Kubernetes pod runs: ``dask worker`` with :data:`environ.ENV_NAME` set."""
    from distributed import Client, LocalCluster

    env = {k: v for k, v in os.environ.items() if k != "MALLOC_TRIM_THRESHOLD_"}
    env[environ.ENV_NAME] = environ.ENV_VALUE
    with LocalCluster(n_workers=0, dashboard_address=":0", silence_logs=40) as cluster, Client(cluster) as client:
        worker = subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_worker", cluster.scheduler_address,
                                   "--nthreads", "1", "--no-dashboard"], env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            client.wait_for_workers(1, timeout=60)
            assert _envs(client) == [{"MALLOC_TRIM_THRESHOLD_": None, "OMP_NUM_THREADS": "1"}]
        finally:
            worker.terminate()
            deadline = time.monotonic() + 30
            while worker.poll() is None and time.monotonic() < deadline:
                time.sleep(0.1)
            if worker.poll() is None:
                worker.kill()


def test_slurm_jobs_and_kubernetes_pods_carry_the_variable():
    _, groups = slurm_groups(load_recipe(DEPLOY / "slurm.yaml"))
    assert all(g.job_kwargs["job_script_prologue"][-1] == environ.prologue_line() for g in groups)
    cluster, extra = kubernetes_spec(load_recipe(DEPLOY / "kubernetes.yaml"))
    for worker in [cluster["spec"]["worker"], *(g["spec"]["worker"] for g in extra)]:
        for container in worker["spec"]["containers"]:
            assert {"name": environ.ENV_NAME, "value": environ.ENV_VALUE} in container["env"]


def test_slurm_job_script_exports_the_variable():
    SLURMJob = pytest.importorskip("dask_jobqueue.slurm", reason="the deploy extra (dask-jobqueue) is not installed").SLURMJob

    _, groups = slurm_groups(load_recipe(DEPLOY / "slurm.yaml"))
    script = SLURMJob(scheduler="tcp://login:8786", name="w", **groups[0].job_kwargs).job_script()
    assert environ.prologue_line() in script
