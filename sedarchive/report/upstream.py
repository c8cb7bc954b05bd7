"""The one place that calls the clustering part's API: labels, proportions, the map, splitting.

The report and the review page reach ``sedarchive.counting.labels``, ``sedarchive.counting.proportions`` and
``sedarchive.clustering`` only through these functions, and see labels as a plain dict
``{"version", "classes": [...], "clusters": {id: decision}}`` (the YAML's own shape).
"""
from __future__ import annotations

import threading
from typing import Any

from catalog import Archive
from catalog.errors import ArchiveError

#: one decision at a time in this process (the review server is threaded; labels.py locks files)
_WRITE_LOCK = threading.Lock()

ACTIONS = ("name", "merge", "exclude", "clear", "add_class", "split")
EXCLUDE_REASONS = ("chopped", "clump", "debris", "other")


def load_labels(archive: Archive) -> dict[str, Any]:
    """``labels.yaml`` as a dict (the default classes and no decisions when there is no file)."""
    from sedarchive.counting.labels import load_labels as load

    labels = load(archive)
    return {"version": 1, "classes": list(labels.classes), "clusters": dict(labels.clusters)}


def resolve(labels: dict[str, Any], cluster: int) -> dict[str, Any]:
    """Where a cluster ends up after merges: ``{"root", "class", "excluded", "reason"}``.

    Examples
    --------
    >>> labels = {"classes": ["quartz"], "clusters": {1: {"class": "quartz"}, 2: {"merged_into": 1}}}
    >>> resolve(labels, 2)
    {'root': 1, 'class': 'quartz', 'excluded': False, 'reason': None}
    """
    seen = set()
    root = int(cluster)
    while "merged_into" in labels["clusters"].get(root, {}) and root not in seen:
        seen.add(root)
        root = int(labels["clusters"][root]["merged_into"])
    entry = labels["clusters"].get(root, {})
    return {"root": root, "class": entry.get("class"), "excluded": bool(entry.get("excluded", False)),
            "reason": entry.get("reason")}


def apply_decision(archive: Archive, action: str, params: dict[str, Any], *, user: str,
                   known_clusters: set[int]) -> dict[str, Any]:
    """Check one decision of the expert, save ``labels.yaml`` at once, and rewrite the proportions.

    Raises a :class:`catalog.SedarchiveError` (nothing written) for an unknown action, cluster,
    class or reason. Returns the labels as saved, plus ``"new_clusters"`` (ids made by a split).
    """
    from sedarchive.counting import labels as lab

    if action not in ACTIONS:
        raise ArchiveError(f"unknown action {action!r}; expected one of {', '.join(ACTIONS)}")
    new_clusters: list[int] = []
    with _WRITE_LOCK:
        if action == "add_class":
            lab.add_class(archive, _class_name(params.get("class")), by=user)
        elif action == "name":
            cid = _cluster(params.get("cluster"), known_clusters)
            if params.get("class") not in load_labels(archive)["classes"]:
                raise ArchiveError(f"class {params.get('class')!r} is not in labels.yaml's classes; add it first")
            lab.name_cluster(archive, cid, params["class"], by=user)
        elif action == "merge":
            into = _cluster(params.get("into"), known_clusters)
            others = params.get("clusters")
            if not isinstance(others, list) or not others:
                raise ArchiveError("merge needs 'clusters', a non-empty list of cluster ids")
            for cid in [_cluster(c, known_clusters) for c in others]:
                lab.merge_clusters(archive, cid, into, by=user)
        elif action == "exclude":
            cid = _cluster(params.get("cluster"), known_clusters)
            reason = params.get("reason")
            if reason not in EXCLUDE_REASONS:
                raise ArchiveError(f"exclusion reason {reason!r}; expected one of {', '.join(EXCLUDE_REASONS)}")
            lab.exclude_cluster(archive, cid, reason, by=user)
        elif action == "clear":
            lab.clear_cluster(archive, _cluster(params.get("cluster"), known_clusters))
        elif action == "split":
            n = params.get("n", 2)
            if not isinstance(n, int) or isinstance(n, bool) or not 2 <= n <= 10:
                raise ArchiveError(f"split needs n between 2 and 10, got {n!r}")
            new_clusters = split_cluster(archive, _cluster(params.get("cluster"), known_clusters), n, by=user)
        if action != "split":  # a split rewrites them itself
            refresh_proportions(archive)
    return {**load_labels(archive), "new_clusters": new_clusters}


def _cluster(raw: Any, known: set[int]) -> int:
    if not isinstance(raw, int) or isinstance(raw, bool):
        raise ArchiveError(f"cluster {raw!r} is not an integer id")
    if raw not in known:
        raise ArchiveError(f"cluster {raw} is not a cluster with grains in this archive")
    return raw


def _class_name(raw: Any) -> str:
    import re

    if not isinstance(raw, str) or not re.fullmatch(r"[a-z][a-z0-9_]{0,39}", raw):
        raise ArchiveError(f"class name {raw!r}: use lower-case letters, digits and '_' (at most 40)")
    return raw


def refresh_proportions(archive: Archive) -> None:
    """Re-write ``proportions.zarr`` from the stores and the current labels (when a model exists)."""
    from sedarchive.clustering.model import current_model
    from sedarchive.counting.proportions import write_proportions

    if current_model(archive) is not None:
        write_proportions(archive)


def split_cluster(archive: Archive, cluster: int, n: int = 2, *, by: str = "expert") -> list[int]:
    """Split one cluster for a second look (new model, grains relabelled); returns the new ids."""
    from sedarchive.clustering import split_cluster as split

    return split(archive, cluster, n, by=by)


def open_proportions(archive: Archive):
    """``proportions.zarr`` as an xarray Dataset (loaded), or None when it does not exist yet."""
    if not archive.proportions_path.exists():
        return None
    from sedarchive.counting.results import open_proportions as open_

    return open_(archive)


def open_umap(archive: Archive):
    """``umap.zarr`` as an xarray Dataset (loaded), or None when there is no map yet."""
    if not (archive.root / "umap.zarr").exists():
        return None
    from sedarchive.clustering import open_map

    with open_map(archive) as ds:
        return ds.load()
