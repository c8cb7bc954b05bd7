"""Where Dask work runs: the client (local cluster, scheduler address or recipe) and the task runner.

The bottom of ``sedarchive``'s own layers: every stage package submits its work through
:func:`run_tasks` and reads :class:`TaskReport`; deploy recipes (:mod:`.recipes`) start clusters.
"""
from __future__ import annotations

from sedarchive.dask.tasks import TaskReport, dask_client, has_gpu_workers, one_line, run_tasks

__all__ = ["TaskReport", "dask_client", "has_gpu_workers", "one_line", "run_tasks"]
