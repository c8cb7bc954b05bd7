"""``ARCHIVE/labels.yaml``: the expert's names of clusters (the schema is in CONTRIBUTING.md).

.. code-block:: yaml

    version: 1
    classes: [quartz, dark, foram_intact, foram_broken, chopped, clump, debris]
    clusters:
      12: {class: quartz, by: expert, at: "2026-11-24T10:00:00+00:00", checked: {quartz: 18, dark: 2}}
      13: {merged_into: 12, by: expert, at: ...}
      40: {excluded: true, reason: chopped, by: expert, at: ...}

The review page records decisions with the small functions :func:`name_cluster`,
:func:`merge_clusters`, :func:`exclude_cluster`, :func:`clear_cluster` and :func:`add_class`; each
loads, changes, validates and saves atomically under a lock. :func:`resolve` turns the file into
``cluster -> class`` (merges followed, exclusions dropped). A named cluster may carry ``checked``:
what the expert found when looking at some of its grains one by one (class -> number); the
proportions' intervals include that measured impurity (:func:`checked_counts`).
"""
from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import re
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from catalog import Archive
from catalog.files import atomic_write
from sedarchive.clustering.model import current_model
from sedarchive.errors import InputError

VERSION = 1
DEFAULT_CLASSES = ("quartz", "dark", "foram_intact", "foram_broken", "chopped", "clump", "debris")
_CLASS_RE = re.compile(r"^[a-z][a-z0-9_]*$")


class LabelsError(InputError):
    """labels.yaml is malformed or names a cluster or class that does not exist."""


@dataclass
class Labels:
    """The content of labels.yaml: the class list and one entry per decided cluster."""

    classes: list[str] = field(default_factory=lambda: list(DEFAULT_CLASSES))
    clusters: dict[int, dict[str, Any]] = field(default_factory=dict)
    kmeans_id: str | None = None  # the model whose clusters these are (absent in hand-written files)
    #: single grains the expert moved out of their cluster: ``{"sample", "particle", "from", "to", "by", "at"}``
    moved_grains: list[dict[str, Any]] = field(default_factory=list)
    #: set by :func:`current_labels` when the file names another model's clusters (then ``clusters`` is empty)
    stale_note: str = ""

    def to_yaml(self) -> dict[str, Any]:
        out: dict[str, Any] = {"version": VERSION}
        if self.kmeans_id:
            out["kmeans_id"] = self.kmeans_id
        out["classes"] = list(self.classes)
        out["clusters"] = {int(k): dict(v) for k, v in sorted(self.clusters.items())}
        if self.moved_grains:
            out["moved_grains"] = [dict(m) for m in self.moved_grains]
        return out

    def belongs_to(self, model: Any) -> bool:
        """True when these names are about ``model``'s clusters (its own id, or one it was split from)."""
        return not self.kmeans_id or self.kmeans_id == model.id or self.kmeans_id in model.info.get("lineage", [])


class StaleLabelsWarning(UserWarning):
    """labels.yaml names the clusters of another K-means model; its names were not applied."""


def stale_note(labels: Labels, model: Any) -> str:
    """The one message every reader gives when labels.yaml belongs to another model ("" when it does not)."""
    if model is None or labels.belongs_to(model):
        return ""
    return (f"labels.yaml names the clusters of K-means model {labels.kmeans_id}, not of the current "
            f"{model.id}: its class names are not applied (move it aside and name the new clusters)")


def current_labels(archive: Archive, *, warn: bool = True) -> Labels:
    """The names that apply to the current K-means model: the one reader of labels for every output.

    Export, report, proportions and the review page all call this, so stale names (made for the
    clusters of a model since refitted) are refused the same way everywhere: the class list is kept,
    the cluster decisions are dropped, and :attr:`Labels.stale_note` says why (also issued as a
    :class:`StaleLabelsWarning` unless ``warn=False``). Names that do belong to the model are
    validated against its cluster ids.
    """
    labels = load_labels(archive)
    model = current_model(archive)
    note = stale_note(labels, model)
    if note:
        if warn:
            warnings.warn(note, StaleLabelsWarning, stacklevel=2)
        return Labels(list(labels.classes), {}, labels.kmeans_id, stale_note=note)
    if model is not None:
        validate(labels, range(model.n_centres), where=archive.labels_path)
    return labels


