"""Stand-ins for the clustering part's labels, proportions and split, used only while it is absent.

:mod:`sedarchive.report.upstream` calls ``sedarchive.labels``, ``sedarchive.proportions`` and
``sedarchive.clustering`` when they exist; these functions follow the same schemas (CONTRIBUTING.md:
``labels.yaml``, ``proportions.zarr``) so the report and the review page work meanwhile.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from catalog import Archive, read_array, write_region
from catalog.errors import ArchiveError
from catalog.store import array_names

DEFAULT_CLASSES = ["quartz", "dark", "foram_intact", "foram_broken", "chopped", "clump", "debris"]


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def load_labels(path: Path) -> dict[str, Any]:
    """``labels.yaml`` as a dict (the default classes and no clusters when the file is absent)."""
    path = Path(path)
    if not path.exists():
        return {"version": 1, "classes": list(DEFAULT_CLASSES), "clusters": {}}
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise ArchiveError(f"{path} is not valid YAML: {str(err).splitlines()[0]}") from None
    if not isinstance(data, dict) or not isinstance(data.get("classes", []), list):
        raise ArchiveError(f"{path}: expected 'version', 'classes' (a list) and 'clusters' (a mapping)")
    clusters = data.get("clusters") or {}
    if not isinstance(clusters, dict):
        raise ArchiveError(f"{path}: 'clusters' must map cluster ids to decisions")
    out = {}
    for cid, entry in clusters.items():
        try:
            out[int(cid)] = dict(entry)
        except (TypeError, ValueError):
            raise ArchiveError(f"{path}: cluster {cid!r} is not an integer id with a mapping") from None
    return {"version": int(data.get("version", 1)), "classes": [str(c) for c in data.get("classes", [])],
            "clusters": out}


def save_labels(path: Path, labels: dict[str, Any]) -> None:
    """Write ``labels.yaml`` atomically (a temporary file in the same folder, then a rename)."""
    path = Path(path)
    text = yaml.safe_dump({"version": labels.get("version", 1), "classes": list(labels["classes"]),
                           "clusters": {int(k): v for k, v in sorted(labels["clusters"].items())}},
                          sort_keys=False)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".labels-", suffix=".yaml")
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def resolve(labels: dict[str, Any], cluster: int) -> dict[str, Any]:
    """Where a cluster ends up: ``{"root": id, "class": name|None, "excluded": bool, "reason": ...}``."""
    seen = set()
    root = int(cluster)
    while True:
        entry = labels["clusters"].get(root, {})
        if "merged_into" in entry and root not in seen:
            seen.add(root)
            root = int(entry["merged_into"])
            continue
        break
    entry = labels["clusters"].get(root, {})
    return {"root": root, "class": entry.get("class"), "excluded": bool(entry.get("excluded", False)),
            "reason": entry.get("reason")}


def write_proportions(archive: Archive, labels: dict[str, Any]) -> Path:
    """``proportions.zarr``: ``count(sample, cluster)``, and per class counts and fractions with
    95% Wilson intervals once some cluster is named. Written aside, then swapped in."""
    import xarray as xr

    keys = archive.keys()
    counts: dict[str, dict[int, int]] = {}
    clusters: set[int] = set()
    flagged = []
    for key in keys:
        path = archive.sample_path(key)
        names = set(array_names(path))
        cl = read_array(path, "cluster") if "cluster" in names else np.zeros(0, np.int64)
        bad = np.zeros(len(cl), bool)
        for flag in ("chopped", "clump"):
            if flag in names:
                bad |= read_array(path, flag).astype(bool)
        ids, n = np.unique(cl[(cl >= 0) & ~bad], return_counts=True)
        counts[key.name] = dict(zip(ids.tolist(), n.tolist()))
        clusters.update(ids.tolist())
        flagged.append(int(bad.sum()))
    cluster_ids = sorted(clusters)
    count = np.array([[counts[k.name].get(c, 0) for c in cluster_ids] for k in keys], dtype=np.int64)
    count = count.reshape(len(keys), len(cluster_ids))
    ds = xr.Dataset(
        {"count": (("sample", "cluster"), count), "flagged_count": (("sample",), np.array(flagged, np.int64))},
        coords={"sample": [k.name for k in keys], "cluster": np.array(cluster_ids, np.int64),
                "core": ("sample", [k.core for k in keys]),
                "depth_top_cm": ("sample", [k.top_cm for k in keys]),
                "depth_bottom_cm": ("sample", [k.bottom_cm for k in keys])},
    )
    classes = [c for c in labels["classes"]]
    if any(resolve(labels, c)["class"] or resolve(labels, c)["excluded"] for c in cluster_ids):
        class_count = np.zeros((len(keys), len(classes)), np.int64)
        for j, cid in enumerate(cluster_ids):
            where = resolve(labels, cid)
            if where["class"] in classes and not where["excluded"]:
                class_count[:, classes.index(where["class"])] += count[:, j]
        total = class_count.sum(axis=1, keepdims=True)
        low, high = wilson(class_count, total)
        with np.errstate(invalid="ignore", divide="ignore"):
            fraction = np.where(total > 0, class_count / np.maximum(total, 1), np.nan)
        ds = ds.assign_coords({"class": classes})
        ds["class_count"] = (("sample", "class"), class_count)
        ds["class_fraction"] = (("sample", "class"), fraction)
        ds["class_fraction_lower"] = (("sample", "class"), low)
        ds["class_fraction_upper"] = (("sample", "class"), high)
    target = archive.proportions_path
    tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    ds.to_zarr(tmp, mode="w", zarr_format=3, consolidated=True)
    old = target.with_name(f".{target.name}.old-{os.getpid()}")
    if target.exists():
        os.replace(target, old)
    os.replace(tmp, target)
    shutil.rmtree(old, ignore_errors=True)
    return target


def wilson(k: np.ndarray, n: np.ndarray, z: float = 1.959964) -> tuple[np.ndarray, np.ndarray]:
    """95% Wilson score interval of the fraction ``k / n`` (NaN where ``n`` is 0).

    Examples
    --------
    >>> low, high = wilson(np.array([5]), np.array([10]))
    >>> round(float(low[0]), 3), round(float(high[0]), 3)
    (0.237, 0.763)
    """
    k = np.asarray(k, float)
    n = np.broadcast_to(np.asarray(n, float), k.shape)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = k / n
        denom = 1 + z * z / n
        centre = (p + z * z / (2 * n)) / denom
        half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    low = np.where(n > 0, np.clip(centre - half, 0, 1), np.nan)
    high = np.where(n > 0, np.clip(centre + half, 0, 1), np.nan)
    return low, high


def split_cluster(archive: Archive, cluster: int, n: int = 2, seed: int = 0) -> list[int]:
    """Split one cluster in ``n`` by K-means on its grains' latents; the parts get new ids."""
    from sklearn.cluster import KMeans

    members = []
    for key in archive.keys():
        path = archive.sample_path(key)
        if not {"cluster", "latent"} <= set(array_names(path)):
            continue
        cl = read_array(path, "cluster")
        idx = np.flatnonzero(cl == cluster)
        if idx.size:
            members.append((key, path, cl, idx, read_array(path, "latent")[idx]))
    total = sum(len(m[3]) for m in members)
    if total < n:
        raise ArchiveError(f"cluster {cluster} has {total} grains with latents; cannot split it in {n}")
    latents = np.concatenate([m[4] for m in members]).astype(np.float64)
    parts = KMeans(n_clusters=n, n_init=4, random_state=seed).fit_predict(latents)
    first = max(_max_cluster(archive), cluster) + 1
    new_ids = list(range(first, first + n))
    start = 0
    for key, path, cl, idx, _ in members:
        cl = cl.copy()
        cl[idx] = np.asarray(new_ids)[parts[start:start + len(idx)]]
        start += len(idx)
        write_region(path, "cluster", 0, cl)
    _split_umap(archive, cluster, members, parts, new_ids)
    return new_ids


