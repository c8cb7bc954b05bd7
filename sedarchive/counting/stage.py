"""The cluster step of the pipeline with its counting: label the grains, then write the proportions.

Clustering (:func:`sedarchive.clustering.stage.run_stage`) fits or reuses the K-means model, labels
every grain and draws the map; it never counts. This step, above it, checks the proxies first (so a
bad proxy fails before a long fit), runs clustering, then (re)writes ``proportions.zarr`` with
:func:`sedarchive.counting.proportions.write_proportions`. ``sedarchive cluster`` and
``sedarchive run`` both call it.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from catalog import Archive, SampleKey
from sedarchive.clustering.stage import ClusterSettings
from sedarchive.clustering.stage import run_stage as cluster_stage
from sedarchive.counting.proportions import proxies_from, write_proportions
from sedarchive.dask import TaskReport


def run_stage(archive: Archive, keys: Sequence[SampleKey], client: Any, settings: ClusterSettings | None = None,
              *, quiet: bool = False) -> TaskReport:
    """Cluster ``keys`` (see the clustering stage), then count the grains of the archive by cluster and class.

    ``settings=None`` means the defaults. ``settings.proxies`` (None: those recorded in the existing
    proportions, else the defaults) are the proxies written.
    """
    settings = settings if settings is not None else ClusterSettings()
    proxies = proxies_from(settings.proxies) if settings.proxies is not None else None
    report = cluster_stage(archive, keys, client, settings, quiet=quiet)
    if list(keys) and not report.failures:  # a failed clustering changed no label: nothing to count anew
        write_proportions(archive, proxies=proxies)
    return report
