"""The 2-D UMAP map of the latent space: ``ARCHIVE/umap.zarr``.

UMAP is fitted on a bounded random subset of grains (default 50,000, drawn uniformly over the
archive), and the other grains are transformed onto the same map only when asked (``all_points``).
The map is one xarray Dataset with dimension ``point``: ``umap (point, dim)``, ``cluster``,
``sample``, ``core``, ``depth_top_cm``, ``depth_bottom_cm``, ``particle`` (index in its sample),
``chopped``, ``clump`` and ``fitted`` (True for the points UMAP was fitted on).
"""
from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import xarray as xr

from catalog import Archive, SampleKey, read_array
from catalog.files import write_dataset
from catalog.intake_catalog import register_results
from sedarchive.clustering.latents import flagged, n_grains
from sedarchive.progress import heartbeat


def embed(latents: np.ndarray, *, n_neighbors: int = 15, min_dist: float = 0.1, seed: int = 0):
    """Fit a 2-D UMAP on ``latents``; returns the fitted reducer and the embedding (float32)."""
    import umap

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # n_jobs overridden by random_state; numba notices
        reducer = umap.UMAP(n_components=2, n_neighbors=min(n_neighbors, max(2, len(latents) - 1)),
                            min_dist=min_dist, random_state=seed)
        points = reducer.fit_transform(latents)
    return reducer, points.astype(np.float32)


def build_map(
    archive: Archive,
    keys: Sequence[SampleKey],
    *,
    n_points: int = 50_000,
    all_points: bool = False,
    seed: int = 0,
    attrs: dict | None = None,
    progress: Callable[[str], None] | None = None,
) -> Path:
    """Write ``umap.zarr`` for the grains of ``keys`` (those with a finite latent and a cluster)."""
    rng = np.random.default_rng(seed)
    index = []  # (position in keys, store, grains) of every sample with grains
    for i, key in enumerate(keys):
        path = archive.sample_path(key)
        n = n_grains(path)
        if n:
            index.append((i, path, n))
    total = sum(n for _, _, n in index)
    if total < 3:
        raise ValueError(f"only {total} grains: too few for a UMAP map")
    n_fit = min(n_points, total)
    chosen = np.zeros(total, bool)
    chosen[rng.choice(total, size=n_fit, replace=False)] = True
    fit_parts, keep_parts, rest = [], [], []
    offset = 0
    for i, path, n in index:
        mine = chosen[offset : offset + n]
        offset += n
        rows = np.flatnonzero(mine)
        if len(rows):
            x = read_array(path, "latent", (rows, slice(None))).astype(np.float32)
            ok = np.isfinite(x).all(axis=1)
            fit_parts.append(x[ok])
            keep_parts.append((i, path, rows[ok]))
        if all_points and not mine.all():
            rest.append((i, path, np.flatnonzero(~mine)))
    if progress:
        progress(f"umap: fitting on {sum(len(r) for *_, r in keep_parts)} of {total} grains")
    with heartbeat("umap: fitting (no progress to count; about 2 min per 50,000 grains on 2 cores)",
                   quiet=progress is None):
        reducer, points = embed(np.concatenate(fit_parts), seed=seed)
    tables = [_table(keys, keep_parts, points, fitted=True)]
    for i, path, rows in rest:
        for start in range(0, len(rows), 20_000):
            block = rows[start : start + 20_000]
            x = read_array(path, "latent", (block, slice(None))).astype(np.float32)
            ok = np.isfinite(x).all(axis=1)
            if ok.any():
                tables.append(_table(keys, [(i, path, block[ok])], reducer.transform(x[ok]).astype(np.float32), fitted=False))
        if progress:
            progress(f"umap: transformed {keys[i].name}")
    ds = xr.concat(tables, dim="point") if len(tables) > 1 else tables[0]
    ds.attrs.update(attrs or {})
    ds.attrs.update(n_fitted=int(ds["fitted"].sum()), seed=int(seed))
    path = write_dataset(ds, archive.umap_path)
    register_results(archive.root)  # an intake entry `umap` (consolidated metadata)
    return path


def _table(keys, parts, points: np.ndarray, *, fitted: bool) -> xr.Dataset:
    cols = {name: [] for name in ("cluster", "sample", "core", "top", "bottom", "particle", "chopped", "clump")}
    for i, path, rows in parts:
        key = keys[i]
        cluster = read_array(path, "cluster")[rows] if _has(path, "cluster") else np.full(len(rows), -1)
        chopped, clump = flagged(path, n_grains(path))
        cols["cluster"].append(np.asarray(cluster, np.int32))
        cols["sample"].append(np.full(len(rows), key.name))
        cols["core"].append(np.full(len(rows), key.core))
        cols["top"].append(np.full(len(rows), key.top_cm))
        cols["bottom"].append(np.full(len(rows), key.bottom_cm))
        cols["particle"].append(rows.astype(np.int64))
        cols["chopped"].append(chopped[rows])
        cols["clump"].append(clump[rows])
    c = {k: np.concatenate(v) for k, v in cols.items()}
    return xr.Dataset(
        {
            "umap": (("point", "dim"), points),
            "cluster": ("point", c["cluster"]),
            "sample": ("point", c["sample"].astype(object)),
            "core": ("point", c["core"].astype(object)),
            "depth_top_cm": ("point", c["top"].astype(float)),
            "depth_bottom_cm": ("point", c["bottom"].astype(float)),
            "particle": ("point", c["particle"]),
            "chopped": ("point", c["chopped"].astype(bool)),
            "clump": ("point", c["clump"].astype(bool)),
            "fitted": ("point", np.full(len(points), fitted)),
        },
        coords={"dim": np.array(["x", "y"], dtype=object)},
    )


def _has(path: Path, name: str) -> bool:
    from catalog.store import array_names

    return name in array_names(path)


def open_map(archive: Archive) -> xr.Dataset:
    """The UMAP map of the archive (lazy)."""
    return xr.open_zarr(str(archive.umap_path), consolidated=True)


def load_map(archive: Archive) -> xr.Dataset | None:
    """The UMAP map of the archive, loaded into memory; None when there is no map yet."""
    if not archive.umap_path.exists():
        return None
    with open_map(archive) as ds:
        return ds.load()