def _max_cluster(archive: Archive) -> int:
    top = -1
    for key in archive.keys():
        path = archive.sample_path(key)
        if "cluster" in set(array_names(path)):
            cl = read_array(path, "cluster")
            if cl.size:
                top = max(top, int(cl.max()))
    return top


def _split_umap(archive: Archive, cluster: int, members, parts, new_ids) -> None:
    """Keep ``umap.zarr``'s cluster of each point in step with the stores."""
    import zarr

    path = archive.root / "umap.zarr"
    if not path.exists():
        return
    group = zarr.open_group(str(path), mode="r+")
    sample = np.asarray(group["sample"][:]).astype(str)
    particle = np.asarray(group["particle"][:])
    cl = np.asarray(group["cluster"][:])
    lookup = {}
    start = 0
    for key, _, _, idx, _ in members:
        for i, p in zip(idx.tolist(), parts[start:start + len(idx)].tolist()):
            lookup[(key.name, i)] = new_ids[p]
        start += len(idx)
    for point in np.flatnonzero(cl == cluster):
        cl[point] = lookup.get((sample[point], int(particle[point])), cl[point])
    group["cluster"][:] = cl
    zarr.consolidate_metadata(str(path))


__all__ = ["DEFAULT_CLASSES", "load_labels", "save_labels", "resolve", "write_proportions", "wilson",
           "split_cluster", "now"]
