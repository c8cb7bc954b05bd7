"""Starting a recipe's cluster and waiting for its workers, with one-line reasons when it goes wrong.

:func:`start_cluster` starts what a recipe (:mod:`sedarchive.dask.recipes`) describes: a
``LocalCluster``, a ``SpecCluster`` of SSH processes, or a ``SpecCluster`` of SLURM batch jobs made
by dask-jobqueue's public job class (one scheduler, each worker group with its own job options).

A cluster that cannot start (a missing ``known_hosts`` file, a ``remote_python`` that does not
exist on a host, an ``sbatch`` that refuses the job, an ``interface`` this host does not have)
raises :class:`ClusterStartError` with one line naming the recipe and the cause. A cluster whose
workers never connect (a batch job that stays pending or dies at once) is given the recipe's
``worker_timeout`` seconds; then the error names the recipe, the job ids, their SLURM state
(``squeue``, else ``sacct``) and the file where each job's worker writes its log.

A worker group that declares ``resources: {GPU: ...}`` is waited for as long; when none of its
workers has come by then, the recipe's ``gpu_fallback`` decides: ``cpu`` (default) cancels its
jobs and says that training and encoding run on the CPU workers, ``stop`` ends the run.
"""
from __future__ import annotations

import contextlib
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from catalog.errors import SedarchiveError
from sedarchive.dask.recipes import (
    EXTRA_HINT,
    Recipe,
    RecipeError,
    kubernetes_spec,
    load_recipe,
    local_kwargs,
    scheduler_interface,
    slurm_spec,
    ssh_spec,
)

#: Seconds to wait for the first worker (and for a GPU worker) unless the recipe says otherwise.
WORKER_TIMEOUT = 300.0


class ClusterStartError(SedarchiveError):
    """A recipe's cluster did not start, or its workers did not connect in time."""


def _require(recipe: Recipe, module: str) -> Any:
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        package, hint = EXTRA_HINT[recipe.kind]
        raise RecipeError(f"{recipe.path}: the {recipe.kind} recipe needs {package}, which is not installed; "
                          f"install it with: {hint}") from None


@contextlib.contextmanager
def start_cluster(path: str | Path) -> Iterator[Any]:
    """Start the cluster a recipe describes, yield it, and shut it down on leaving.

    Raises
    ------
    RecipeError
        A bad recipe, or a stack that is not installed.
    ClusterStartError
        The cluster did not start (one line: the recipe, and the innermost cause).

    Examples
    --------
    >>> with start_cluster("deploy/local.yaml") as cluster:  # doctest: +SKIP
    ...     print(cluster.dashboard_link)
    """
    from sedarchive.dask.environ import worker_config

    recipe = load_recipe(path)
    try:
        with worker_config():  # local and SSH workers without Dask's MALLOC_TRIM_THRESHOLD_
            cluster = _start(recipe)
    except SedarchiveError:
        raise
    except Exception as err:  # noqa: BLE001 - every start-up failure becomes one line
        hint = ""
        if recipe.kind == "ssh":  # a worker that cannot start says so only on its host: name the suspects
            hosts = sorted({h for g in recipe.options["worker_groups"].values() for h in g["hosts"]})
            hint = (f" (check remote_python {recipe.options.get('remote_python') or 'default: this python'} "
                    f"and sedarchive on {recipe.options['scheduler']}, {', '.join(hosts)})")
        raise ClusterStartError(f"{recipe.path}: the {recipe.kind} cluster did not start: "
                                f"{start_reason(err)}{hint}") from None
    with cluster:
        yield cluster


