"""The expert's decisions about clusters, checked and applied: labels.yaml, then the proportions.

The review page sends one decision at a time (name, merge, exclude, clear, add a class, split);
:func:`apply_decision` checks it, records it in ``labels.yaml`` and rewrites ``proportions.zarr``.
Splitting is clustering's work (:func:`sedarchive.clustering.split_cluster`); recording the split in
the labels and counting anew is done here, above clustering.
"""
from __future__ import annotations

import re
import threading
from typing import Any

from catalog import Archive
from catalog.errors import ArchiveError
from sedarchive.clustering import split as clustering_split
from sedarchive.clustering.model import current_model
from sedarchive.counting import labels as lab
from sedarchive.counting.moves import move_grain
from sedarchive.counting.proportions import write_proportions

#: one decision at a time in this process (the review server is threaded; labels.py locks files)
_WRITE_LOCK = threading.Lock()

ACTIONS = ("name", "merge", "exclude", "clear", "add_class", "split", "move")
#: why a cluster is left out of the counts: words that are not class names (classes say what a grain
#: is; a reason says why a cluster is not counted). Older labels.yaml files with other reasons still read.
EXCLUDE_REASONS = ("cut_off", "touching", "not_a_grain", "other")
#: reasons written before issue 17 (still read: such clusters stay out of the class counts)
OLD_EXCLUDE_REASONS = ("chopped", "clump", "debris")


def labels_view(archive: Archive) -> dict[str, Any]:
    """``labels.yaml`` as the review page's JSON: ``{"version", "classes", "clusters"}``."""
    labels = lab.load_labels(archive)
    return {"version": lab.VERSION, "classes": list(labels.classes), "clusters": dict(labels.clusters)}


def apply_decision(archive: Archive, action: str, params: dict[str, Any], *, user: str,
                   known_clusters: set[int]) -> dict[str, Any]:
    """Check one decision of the expert, save ``labels.yaml`` at once, and rewrite the proportions.

    Raises a :class:`catalog.SedarchiveError` (nothing written) for an unknown action, cluster,
    class or reason. Returns the labels as saved (:func:`labels_view`), plus ``"new_clusters"``
    (ids made by a split).
    """
    if action not in ACTIONS:
        raise ArchiveError(f"unknown action {action!r}; expected one of {', '.join(ACTIONS)}")
    new_clusters: list[int] = []
    with _WRITE_LOCK:
        if action == "add_class":
            lab.add_class(archive, _class_name(params.get("class")), by=user)
        elif action == "name":
            cid = _cluster(params.get("cluster"), known_clusters)
            if params.get("class") not in lab.load_labels(archive).classes:
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
        elif action == "move":
            into = params.get("into")
            if not isinstance(into, int) or isinstance(into, bool):
                raise ArchiveError(f"move needs 'into', a cluster id or -1, got {into!r}")
            particle = params.get("particle")
            if not isinstance(particle, int) or isinstance(particle, bool):
                raise ArchiveError(f"move needs 'particle', a grain index, got {particle!r}")
            move_grain(archive, str(params.get("sample")), particle, into, known_clusters=known_clusters, by=user)
        if action != "split":  # a split rewrites them itself
            refresh_proportions(archive)
    return {**labels_view(archive), "new_clusters": new_clusters}


def split_cluster(archive: Archive, cluster: int, n: int = 2, *, by: str = "expert", client: Any = None,
                  seed: int = 0, quiet: bool = True) -> list[int]:
    """Split one cluster for a second look, note it in labels.yaml and count anew; returns the new ids.

    Clustering makes the new model and relabels the grains (``client=None``: here, one sample after
    another); the labels entry of the old cluster becomes ``split_into`` and proportions.zarr is
    rewritten.
    """
    new_ids = clustering_split.split_cluster(archive, cluster, n, client=client, seed=seed, quiet=quiet)
    model = current_model(archive)
    lab.record_split(archive, cluster, new_ids, by=by, cluster_ids=range(model.n_centres))
    write_proportions(archive)
    return new_ids


def refresh_proportions(archive: Archive) -> None:
    """Re-write ``proportions.zarr`` from the stores and the current labels (when a model exists)."""
    if current_model(archive) is not None:
        write_proportions(archive)


def _cluster(raw: Any, known: set[int]) -> int:
    if not isinstance(raw, int) or isinstance(raw, bool):
        raise ArchiveError(f"cluster {raw!r} is not an integer id")
    if raw not in known:
        raise ArchiveError(f"cluster {raw} is not a cluster with grains in this archive")
    return raw


def _class_name(raw: Any) -> str:
    if not isinstance(raw, str) or not re.fullmatch(r"[a-z][a-z0-9_]{0,39}", raw):
        raise ArchiveError(f"class name {raw!r}: use lower-case letters, digits and '_' (at most 40)")
    return raw
