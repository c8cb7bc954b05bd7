"""The one place that calls the clustering part's API: labels, proportions, the map, splitting.

Everything the report and the review page need from ``sedarchive.labels``,
``sedarchive.proportions`` and ``sedarchive.clustering`` goes through these functions, which use
the real modules when they are installed and :mod:`sedarchive.report.stopgap` otherwise.
"""
from __future__ import annotations

import importlib
import threading
from typing import Any

from catalog import Archive
from catalog.errors import ArchiveError

#: one decision at a time per process (the review server is threaded)
_WRITE_LOCK = threading.Lock()

ACTIONS = ("name", "merge", "exclude", "clear", "add_class", "split")
EXCLUDE_REASONS = ("chopped", "clump", "debris", "other")


def _module(name: str):
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as err:
        if err.name == name:
            return None
        raise


def load_labels(archive: Archive) -> dict[str, Any]:
    """``{"version", "classes": [...], "clusters": {id: decision}}`` (empty decisions when no file)."""
    from sedarchive.report import stopgap

    return stopgap.load_labels(archive.labels_path)


def resolve(labels: dict[str, Any], cluster: int) -> dict[str, Any]:
    """Where a cluster ends up after merges: its root id, class, and whether it is excluded."""
    from sedarchive.report import stopgap

    return stopgap.resolve(labels, cluster)


def apply_decision(archive: Archive, action: str, params: dict[str, Any], *, user: str,
                   known_clusters: set[int]) -> dict[str, Any]:
    """Check one decision of the expert, save ``labels.yaml`` at once, and refresh the proportions.

    Raises :class:`catalog.ArchiveError` (nothing written) for an unknown action, cluster or class.
    Returns the labels as saved, plus ``"new_clusters"`` after a split.
    """
    from sedarchive.report import stopgap

    if action not in ACTIONS:
        raise ArchiveError(f"unknown action {action!r}; expected one of {', '.join(ACTIONS)}")
    with _WRITE_LOCK:
        labels = stopgap.load_labels(archive.labels_path)
        stamp = {"by": user, "at": stopgap.now()}
        new_clusters: list[int] = []
        if action == "add_class":
            name = _class_name(params.get("class"))
            if name not in labels["classes"]:
                labels["classes"].append(name)
        elif action == "name":
            cid = _cluster(params.get("cluster"), known_clusters)
            cls = params.get("class")
            if cls not in labels["classes"]:
                raise ArchiveError(f"class {cls!r} is not in labels.yaml's classes; add it first")
            labels["clusters"][cid] = {"class": cls, **stamp}
        elif action == "merge":
            into = _cluster(params.get("into"), known_clusters)
            others = params.get("clusters")
            if not isinstance(others, list) or not others:
                raise ArchiveError("merge needs 'clusters', a non-empty list of cluster ids")
            for raw in others:
                cid = _cluster(raw, known_clusters)
                if cid == into or resolve(labels, into)["root"] == cid:
                    raise ArchiveError(f"cannot merge cluster {cid} into itself")
                labels["clusters"][cid] = {"merged_into": into, **stamp}
        elif action == "exclude":
            cid = _cluster(params.get("cluster"), known_clusters)
            reason = params.get("reason")
            if reason not in EXCLUDE_REASONS:
                raise ArchiveError(f"exclusion reason {reason!r}; expected one of {', '.join(EXCLUDE_REASONS)}")
            labels["clusters"][cid] = {"excluded": True, "reason": reason, **stamp}
        elif action == "clear":
            cid = _cluster(params.get("cluster"), known_clusters)
            labels["clusters"].pop(cid, None)
        elif action == "split":
            cid = _cluster(params.get("cluster"), known_clusters)
            n = params.get("n", 2)
            if not isinstance(n, int) or isinstance(n, bool) or not 2 <= n <= 10:
                raise ArchiveError(f"split needs n between 2 and 10, got {n!r}")
            new_clusters = split_cluster(archive, cid, n)
            labels["clusters"].pop(cid, None)
            for new in new_clusters:
                labels["clusters"][new] = {"split_from": cid, **stamp}
        stopgap.save_labels(archive.labels_path, labels)
        refresh_proportions(archive, labels)
    return {**labels, "new_clusters": new_clusters}


def _cluster(raw: Any, known: set[int]) -> int:
    if not isinstance(raw, int) or isinstance(raw, bool):
        raise ArchiveError(f"cluster {raw!r} is not an integer id")
    if raw not in known:
        raise ArchiveError(f"cluster {raw} is not in this archive")
    return raw


def _class_name(raw: Any) -> str:
    import re

    if not isinstance(raw, str) or not re.fullmatch(r"[a-z][a-z0-9_]{0,39}", raw):
        raise ArchiveError(f"class name {raw!r}: use lower-case letters, digits and '_' (at most 40)")
    return raw


def refresh_proportions(archive: Archive, labels: dict[str, Any] | None = None) -> None:
    """Re-write ``proportions.zarr`` from the stores and the current labels."""
    from sedarchive.report import stopgap

    stopgap.write_proportions(archive, labels if labels is not None else load_labels(archive))


def split_cluster(archive: Archive, cluster: int, n: int = 2) -> list[int]:
    """Split one cluster for a second look; returns the new cluster ids."""
    from sedarchive.report import stopgap

    return stopgap.split_cluster(archive, cluster, n)


def open_proportions(archive: Archive):
    """``proportions.zarr`` as an xarray Dataset (loaded), or None when it does not exist yet."""
    import xarray as xr

    if not archive.proportions_path.exists():
        return None
    with xr.open_zarr(archive.proportions_path) as ds:
        return ds.load()


def open_umap(archive: Archive):
    """``umap.zarr`` as an xarray Dataset (loaded), or None when there is no map yet."""
    import xarray as xr

    path = archive.root / "umap.zarr"
    if not path.exists():
        return None
    with xr.open_zarr(path) as ds:
        return ds.load()