def _start(recipe: Recipe) -> Any:
    if recipe.kind == "local":
        from distributed import LocalCluster

        return LocalCluster(**local_kwargs(recipe))
    if recipe.kind == "ssh":
        _require(recipe, "asyncssh")
        from distributed import SpecCluster

        _check_ssh_files(recipe)
        scheduler, workers = ssh_spec(recipe)
        return SpecCluster(workers, scheduler, name="SSHCluster", silence_logs=40)
    if recipe.kind == "slurm":
        jobqueue = _require(recipe, "dask_jobqueue")
        from distributed import SpecCluster

        check_interface(recipe.where("interface"), scheduler_interface(recipe))
        scheduler, workers = slurm_spec(recipe, jobqueue.SLURMCluster.job_cls)
        return SpecCluster(workers, scheduler, name="SLURMCluster", silence_logs=40)
    operator = _require(recipe, "dask_kubernetes.operator")
    spec, groups = kubernetes_spec(recipe)
    cluster = operator.KubeCluster(custom_cluster_spec=spec, namespace=recipe.options.get("namespace"))
    try:
        prefix = spec["metadata"]["name"] + "-"
        for doc in groups:
            name = doc["metadata"]["name"]
            cluster.add_worker_group(name[len(prefix):] if name.startswith(prefix) else name,
                                     custom_spec=doc["spec"]["worker"])
    except BaseException:
        cluster.close()
        raise
    return cluster


def _check_ssh_files(recipe: Recipe) -> None:
    """The ``known_hosts`` and ``client_keys`` files the recipe names exist here (checked at start-up)."""
    connect = recipe.options.get("connect_options") or {}
    keys = connect.get("client_keys") or []
    files = [("known_hosts", connect.get("known_hosts"))] + [("client_keys", k) for k in keys if isinstance(k, str)]
    for key, value in files:
        if isinstance(value, str) and not Path(value).expanduser().is_file():
            raise RecipeError(f"{recipe.where(f'connect_options.{key}')}: no file {value} on this host")


def start_reason(err: BaseException) -> str:
    """One line for a failure of a cluster's start-up: the innermost cause, its error line first.

    ``SpecCluster`` wraps what went wrong ("Cluster failed to start: ..."), and a failed ``sbatch``
    is a multi-line message whose useful line is the one saying ``error``.
    """
    while err.__cause__ is not None or (err.__context__ is not None and not err.__suppress_context__):
        err = err.__cause__ or err.__context__
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    said = next((line for line in lines if "error" in line.lower() and not line.lower().startswith("command")), None)
    text = said or (lines[0] if lines else "")
    text = text.removeprefix("Cluster failed to start: ")
    return f"{err.__class__.__name__}: {text}" if not said else text


def check_interface(where: str, name: str | None) -> None:
    """Fail with the interfaces this host has when ``name`` is not one of them."""
    if not name:
        return
    import psutil

    names = sorted(psutil.net_if_addrs())
    if name not in names:
        raise ClusterStartError(f"{where}: network interface {name!r} does not exist on this host "
                                f"(interfaces here: {', '.join(names)})")


def gpu_groups(recipe: Any) -> list[str]:
    """Names of the recipe's worker groups that declare a GPU resource."""
    groups = recipe.options.get("worker_groups") or {}
    return [name for name, group in groups.items() if (group.get("resources") or {}).get("GPU")]