class _NoAliasLoader(yaml.SafeLoader):
    """The safe loader without anchors and aliases: labels.yaml never needs them, and a few hundred
    bytes of nested aliases (a "billion laughs") would expand to megabytes on every read."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.events.AliasEvent):
            event = self.peek_event()
            raise yaml.YAMLError(f"aliases (*{event.anchor}) are not allowed in labels.yaml "
                                 f"(line {event.start_mark.line + 1})")
        return super().compose_node(parent, index)


def load_labels(archive: Archive, *, cluster_ids: Iterable[int] | None = None) -> Labels:
    """Read labels.yaml (the default class list and no decisions when it does not exist yet).

    With ``cluster_ids`` (the clusters of the current model), entries are validated against them.
    """
    path = archive.labels_path
    if not path.exists():
        return Labels()
    try:
        raw = yaml.load(path.read_text(encoding="utf-8"), Loader=_NoAliasLoader) or {}  # noqa: S506 - safe, no aliases
    except UnicodeDecodeError as err:
        raise LabelsError(f"{path} is not UTF-8 text (byte {err.start}); save it as UTF-8") from None
    except yaml.YAMLError as err:
        raise LabelsError(f"{path} is not valid YAML: {str(err).splitlines()[0]}") from None
    labels = _parse(raw, path)
    validate(labels, cluster_ids, where=path)
    return labels


def _parse(raw: Any, path: Path) -> Labels:
    if not isinstance(raw, dict):
        raise LabelsError(f"{path}: expected a mapping with version, classes and clusters")
    if raw.get("version", VERSION) != VERSION:
        raise LabelsError(f"{path}: version {raw.get('version')!r} is not supported (expected {VERSION})")
    classes = raw.get("classes", list(DEFAULT_CLASSES))
    if not isinstance(classes, list) or not all(isinstance(c, str) for c in classes):
        raise LabelsError(f"{path}: classes must be a list of names")
    clusters = raw.get("clusters") or {}
    if not isinstance(clusters, dict):
        raise LabelsError(f"{path}: clusters must map cluster ids to entries")
    parsed: dict[int, dict[str, Any]] = {}
    for key, entry in clusters.items():
        try:
            cid = int(key)
        except (TypeError, ValueError):
            raise LabelsError(f"{path}: cluster id {key!r} is not an integer") from None
        if not isinstance(entry, dict):
            raise LabelsError(f"{path}: cluster {cid}: entry must be a mapping, got {entry!r}")
        parsed[cid] = dict(entry)
    kmeans_id = raw.get("kmeans_id")
    moved = raw.get("moved_grains") or []
    if not isinstance(moved, list) or not all(isinstance(m, dict) for m in moved):
        raise LabelsError(f"{path}: moved_grains must be a list of mappings")
    return Labels(list(classes), parsed, str(kmeans_id) if kmeans_id else None, [dict(m) for m in moved])


def validate(labels: Labels, cluster_ids: Iterable[int] | None = None, *, where: Any = "labels") -> None:
    """Raise :class:`LabelsError` naming the first unknown cluster, unknown class or bad entry."""
    seen = set()
    for name in labels.classes:
        if not _CLASS_RE.match(name):
            raise LabelsError(f"{where}: class name {name!r} must be lower-case letters, digits and _")
        if name in seen:
            raise LabelsError(f"{where}: class {name!r} is listed twice")
        seen.add(name)
    known = None if cluster_ids is None else {int(c) for c in cluster_ids}
    for cid, entry in labels.clusters.items():
        if known is not None and cid not in known:
            raise LabelsError(f"{where}: cluster {cid} is not a cluster of the current K-means model "
                              f"(ids {min(known, default=0)}..{max(known, default=-1)})")
        kinds = [k for k in ("class", "merged_into", "excluded") if k in entry]
        history = any(k in entry for k in ("split_into", "split_from"))
        if len(kinds) > 1 or (not kinds and not history):
            raise LabelsError(f"{where}: cluster {cid} needs exactly one of class, merged_into, excluded "
                              f"(has {', '.join(kinds) or 'none'})")
        if "class" in entry and entry["class"] not in seen:
            raise LabelsError(f"{where}: cluster {cid} is named {entry['class']!r}, which is not in classes "
                              f"({', '.join(labels.classes)}); add the class first")
        if "merged_into" in entry:
            target = entry["merged_into"]
            if not isinstance(target, int) or (known is not None and target not in known):
                raise LabelsError(f"{where}: cluster {cid} is merged into {target!r}, which is not a known cluster")
            if target not in labels.clusters:
                raise LabelsError(f"{where}: cluster {cid} is merged into cluster {target}, which has no entry")
        if "checked" in entry:
            found = entry["checked"]
            if (not isinstance(found, dict) or not all(c in seen for c in found)
                    or not all(isinstance(v, int) and v >= 0 for v in found.values())):
                raise LabelsError(f"{where}: cluster {cid}: checked must map classes ({', '.join(labels.classes)}) "
                                  f"to grain numbers >= 0, got {found!r}")
        for field_name, types in (("by", (str,)), ("reason", (str,)), ("at", (str, dt.date))):
            if field_name in entry and not isinstance(entry[field_name], types):
                raise LabelsError(f"{where}: cluster {cid}: {field_name} must be text, got {entry[field_name]!r}")
        if "excluded" in entry and entry["excluded"] is not True:
            raise LabelsError(f"{where}: cluster {cid}: excluded must be true (remove the entry to include it)")
    resolve(labels, where=where)  # catches merge cycles


def resolve(labels: Labels, *, where: Any = "labels") -> dict[int, str | None]:
    """Cluster id -> class name (merges followed); excluded clusters map to None.

    Clusters without an entry, and entries that only record a split (``split_into``, ``split_from``),
    are absent.

    Examples
    --------
    >>> lab = Labels(["quartz"], {1: {"class": "quartz"}, 2: {"merged_into": 1}, 3: {"excluded": True}})
    >>> resolve(lab)
    {1: 'quartz', 2: 'quartz', 3: None}
    """
    out: dict[int, str | None] = {}
    for cid in labels.clusters:
        entry = labels.clusters.get(_root(labels, cid, where), {})
        if "class" in entry:
            out[cid] = entry["class"]
        elif entry.get("excluded") is True:
            out[cid] = None
    return out


def _root(labels: Labels, cluster: int, where: Any) -> int:
    """The cluster that ``cluster`` ends up in after following its merges (itself when not merged)."""
    chain = [int(cluster)]
    while "merged_into" in labels.clusters.get(chain[-1], {}):
        nxt = int(labels.clusters[chain[-1]]["merged_into"])
        if nxt in chain:
            raise LabelsError(f"{where}: merges of clusters {' -> '.join(map(str, chain + [nxt]))} form a cycle")
        chain.append(nxt)
    return chain[-1]


def resolve_cluster(labels: Labels, cluster: int) -> dict[str, Any]:
    """Where one cluster ends up after merges: ``{"root", "class", "excluded", "reason"}``.

    The same rule as :func:`resolve` (one implementation), for one cluster and with the decision's
    details; a cluster without an entry has no class and is not excluded.

    Examples
    --------
    >>> lab = Labels(["quartz"], {1: {"class": "quartz"}, 2: {"merged_into": 1}})
    >>> resolve_cluster(lab, 2)
    {'root': 1, 'class': 'quartz', 'excluded': False, 'reason': None}
    """
    root = _root(labels, cluster, "labels")
    entry = labels.clusters.get(root, {})
    return {"root": root, "class": entry.get("class"), "excluded": bool(entry.get("excluded", False)),
            "reason": entry.get("reason")}


def checked_counts(labels: Labels) -> dict[int, dict[str, int]]:
    """Cluster id -> what the expert's check of some of its grains found (class -> number), where recorded.

    Examples
    --------
    >>> checked_counts(Labels(["quartz", "dark"], {1: {"class": "quartz", "checked": {"quartz": 9, "dark": 1}},
    ...                                            2: {"class": "dark"}}))
    {1: {'quartz': 9, 'dark': 1}}
    """
    return {cid: {str(k): int(v) for k, v in entry["checked"].items()}
            for cid, entry in labels.clusters.items() if isinstance(entry.get("checked"), dict)}


def save_labels(archive: Archive, labels: Labels, *, cluster_ids: Iterable[int] | None = None) -> Path:
    """Validate, then write labels.yaml atomically (temporary file + rename)."""
    validate(labels, cluster_ids, where=archive.labels_path)
    return atomic_write(archive.labels_path, yaml.safe_dump(labels.to_yaml(), sort_keys=False, default_flow_style=None))


def _stamp(by: str) -> dict[str, str]:
    if not by or not isinstance(by, str):
        raise LabelsError("a decision needs who made it (by)")
    return {"by": by, "at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")}


@contextlib.contextmanager
def _editing(archive: Archive, cluster_ids: Iterable[int] | None) -> Iterator[Labels]:
    """Load under a lock, let the caller change, save: concurrent review edits cannot lose each other.

    The file is stamped with the current K-means model, so names never silently carry over to the
    clusters of a refitted model.
    """
    ids = None if cluster_ids is None else list(cluster_ids)
    archive.root.mkdir(parents=True, exist_ok=True)
    with open(archive.root / ".labels.lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            labels = load_labels(archive)
            model = current_model(archive)
            if stale_note(labels, model):
                raise LabelsError(f"{archive.labels_path} names the clusters of K-means model {labels.kmeans_id}, "
                                  f"not of the current {model.id}; move it aside to name the new clusters")
            yield labels
            if model is not None:
                labels.kmeans_id = model.id
            save_labels(archive, labels, cluster_ids=ids)
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _model_ids(archive: Archive, cluster_ids: Iterable[int] | None) -> list[int] | None:
    if cluster_ids is not None:
        return list(cluster_ids)
    model = current_model(archive)
    return None if model is None else list(range(model.n_centres))


def name_cluster(archive: Archive, cluster: int, class_name: str, *, by: str = "expert",
                 cluster_ids: Iterable[int] | None = None, checked: dict[str, int] | None = None) -> Labels:
    """Name a cluster (replacing any earlier decision about it).

    ``checked``: what a look at some of its grains one by one found (class -> number of grains).
    """
    with _editing(archive, _model_ids(archive, cluster_ids)) as labels:
        entry: dict[str, Any] = {"class": class_name, **_stamp(by)}
        if checked:
            entry["checked"] = {str(k): int(v) for k, v in checked.items()}
        labels.clusters[int(cluster)] = entry
    return labels


def merge_clusters(archive: Archive, cluster: int, into: int, *, by: str = "expert",
                   cluster_ids: Iterable[int] | None = None) -> Labels:
    """Count ``cluster`` as whatever ``into`` is (``into`` must have an entry already)."""
    if int(cluster) == int(into):
        raise LabelsError(f"cannot merge cluster {cluster} into itself")
    with _editing(archive, _model_ids(archive, cluster_ids)) as labels:
        labels.clusters[int(cluster)] = {"merged_into": int(into), **_stamp(by)}
    return labels


def exclude_cluster(archive: Archive, cluster: int, reason: str = "", *, by: str = "expert",
                    cluster_ids: Iterable[int] | None = None) -> Labels:
    """Leave a cluster out of the class counts (e.g. reason ``chopped`` or ``debris``)."""
    with _editing(archive, _model_ids(archive, cluster_ids)) as labels:
        labels.clusters[int(cluster)] = {"excluded": True, "reason": str(reason), **_stamp(by)}
    return labels


def clear_cluster(archive: Archive, cluster: int, *, cluster_ids: Iterable[int] | None = None) -> Labels:
    """Forget the decision about a cluster (others merged into it must be cleared first)."""
    with _editing(archive, _model_ids(archive, cluster_ids)) as labels:
        labels.clusters.pop(int(cluster), None)
    return labels


def record_split(archive: Archive, cluster: int, into: Iterable[int], *, by: str = "expert",
                 cluster_ids: Iterable[int] | None = None) -> Labels:
    """Note that a named cluster was split (its grains now belong to ``into``, still unnamed)."""
    if not archive.labels_path.exists():
        return Labels()
    with _editing(archive, _model_ids(archive, cluster_ids)) as labels:
        if int(cluster) in labels.clusters:
            labels.clusters[int(cluster)] = {"split_into": [int(c) for c in into], **_stamp(by)}
    return labels


def record_move(archive: Archive, sample: str, particle: int, source: int, into: int, *,
                by: str = "expert") -> Labels:
    """Note that the expert moved one grain from cluster ``source`` to ``into`` (-1: out of every cluster)."""
    with _editing(archive, None) as labels:
        labels.moved_grains.append({"sample": str(sample), "particle": int(particle), "from": int(source),
                                    "to": int(into), **_stamp(by)})
    return labels


def add_class(archive: Archive, class_name: str, *, by: str = "expert") -> Labels:
    """Add a class to the list (no change when it is there already)."""
    _stamp(by)
    with _editing(archive, None) as labels:
        if class_name not in labels.classes:
            labels.classes.append(class_name)
    return labels
