"""The environment Dask workers start with: no ``MALLOC_TRIM_THRESHOLD_``.

Dask's nanny starts every worker with ``MALLOC_TRIM_THRESHOLD_=65536`` (its
``distributed.nanny.pre-spawn-environ`` default). Setting any trim threshold turns off glibc's
adaptive mmap threshold, so every array over 128 KiB (stacks, label images, crops, codec buffers)
is mmapped and page-faulted again on each allocation: the segment stage costs twice its serial CPU
in a worker. Workers started by sedarchive do without it:

* a local cluster and an SSH cluster are started inside :func:`worker_config` (the SSH workers
  inherit this process's Dask configuration);
* SLURM jobs and Kubernetes worker pods get :data:`ENV_NAME` = :data:`ENV_VALUE` in their
  environment (a whole-mapping value: Dask lower-cases the keys of nested ``DASK_..__KEY``
  variables, so ``DASK_DISTRIBUTED__NANNY__PRE_SPAWN_ENVIRON__MALLOC_TRIM_THRESHOLD_`` would not
  work).

A value the user exports for ``MALLOC_TRIM_THRESHOLD_`` themselves is still passed on.
"""
from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

#: The pre-spawn settings sedarchive overrides (``None``: not set in the worker).
PRE_SPAWN = {"MALLOC_TRIM_THRESHOLD_": None}
#: The environment variable that carries :data:`PRE_SPAWN` to nannies started elsewhere.
ENV_NAME = "DASK_DISTRIBUTED__NANNY__PRE_SPAWN_ENVIRON"
ENV_VALUE = "{'MALLOC_TRIM_THRESHOLD_': None}"
_KEY = "distributed.nanny.pre-spawn-environ"
_DASK_DEFAULT_TRIM = "65536"


@contextlib.contextmanager
def worker_config() -> Iterator[None]:
    """Dask configuration under which nannies start workers without the malloc trim threshold.

    A nanny that runs in this process (a local cluster) writes its pre-spawn variables into this
    process's environment, and later nannies pass them on: the value Dask's default left here is
    dropped too.
    """
    import dask

    if os.environ.get("MALLOC_TRIM_THRESHOLD_") == _DASK_DEFAULT_TRIM:
        del os.environ["MALLOC_TRIM_THRESHOLD_"]
    environ = {**(dask.config.get(_KEY, default=None) or {}), **PRE_SPAWN}
    with dask.config.set({_KEY: environ}):
        yield


def prologue_line() -> str:
    """The shell line a batch job runs before its worker starts (SLURM ``job_script_prologue``)."""
    return f'export {ENV_NAME}="{ENV_VALUE}"'


def add_to_containers(pod_spec: dict) -> None:
    """Give every container of a Kubernetes pod spec :data:`ENV_NAME`, unless it sets it itself."""
    for container in pod_spec.get("containers") or []:
        env = container.setdefault("env", [])
        if not any(isinstance(e, dict) and e.get("name") == ENV_NAME for e in env):
            env.append({"name": ENV_NAME, "value": ENV_VALUE})