def wait_for_workers(client: Any, cluster: Any, recipe: Any, say: Callable[[str], None]) -> None:
    """Wait for the first worker, then for a GPU worker when the recipe declares a GPU group.

    Raises
    ------
    ClusterStartError
        When no worker connects within the recipe's ``worker_timeout`` (or every batch job has
        already ended), or when no GPU worker came and the recipe's ``gpu_fallback`` is ``stop``.
    """
    timeout = float(recipe.options.get("worker_timeout", WORKER_TIMEOUT))
    start = time.monotonic()
    slurm = recipe.kind == "slurm"
    while not _workers(client):
        ended = slurm and _all_ended(_slurm_jobs(cluster))
        if ended or time.monotonic() - start > timeout:
            why = "and every batch job has ended" if ended else f"within {timeout:g} s (worker_timeout)"
            raise ClusterStartError(f"{recipe.path}: no Dask worker connected {why}; {_where_to_look(cluster, recipe)}")
        time.sleep(0.5)
    gpu = gpu_groups(recipe)
    if not gpu:
        return
    while not any(w.get("resources", {}).get("GPU", 0) > 0 for w in _workers(client).values()):
        jobs = {name: job for name, job in _slurm_jobs(cluster).items() if name.rsplit("-", 1)[0] in gpu}
        if time.monotonic() - start > timeout or (slurm and _all_ended(jobs)):
            where = _where_to_look(cluster, recipe, only=set(jobs)) if slurm else f"groups {', '.join(gpu)}"
            if recipe.options.get("gpu_fallback", "cpu") == "stop":
                # no job object may stay referenced by this frame (the traceback keeps it): the
                # cluster's close asserts that every job it still knows of has been closed
                jobs.clear()
                raise ClusterStartError(f"{recipe.path}: no GPU worker connected within {timeout:g} s and "
                                        f"gpu_fallback is stop; {where}")
            for job in jobs.values():
                cluster.sync(job.close)  # cancel: a GPU worker arriving mid-run would change where work goes
            say(f"dask: no GPU worker within {timeout:g} s ({where}); training and encoding run on the CPU workers "
                f"(recipe gpu_fallback: cpu)")
            return
        time.sleep(0.5)


def _workers(client: Any) -> dict[str, Any]:
    return client.scheduler_info(n_workers=-1).get("workers", {})


def _slurm_jobs(cluster: Any) -> dict[str, Any]:
    """The batch jobs of a SLURM cluster, by worker-spec name (those that were submitted)."""
    return {name: job for name, job in getattr(cluster, "workers", {}).items() if getattr(job, "job_id", None)}


def slurm_state(job_id: str) -> str:
    """The job's state from ``squeue`` (running or pending jobs), else ``sacct``, else ``unknown``."""
    for cmd in (["squeue", "-h", "--states=all", "-j", job_id, "-o", "%T"],
                ["sacct", "-n", "-X", "-P", "-j", job_id, "-o", "State"]):
        if not shutil.which(cmd[0]):
            continue
        try:
            out = subprocess.run(cmd, capture_output=True, text=True, timeout=10).stdout.split()
        except (OSError, subprocess.SubprocessError):
            continue
        if out:
            return out[0]
    return "unknown"


_ENDED = {"FAILED", "CANCELLED", "COMPLETED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY", "BOOT_FAIL", "DEADLINE",
          "PREEMPTED"}


def _all_ended(jobs: dict[str, Any]) -> bool:
    return bool(jobs) and all(slurm_state(str(job.job_id)).split()[0].rstrip("+") in _ENDED for job in jobs.values())


def slurm_log(job: Any) -> Path:
    """Where a SLURM job's worker writes its output (``log_directory``, else sbatch's default)."""
    folder = getattr(job, "log_directory", None)
    if folder:
        return Path(folder).resolve() / f"{job.job_name or 'worker'}-{job.job_id}.err"
    return Path.cwd() / f"slurm-{job.job_id}.out"


def _where_to_look(cluster: Any, recipe: Any, only: set[str] | None = None) -> str:
    if recipe.kind == "slurm":
        jobs = {n: j for n, j in _slurm_jobs(cluster).items() if only is None or n in only}
        if not jobs:
            return "no batch job was submitted"
        shown = [f"job {job.job_id} {slurm_state(str(job.job_id))}, log {slurm_log(job)}" for job in jobs.values()]
        return "; ".join(shown[:3]) + (f"; and {len(shown) - 3} more" if len(shown) > 3 else "") + \
            " (see squeue/sacct -j ID)"
    if recipe.kind == "ssh":
        return "the workers' output is in this command's log (ssh); check remote_python and the hosts"
    if recipe.kind == "kubernetes":
        return "see kubectl get pods and kubectl logs for the worker pods"
    return "the local workers did not start (see the messages above)"
