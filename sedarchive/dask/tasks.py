"""Where Dask work runs: the embedded local cluster, a scheduler address, or a deploy recipe.

Orchestration code asks for a client with :func:`dask_client` and submits one task per unit of work
with :func:`run_tasks`, which shows progress, retries tasks lost with a worker, and collects the
failures of bad inputs instead of stopping the run.
"""
from __future__ import annotations

import contextlib
import os
import sys
import time
import traceback
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from catalog.errors import SedarchiveError
from sedarchive.progress import ProgressBar, use_bars


@dataclass
class TaskReport:
    """What came back from a batch of tasks: results by key, and failures with a one-line reason."""

    results: dict[Hashable, Any] = field(default_factory=dict)
    failures: dict[Hashable, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.failures


@contextlib.contextmanager
def dask_client(
    scheduler: str | None = None,
    cluster: str | Path | None = None,
    n_workers: int | None = None,
    threads_per_worker: int = 1,
    quiet: bool = False,
) -> Iterator[Any]:
    """A ``distributed.Client``: to ``scheduler`` if given, else from a deploy recipe, else local.

    The local default starts one worker process per core (a single thread each: the kernels are
    numpy/torch code that holds the GIL or threads itself). A recipe's cluster is waited for until
    its first worker connects (the recipe's ``worker_timeout``); a failure to start or to get a
    worker is a one-line :class:`~sedarchive.dask.startup.ClusterStartError`.
    """
    from distributed import Client, LocalCluster

    if scheduler and cluster:
        raise SedarchiveError("give either --scheduler or --cluster, not both")
    if scheduler:
        try:
            client = Client(scheduler, timeout="20s")
        except OSError as err:
            raise SedarchiveError(f"cannot reach the Dask scheduler at {scheduler}: {err}") from err
        with client:
            n = len(client.scheduler_info(n_workers=-1).get("workers", {}))
            _say(quiet, f"dask: scheduler {scheduler}, {n} workers, dashboard {client.dashboard_link}")
            yield client
        return
    if cluster:
        from sedarchive.dask.recipes import cluster_from_recipe, load_recipe  # optional stacks: jobqueue, ssh
        from sedarchive.dask.startup import wait_for_workers

        with cluster_from_recipe(cluster) as dask_cluster, Client(dask_cluster) as client:
            _say(quiet, f"dask: cluster from {cluster}, dashboard {client.dashboard_link}; waiting for workers")
            wait_for_workers(client, dask_cluster, load_recipe(cluster), lambda line: _say(quiet, line))
            n = len(client.scheduler_info(n_workers=-1).get("workers", {}))
            _say(quiet, f"dask: {n} workers connected")
            yield client
        return
    n_workers = n_workers or max(1, min(os.cpu_count() or 1, 4))
    from sedarchive.dask.environ import worker_config

    quiet_cm = contextlib.redirect_stderr(open(os.devnull, "w")) if quiet else contextlib.nullcontext()
    with quiet_cm, worker_config():  # workers without Dask's MALLOC_TRIM_THRESHOLD_ (see environ)
        dask_cluster = LocalCluster(
            n_workers=n_workers,
            threads_per_worker=threads_per_worker,
            processes=True,
            dashboard_address=":0",
            silence_logs=40,
        )
    with dask_cluster, Client(dask_cluster) as client:
        _say(quiet, f"dask: local cluster, {n_workers} workers, dashboard {client.dashboard_link}")
        yield client


def has_gpu_workers(client: Any) -> bool:
    """True when some worker declares a ``GPU`` resource."""
    info = client.scheduler_info(n_workers=-1)  # every worker, not the first few
    return any(w.get("resources", {}).get("GPU", 0) > 0 for w in info.get("workers", {}).values())


def run_tasks(
    client: Any,
    fn: Callable[..., Any],
    items: Mapping[Hashable, tuple] | Iterable[Hashable],
    *,
    label: str,
    resources: dict[str, float] | None = None,
    retries: int = 2,
    quiet: bool = False,
    pure: bool = False,
) -> TaskReport:
    """Run ``fn(*args)`` for every item on the cluster, showing progress, and collect the outcome.

    ``items`` maps a key (shown in messages) to the argument tuple; a plain iterable of keys calls
    ``fn(key)``. A task whose worker died is retried ``retries`` times by the scheduler; a task that
    raises is recorded as a failure with a one-line reason, and the others go on.
    """
    from distributed import as_completed

    if not isinstance(items, Mapping):
        items = {key: (key,) for key in items}
    report = TaskReport()
    if not items:
        return report
    futures = {}
    for key, args in items.items():
        fut = client.submit(refusing, fn, *args, key=f"{label}-{_token(key)}-{time.time_ns()}", retries=retries,
                            resources=resources, pure=pure)
        futures[fut] = key
    start = last = time.monotonic()
    done = 0
    bar = None
    if not quiet and use_bars(sys.stderr):
        bar = ProgressBar(len(futures), label, unit="task")
    for fut in as_completed(futures):
        key = futures[fut]
        done += 1
        try:
            result = fut.result()
            if isinstance(result, Refused):
                report.failures[key] = result.reason
                state = "FAILED"
            else:
                report.results[key] = result
                state = "done"
        except Exception as err:  # noqa: BLE001 - every failure is reported, the batch goes on
            report.failures[key] = one_line(err)
            state = "FAILED"
        now = time.monotonic()
        if bar is not None:  # a terminal: one bar, failures as lines above it
            bar.update(1, postfix=_show(key))
            if state == "FAILED":
                bar.write(f"{label}: {_show(key)} FAILED: {report.failures[key]}")
            if done == len(futures):
                bar.close()
            continue
        # in a log: one line per task for small batches; for large ones at most one line a second (and failures)
        if len(futures) <= 50 or state == "FAILED" or done == len(futures) or now - last >= 1.0:
            last = now
            eta = (now - start) / done * (len(futures) - done)
            _say(quiet, f"{label}: {done}/{len(futures)} {_show(key)} {state} "
                        f"({now - start:.1f} s, about {eta:.0f} s left)")
    return report


@dataclass(frozen=True)
class Refused:
    """What a task returns instead of raising a :class:`SedarchiveError` (bad input, a damaged store).

    Such an error recurs on every try, so the scheduler must not retry it (it retries raised
    exceptions), and a worker has no traceback to log for it: the one line is the whole story.
    """

    reason: str


def refusing(fn: Callable[..., Any], *args: Any) -> Any:
    """Call ``fn(*args)`` on a worker; a :class:`SedarchiveError` comes back as :class:`Refused`."""
    try:
        return fn(*args)
    except SedarchiveError as err:
        return Refused(one_line(err))


def one_line(err: BaseException) -> str:
    """A one-line reason for an exception (its message, or its type and last frame)."""
    if isinstance(err, SedarchiveError):
        return str(err).splitlines()[0] if str(err) else err.__class__.__name__
    text = str(err).strip().splitlines()
    where = traceback.extract_tb(err.__traceback__)[-1:] if err.__traceback__ else []
    loc = f" at {Path(where[0].filename).name}:{where[0].lineno}" if where else ""
    return f"{err.__class__.__name__}: {text[0] if text else ''}{loc}"


def _show(key: Hashable) -> str:
    return getattr(key, "name", None) or str(key)


def _token(key: Hashable) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in _show(key))[:80]


def _say(quiet: bool, message: str) -> None:
    if not quiet:
        print(message, file=sys.stderr, flush=True)
