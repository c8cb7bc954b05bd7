"""Cluster recipes: a small YAML file in ``deploy/`` that says where the Dask workers run.

A recipe names a ``kind`` and that kind's options::

    kind: slurm                 # local | ssh | slurm | kubernetes
    worker_groups:
      cpu: {jobs: 4, cores: 8, memory: 32GB, processes: 8}
      gpu: {jobs: 1, cores: 8, memory: 64GB, processes: 1, resources: {GPU: 1},
            job_extra_directives: ["--gres=gpu:1"]}

:func:`load_recipe` reads and checks a recipe (every mistake is a :class:`RecipeError` naming the
file and the key); the ``*_spec`` functions turn it into the arguments of the cluster classes
without starting anything (so they are testable on a laptop); :func:`cluster_from_recipe` starts
the cluster. The stacks of ``ssh``, ``slurm`` and ``kubernetes`` are imported only then, and a
missing one is an error that names the extra to install.

A worker group that declares ``resources: {GPU: 1}`` receives the training and encoding tasks
(they ask for ``GPU=1``); with no such worker they run on the CPU workers.

Every kind also accepts ``worker_timeout`` (seconds to wait for the first worker, and for a GPU
worker; default 300) and ``gpu_fallback`` (``cpu`` or ``stop``: what happens when the GPU group
never starts). Start-up failures are one-line :class:`~sedarchive.dask.startup.ClusterStartError`
messages (see :mod:`sedarchive.dask.startup`).
"""
from __future__ import annotations

import contextlib
import copy
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from catalog.errors import SedarchiveError
from sedarchive.dask import environ

KINDS = ("local", "ssh", "slurm", "kubernetes")

#: Keys each kind accepts at the top level (besides ``kind``).
_KEYS = {
    "local": {"workers", "threads_per_worker", "memory_limit", "dashboard_address", "resources"},
    "ssh": {"scheduler", "connect_options", "remote_python", "scheduler_options", "worker_groups"},
    "slurm": {"scheduler_options", "common", "worker_groups"},
    "kubernetes": {"spec", "namespace", "name"},
}
#: Keys every kind accepts: how long to wait for workers, and what to do without a GPU worker.
_COMMON_KEYS = {"worker_timeout", "gpu_fallback"}
GPU_FALLBACKS = ("cpu", "stop")
_SSH_GROUP_KEYS = {"hosts", "workers_per_host", "threads_per_worker", "memory_limit", "resources"}
_SLURM_GROUP_KEYS = {"jobs", "resources", "cores", "memory", "processes", "queue", "account", "walltime",
                     "job_extra_directives", "job_script_prologue", "worker_extra_args", "job_mem",
                     "job_cpu", "local_directory", "log_directory", "python", "interface"}
EXTRA_HINT = {
    "ssh": ("asyncssh", "pip install 'sedarchive[deploy]'"),
    "slurm": ("dask_jobqueue", "pip install 'sedarchive[deploy]'"),
    "kubernetes": ("dask_kubernetes", "pip install 'sedarchive[kubernetes]'"),
}


class RecipeError(SedarchiveError):
    """A cluster recipe that cannot be read, is malformed, or needs a stack that is not installed."""


@dataclass(frozen=True)
class Recipe:
    """A checked recipe: its kind, its options, and the file it came from."""

    kind: str
    options: Mapping[str, Any]
    path: Path

    def where(self, key: str) -> str:
        return f"{self.path}: {key}"


@dataclass(frozen=True)
class WorkerGroup:
    """One group of batch jobs (SLURM): how many jobs, and the job's keyword arguments."""

    name: str
    jobs: int
    job_kwargs: dict[str, Any] = field(default_factory=dict)


