"""Down-core series for the report: class fractions and proxies with their intervals, per core.

Reads ``proportions.zarr`` as the contract describes it (``class_fraction``, proxies, and bounds
named ``<name>_lower``/``<name>_upper`` or ``_low``/``_high``); before any cluster is named it
falls back to the fractions of the most common clusters, with 95% Wilson intervals.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from sedarchive.counting.proportions import wilson_interval

if TYPE_CHECKING:
    from sedarchive.counting.labels import Labels

BOUND_SUFFIXES = (("_lower", "_upper"), ("_low", "_high"), ("_lo", "_hi"), ("_min", "_max"))
NOT_PROXIES = {"count", "class_count", "class_fraction", "flagged_count", "total", "n_grains"}
TOP_CLUSTERS = 6


def wilson(k: np.ndarray, n: np.ndarray, z: float = 1.959964) -> tuple[np.ndarray, np.ndarray]:
    """95% Wilson score interval of the fraction ``k / n`` (NaN where ``n`` is 0); the bounds of
    :func:`sedarchive.counting.proportions.wilson_interval` (one implementation).

    Examples
    --------
    >>> low, high = wilson(np.array([5]), np.array([10]))
    >>> round(float(low[0]), 3), round(float(high[0]), 3)
    (0.237, 0.763)
    """
    k = np.asarray(k, float)
    _, low, high = wilson_interval(k, np.broadcast_to(np.asarray(n, float), k.shape), z)
    return low, high


def bounds_of(ds, name: str):
    """The lower and upper bound variables of ``name`` in ``ds`` (or None, None)."""
    for lo, hi in BOUND_SUFFIXES:
        if f"{name}{lo}" in ds and f"{name}{hi}" in ds:
            return ds[f"{name}{lo}"], ds[f"{name}{hi}"]
    return None, None


def _is_bound(name: str) -> bool:
    return any(name.endswith(lo) or name.endswith(hi) for lo, hi in BOUND_SUFFIXES)


def proxy_names(ds) -> list[str]:
    """Data variables of ``proportions.zarr`` that are proxies (along ``sample``, not counts or bounds)."""
    return [str(n) for n, v in ds.data_vars.items()
            if "sample" in v.dims and str(n) not in NOT_PROXIES and not _is_bound(str(n)) and not str(n).endswith("_raw")
            and not {"cluster", "grain_class", "class"} & set(v.dims) and v.dtype.kind == "f"]


def downcore_series(proportions, table: pd.DataFrame, labels: Labels) -> list[tuple[str, dict, str]]:
    """Per core: ``(core, {"depth": mid-depths, "series": {name: (value, lower, upper)}}, xlabel)``."""
    out = []
    if proportions is not None and proportions.sizes.get("sample", 0):
        cores = np.array([str(c) for c in proportions["core"].values], dtype=object)
        for core in sorted(set(cores)):
            ds = proportions.isel(sample=np.flatnonzero(cores == core))
            depth = (ds["depth_top_cm"].values + ds["depth_bottom_cm"].values) / 2
            series: dict[str, tuple] = {}
            if "class_fraction" in ds:
                # the corrected fractions (each grain once, unbiased by frame edges) where written
                frac = "class_fraction_corrected" if "class_fraction_corrected" in ds else "class_fraction"
                lo, hi = bounds_of(ds, frac)
                counts = ds["class_count"].sum("sample").values if "class_count" in ds else None
                for i, cls in enumerate([str(c) for c in ds["grain_class"].values]):
                    if counts is not None and counts[i] == 0:
                        continue
                    series[f"{cls} fraction"] = (ds[frac].values[:, i],
                                                 None if lo is None else lo.values[:, i],
                                                 None if hi is None else hi.values[:, i])
            for name in proxy_names(ds):
                v = ds[name]
                lo, hi = bounds_of(ds, name)
                if v.ndim == 1:
                    series[name] = (v.values, None if lo is None else lo.values, None if hi is None else hi.values)
                else:
                    other = [d for d in v.dims if d != "sample"][0]
                    v = v.transpose("sample", other)
                    for j, label in enumerate([str(c) for c in v[other].values]):
                        series[f"{label}"] = (v.values[:, j],
                                              None if lo is None else lo.transpose("sample", other).values[:, j],
                                              None if hi is None else hi.transpose("sample", other).values[:, j])
            if not series and "count" in ds:
                series.update(_cluster_fractions(ds["count"].values, ds["cluster"].values))
            if series:
                xlabel = "fraction or ratio" if "class_fraction" in ds else "fraction of grains"
                out.append((core, {"depth": depth, "series": series}, xlabel))
        return out
    return _from_table(table)


def _cluster_fractions(count: np.ndarray, clusters: np.ndarray) -> dict[str, tuple]:
    total = count.sum(axis=1)
    top = np.argsort(-count.sum(axis=0), kind="stable")[:TOP_CLUSTERS]
    series = {}
    for j in top:
        with np.errstate(invalid="ignore", divide="ignore"):
            frac = np.where(total > 0, count[:, j] / np.maximum(total, 1), np.nan)
        lo, hi = wilson(count[:, j], total)
        series[f"cluster {int(clusters[j])}"] = (frac, lo, hi)
    return series


def _from_table(table: pd.DataFrame) -> list[tuple[str, dict, str]]:
    """Without ``proportions.zarr``: flagged-grain and cluster fractions straight from the grains."""
    out = []
    if not len(table):
        return out
    for core, rows in table.groupby("core", sort=True):
        per = rows.groupby(["sample"], sort=False)
        depth = ((per["depth_top_cm"].first() + per["depth_bottom_cm"].first()) / 2).to_numpy()
        n = per.size().to_numpy()
        flagged = per.apply(lambda r: int((r["chopped"] | r["clump"]).sum()), include_groups=False).to_numpy()
        lo, hi = wilson(flagged, n)
        series = {"flagged (chopped or clump)": (flagged / np.maximum(n, 1), lo, hi)}
        good = rows[(rows["cluster"] >= 0) & ~rows["chopped"] & ~rows["clump"]]
        if len(good):
            count = pd.crosstab(good["sample"], good["cluster"]).reindex(per.size().index, fill_value=0)
            series.update(_cluster_fractions(count.to_numpy(), count.columns.to_numpy()))
        out.append((str(core), {"depth": depth, "series": series}, "fraction of grains"))
    return out