# -- reading --------------------------------------------------------------------------------------
def load_recipe(path: str | Path) -> Recipe:
    """Read and check a recipe file.

    Raises
    ------
    RecipeError
        When the file is missing, is not YAML, names an unknown kind, or has unknown or wrong keys.
    """
    path = Path(path).expanduser()
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RecipeError(f"no cluster recipe at {path} (see deploy/README.md)") from None
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as err:
        raise RecipeError(f"cannot read cluster recipe {path}: {str(err).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise RecipeError(f"{path}: a cluster recipe is a YAML mapping with a 'kind' key")
    kind = data.pop("kind", None)
    if kind not in KINDS:
        raise RecipeError(f"{path}: kind must be one of {', '.join(KINDS)} (got {kind!r})")
    unknown = sorted(set(data) - _KEYS[kind] - _COMMON_KEYS)
    if unknown:
        raise RecipeError(f"{path}: unknown key {unknown[0]!r} for a {kind} recipe "
                          f"(known: {', '.join(sorted(_KEYS[kind] | _COMMON_KEYS))})")
    recipe = Recipe(kind, data, path.resolve())
    timeout = data.get("worker_timeout", 1)
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0:
        raise RecipeError(f"{recipe.where('worker_timeout')} must be a positive number of seconds, got {timeout!r}")
    if data.get("gpu_fallback", "cpu") not in GPU_FALLBACKS:
        raise RecipeError(f"{recipe.where('gpu_fallback')} must be one of {', '.join(GPU_FALLBACKS)}, "
                          f"got {data['gpu_fallback']!r}")
    _CHECKS[kind](recipe)
    return recipe


def _check_local(recipe: Recipe) -> None:
    opts = recipe.options
    for key in ("workers", "threads_per_worker"):
        if key in opts:
            _positive_int(recipe, key, opts[key])
    _resources(recipe, "resources", opts.get("resources"))


def _check_ssh(recipe: Recipe) -> None:
    opts = recipe.options
    if not isinstance(opts.get("scheduler"), str):
        raise RecipeError(f"{recipe.where('scheduler')} must name the host that runs the scheduler")
    if not isinstance(opts.get("connect_options") or {}, dict):
        raise RecipeError(f"{recipe.where('connect_options')} must be a mapping of asyncssh.connect options")
    groups = _groups(recipe, _SSH_GROUP_KEYS)
    for name, group in groups.items():
        hosts = group.get("hosts")
        if not (isinstance(hosts, list) and hosts and all(isinstance(h, str) for h in hosts)):
            raise RecipeError(f"{recipe.where(f'worker_groups.{name}.hosts')} must be a non-empty list of hosts")
        for key in ("workers_per_host", "threads_per_worker"):
            if key in group:
                _positive_int(recipe, f"worker_groups.{name}.{key}", group[key])
        _resources(recipe, f"worker_groups.{name}.resources", group.get("resources"))


def _check_slurm(recipe: Recipe) -> None:
    common = recipe.options.get("common", {})
    if not isinstance(common, dict):
        raise RecipeError(f"{recipe.where('common')} must be a mapping of SLURMCluster options")
    unknown = sorted(set(common) - _SLURM_GROUP_KEYS - {"jobs"})
    if unknown:
        raise RecipeError(f"{recipe.where('common')}: unknown SLURM option {unknown[0]!r}")
    for name, group in _groups(recipe, _SLURM_GROUP_KEYS).items():
        _positive_int(recipe, f"worker_groups.{name}.jobs", group.get("jobs", 1), zero=True)
        merged = {**common, **group}
        for key in ("cores", "memory"):
            if key not in merged:
                raise RecipeError(f"{recipe.where(f'worker_groups.{name}')}: needs {key!r} (per job)")
        _resources(recipe, f"worker_groups.{name}.resources", group.get("resources"))


def _check_kubernetes(recipe: Recipe) -> None:
    kubernetes_spec(recipe)  # reads and checks the DaskCluster documents


_CHECKS = {"local": _check_local, "ssh": _check_ssh, "slurm": _check_slurm, "kubernetes": _check_kubernetes}


def _groups(recipe: Recipe, allowed: set[str]) -> dict[str, dict[str, Any]]:
    groups = recipe.options.get("worker_groups")
    if not isinstance(groups, dict) or not groups:
        raise RecipeError(f"{recipe.where('worker_groups')} must map group names (e.g. cpu, gpu) to their options")
    for name, group in groups.items():
        if not isinstance(group, dict):
            raise RecipeError(f"{recipe.where(f'worker_groups.{name}')} must be a mapping")
        unknown = sorted(set(group) - allowed)
        if unknown:
            raise RecipeError(f"{recipe.where(f'worker_groups.{name}')}: unknown key {unknown[0]!r} "
                              f"(known: {', '.join(sorted(allowed))})")
    return groups


def _positive_int(recipe: Recipe, key: str, value: Any, zero: bool = False) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < (0 if zero else 1):
        raise RecipeError(f"{recipe.where(key)} must be a {'non-negative' if zero else 'positive'} integer, "
                          f"got {value!r}")


def _resources(recipe: Recipe, key: str, value: Any) -> None:
    if value is None:
        return
    if not isinstance(value, dict) or not all(isinstance(v, (int, float)) and v > 0 for v in value.values()):
        raise RecipeError(f"{recipe.where(key)} must map resource names to positive amounts, e.g. {{GPU: 1}}")


def _resource_args(resources: Mapping[str, float] | None) -> list[str]:
    if not resources:
        return []
    return ["--resources", ",".join(f"{k}={v:g}" for k, v in resources.items())]


# -- building the cluster arguments (nothing starts) ----------------------------------------------
def local_kwargs(recipe: Recipe) -> dict[str, Any]:
    """Keyword arguments of ``distributed.LocalCluster`` for a ``local`` recipe."""
    opts = recipe.options
    kwargs = {
        "n_workers": opts.get("workers") or max(1, min(os.cpu_count() or 1, 4)),
        "threads_per_worker": opts.get("threads_per_worker", 1),
        "processes": True,
        "memory_limit": opts.get("memory_limit", "auto"),
        "dashboard_address": opts.get("dashboard_address", ":0"),
        "silence_logs": 40,
    }
    if opts.get("resources"):
        kwargs["resources"] = dict(opts["resources"])
    return kwargs


def ssh_spec(recipe: Recipe) -> tuple[dict[str, Any], dict[str, Any]]:
    """The ``(scheduler, workers)`` specs of a ``distributed.SpecCluster`` over SSH.

    This is what ``distributed.SSHCluster`` builds, with one difference: each worker group has its
    own worker options (threads, memory, ``resources: {GPU: 1}``), which ``SSHCluster`` cannot do.
    """
    from distributed.deploy.ssh import Scheduler, Worker

    opts = recipe.options
    connect = dict(opts.get("connect_options") or {})
    for key in ("known_hosts",):  # asyncssh does not expand ~
        if isinstance(connect.get(key), str):
            connect[key] = str(Path(connect[key]).expanduser())
    if isinstance(connect.get("client_keys"), list):
        connect["client_keys"] = [str(Path(k).expanduser()) if isinstance(k, str) else k
                                  for k in connect["client_keys"]]
    python = opts.get("remote_python")
    scheduler = {"cls": Scheduler, "options": {
        "address": opts["scheduler"], "connect_options": connect,
        "kwargs": dict(opts.get("scheduler_options") or {}), "remote_python": python}}
    workers = {}
    for name, group in opts["worker_groups"].items():
        kwargs: dict[str, Any] = {"n_workers": group.get("workers_per_host", 1),
                                  "nthreads": group.get("threads_per_worker", 1)}
        if "memory_limit" in group:
            kwargs["memory_limit"] = group["memory_limit"]
        if group.get("resources"):
            kwargs["resources"] = dict(group["resources"])
        for i, host in enumerate(group["hosts"]):
            workers[f"{name}-{i}"] = {"cls": Worker, "options": {
                "address": host, "connect_options": connect, "kwargs": copy.deepcopy(kwargs),
                "worker_class": "distributed.Nanny", "remote_python": python}}
    return scheduler, workers


def slurm_groups(recipe: Recipe) -> tuple[dict[str, Any], list[WorkerGroup]]:
    """``SLURMCluster`` keyword arguments shared by all jobs, and the job groups (first one: CPU)."""
    opts = recipe.options
    common = dict(opts.get("common") or {})
    cluster_kwargs: dict[str, Any] = {"scheduler_options": dict(opts.get("scheduler_options") or {})}
    groups = []
    for name, group in opts["worker_groups"].items():
        job = {**common, **{k: v for k, v in group.items() if k not in ("jobs", "resources")}}
        extra = list(job.get("worker_extra_args") or []) + _resource_args(group.get("resources"))
        if extra:
            job["worker_extra_args"] = extra
        job["job_name"] = f"sedarchive-{name}"
        prologue = list(job.get("job_script_prologue") or [])
        job["job_script_prologue"] = [*prologue, environ.prologue_line()]  # no malloc trim (see environ)
        groups.append(WorkerGroup(name, int(group.get("jobs", 1)), job))
    return cluster_kwargs, groups


def slurm_spec(recipe: Recipe, job_cls: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """The ``(scheduler, workers)`` specs of a ``distributed.SpecCluster`` of SLURM batch jobs.

    One scheduler here and, for every group, ``jobs`` worker specs of ``job_cls`` (dask-jobqueue's
    public ``SLURMCluster.job_cls``) with that group's own job options: public API only, where
    ``SLURMCluster`` itself has a single job template. The scheduler listens on the jobs'
    ``interface`` unless ``scheduler_options`` names a ``host`` or an ``interface``.
    """
    from distributed import Scheduler

    cluster_kwargs, groups = slurm_groups(recipe)
    options = {"dashboard_address": ":8787", **cluster_kwargs["scheduler_options"]}
    interface = groups[0].job_kwargs.get("interface")
    if interface and "host" not in options and "interface" not in options:
        options["interface"] = interface
    workers: dict[str, Any] = {}
    for group in groups:
        for i in range(group.jobs):
            spec: dict[str, Any] = {"cls": job_cls, "options": dict(group.job_kwargs)}
            if group.job_kwargs.get("processes", 1) > 1:  # one job, several worker processes
                spec["group"] = [f"-{p}" for p in range(group.job_kwargs["processes"])]
            workers[f"{group.name}-{i}"] = spec
    return {"cls": Scheduler, "options": options}, workers


def scheduler_interface(recipe: Recipe) -> str | None:
    """The network interface the scheduler of a ``slurm`` or ``local`` recipe listens on, here."""
    options = recipe.options.get("scheduler_options") or {}
    if recipe.kind != "slurm" or "host" in options:
        return None
    if "interface" in options:
        return options["interface"]
    first = next(iter(recipe.options["worker_groups"].values()))
    return first.get("interface", (recipe.options.get("common") or {}).get("interface"))


def kubernetes_spec(recipe: Recipe) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The ``DaskCluster`` resource and the extra ``DaskWorkerGroup`` resources of the spec file."""
    opts = recipe.options
    if not isinstance(opts.get("spec"), str):
        raise RecipeError(f"{recipe.where('spec')} must name the DaskCluster YAML file (relative to the recipe)")
    spec_path = (recipe.path.parent / opts["spec"]).resolve()
    try:
        docs = [d for d in yaml.safe_load_all(spec_path.read_text()) if d]
    except (OSError, yaml.YAMLError) as err:
        raise RecipeError(f"{recipe.where('spec')}: cannot read {spec_path}: {str(err).splitlines()[0]}") from None
    clusters = [d for d in docs if isinstance(d, dict) and d.get("kind") == "DaskCluster"]
    if len(clusters) != 1:
        raise RecipeError(f"{spec_path}: needs exactly one 'kind: DaskCluster' document (found {len(clusters)})")
    cluster = copy.deepcopy(clusters[0])
    if opts.get("name"):
        cluster.setdefault("metadata", {})["name"] = opts["name"]
    name = cluster.get("metadata", {}).get("name")
    if not name or "worker" not in cluster.get("spec", {}) or "scheduler" not in cluster["spec"]:
        raise RecipeError(f"{spec_path}: the DaskCluster needs metadata.name, spec.worker and spec.scheduler")
    groups = []
    for doc in docs:
        if doc is clusters[0]:
            continue
        if not isinstance(doc, dict) or doc.get("kind") != "DaskWorkerGroup" or "worker" not in doc.get("spec", {}):
            raise RecipeError(f"{spec_path}: other documents must be DaskWorkerGroup resources with spec.worker")
        groups.append(copy.deepcopy(doc))
    for worker in [cluster["spec"]["worker"], *(g["spec"]["worker"] for g in groups)]:
        if isinstance(worker.get("spec"), dict):
            environ.add_to_containers(worker["spec"])  # no malloc trim in the workers (see environ)
    return cluster, groups


# -- starting (sedarchive.dask.startup) ----------------------------------------------------------
def cluster_from_recipe(path: str | Path) -> contextlib.AbstractContextManager[Any]:
    """Start the cluster a recipe describes (see :func:`sedarchive.dask.startup.start_cluster`)."""
    from sedarchive.dask.startup import start_cluster  # startup builds on this module

    return start_cluster(path)
