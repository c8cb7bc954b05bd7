"""``ARCHIVE/proportions.zarr``: grains per sample and cluster, per named class, and proxies with bounds.

One xarray Dataset, dimension ``sample`` with coordinates ``core``, ``depth_top_cm``,
``depth_bottom_cm`` (and ``depth_mid_cm``), so ``ds.sel(sample=ds.core == "X").sortby("depth_top_cm")``
is a down-core series. Variables:

- ``count (sample, cluster)``: grains not flagged chopped or clump, per cluster;
  ``flag_count (sample, flag)`` counts chopped and clump grains apart (a grain may be both);
  ``n_grains``, ``n_flagged``, ``n_unassigned`` per sample, so
  ``count.sum("cluster") + n_flagged + n_unassigned == n_grains``.
- ``count_corrected (sample, cluster)``: each grain once and unbiased by frame edges
  (:mod:`sedarchive.counting`: repeats across overlapping frames left out, whole grains weighted by
  the inverse of their chance to be seen whole; grains flagged clump are kept, for the expert to
  exclude the clusters of clumps); ``n_repeats (sample)``, and ``counting (sample)``
  (``plate`` or ``per frame``) with ``counting_note`` saying why a sample is counted per frame.
- once ``labels.yaml`` names clusters: ``cluster_class (cluster)``, ``class_count (sample, class)``,
  ``n_classified`` (grains of named, not excluded clusters), ``class_fraction`` with its 95% Wilson
  interval ``class_fraction_lower`` / ``class_fraction_upper`` (raw counts, sampling error only);
  ``class_count_corrected`` (with the grains hidden in counted clumps added, estimated from the
  clumps' areas and names: :mod:`sedarchive.counting.clumps`) and ``class_fraction_corrected`` with 95 % bootstrap bounds
  ``class_fraction_corrected_lower`` / ``_upper`` (grains, edge weights and the clusters' checked
  impurity: :mod:`sedarchive.counting.intervals`); and one variable per proxy with
  ``<proxy>_lower`` / ``<proxy>_upper``, from the corrected counts, next to ``<proxy>_raw`` with its
  Wilson bounds ``<proxy>_raw_lower`` / ``<proxy>_raw_upper``.

A proxy is ``sum(numerator classes) / sum(denominator classes)``. When the numerator classes are part
of the denominator it is a proportion (Wilson interval); when they are disjoint it is a ratio
``A / B``, whose bounds come from the Wilson interval of ``A / (A + B)`` mapped through ``p / (1 - p)``.
"""
from __future__ import annotations

import datetime as dt
import json
import re
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from catalog import Archive, SampleKey, read_array, read_attrs
from catalog.files import write_dataset
from catalog.intake_catalog import register_results
from catalog.store import GRAIN_FLAGS, array_names, read_flags
from sedarchive.clustering.model import current_model
from sedarchive.counting.conventions import describe
from sedarchive.errors import InputError
from sedarchive.counting.class_estimates import corrected_estimates
from sedarchive.counting.labels import checked_counts, current_labels, resolve
from sedarchive.counting.sample import count_sample

FLAGS = GRAIN_FLAGS
#: the dimension of named classes (``class`` before: a Python keyword, so ``.sel(class=...)`` could not be written;
#: :func:`sedarchive.counting.results.open_proportions` renames it in archives written before)
CLASS_DIM = "grain_class"


_PROXY_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,63}")


@dataclass(frozen=True)
class Proxy:
    """A paleo-proxy: a ratio of summed class counts."""

    name: str
    numerator: tuple[str, ...]
    denominator: tuple[str, ...]

    def __post_init__(self) -> None:
        # the name becomes a variable of proportions.zarr (a folder): no '/', '..' or other surprises
        if not isinstance(self.name, str) or not _PROXY_NAME.fullmatch(self.name):
            raise InputError(f"proxy name {self.name!r} must be a letter then letters, digits or _ "
                             f"(it names variables of proportions.zarr)")

    @property
    def kind(self) -> str:
        num, den = set(self.numerator), set(self.denominator)
        if num <= den:
            return "fraction"
        if not num & den:
            return "ratio"
        raise InputError(f"proxy {self.name}: numerator classes must be all inside the denominator "
                         f"(a fraction) or all outside it (a ratio)")


DEFAULT_PROXIES = (
    Proxy("foram_fragmentation", ("foram_broken",), ("foram_broken", "foram_intact")),
    Proxy("biogenic_terrigenous", ("foram_intact", "foram_broken"), ("quartz", "dark")),
)


def proxies_from(mapping: Mapping[str, Any] | None) -> tuple[Proxy, ...]:
    """Proxies from settings: ``{name: {numerator: [...], denominator: [...]}}`` (None: the defaults)."""
    if mapping is None:
        return DEFAULT_PROXIES
    out = []
    for name, spec in mapping.items():
        if not isinstance(spec, Mapping) or not spec.get("numerator") or not spec.get("denominator"):
            raise InputError(f"proxy {name!r} needs non-empty numerator and denominator class lists")
        proxy = Proxy(str(name), tuple(spec["numerator"]), tuple(spec["denominator"]))
        proxy.kind  # noqa: B018 - validates
        out.append(proxy)
    return tuple(out)


def wilson_interval(successes: np.ndarray, trials: np.ndarray, z: float = 1.959964) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Point estimate and Wilson score interval of ``successes / trials`` (NaN where trials is 0).

    Examples
    --------
    >>> p, lo, hi = wilson_interval(np.array([30]), np.array([100]))
    >>> float(p[0]), round(float(lo[0]), 3), round(float(hi[0]), 3)
    (0.3, 0.219, 0.396)
    """
    k = np.asarray(successes, dtype=float)
    n = np.asarray(trials, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = k / n
        denom = 1 + z**2 / n
        centre = (p + z**2 / (2 * n)) / denom
        half = z * np.sqrt(p * (1 - p) / n + z**2 / (4 * n**2)) / denom
    lo = np.where(n > 0, np.clip(centre - half, 0, 1), np.nan)
    hi = np.where(n > 0, np.clip(centre + half, 0, 1), np.nan)
    return np.where(n > 0, p, np.nan), np.minimum(lo, np.where(n > 0, p, np.nan)), np.maximum(hi, np.where(n > 0, p, np.nan))


def proxy_with_bounds(proxy: Proxy, class_count: xr.DataArray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Value, lower and upper 95% bound of a proxy for every sample."""
    num = class_count.sel({CLASS_DIM: list(proxy.numerator)}).sum(CLASS_DIM).values
    den = class_count.sel({CLASS_DIM: list(proxy.denominator)}).sum(CLASS_DIM).values
    if proxy.kind == "fraction":
        return wilson_interval(num, den)
    p, lo, hi = wilson_interval(num, num + den)
    with np.errstate(divide="ignore", invalid="ignore"):
        odds = [np.where(q < 1, q / (1 - q), np.inf) for q in (p, lo, hi)]
    value = np.where(den > 0, odds[0], np.nan)
    return value, np.where(np.isfinite(p), odds[1], np.nan), np.where(np.isfinite(p), odds[2], np.nan)


def sample_counts(path: str | Path, n_clusters: int) -> dict[str, Any]:
    """Grain counts of one store (cluster -1 and flagged grains counted apart)."""
    names = array_names(path)
    cluster = np.asarray(read_array(path, "cluster"), np.int64) if "cluster" in names else np.empty(0, np.int64)
    n = len(cluster)
    flags = dict(zip(FLAGS, read_flags(path, n) if n else (np.zeros(0, bool), np.zeros(0, bool))))
    flagged = flags["chopped"] | flags["clump"]
    plain = cluster[~flagged]
    if plain.size and plain.max() >= n_clusters:
        raise InputError(f"{Path(path).name}: cluster id {plain.max()} is beyond the model's {n_clusters} clusters")
    counted = count_sample(path)
    weight = np.where(cluster >= 0, counted.weight, 0.0) if n else np.empty(0)
    grains: tuple[np.ndarray, ...] = (cluster, weight)
    if n and "area_px" in names:  # clumps' hidden grains are estimated from their areas
        grains += (np.asarray(read_array(path, "area_px"), float), flags["clump"])
    return {
        "count": np.bincount(plain[plain >= 0], minlength=n_clusters),
        "count_corrected": np.bincount(np.clip(cluster, 0, None), weights=weight, minlength=n_clusters)[:n_clusters],
        "grains": grains,
        "n_repeats": counted.n_repeats,
        "counting": counted.mode,
        "counting_note": counted.note,
        "flag_count": [int(flags[f].sum()) for f in FLAGS],
        "n_grains": n,
        "n_flagged": int(flagged.sum()),
        "n_unassigned": int((plain < 0).sum()),
    }


def build_proportions(archive: Archive, keys: Sequence[SampleKey], n_clusters: int, *,
                      labels_mapping: Mapping[int, str | None] | None = None, classes: Sequence[str] = (),
                      proxies: Sequence[Proxy] = DEFAULT_PROXIES, attrs: Mapping[str, Any] | None = None,
                      checked: Mapping[int, Mapping[str, int]] | None = None) -> xr.Dataset:
    """The proportions Dataset of ``keys`` (in memory); ``checked``: the expert's check of each cluster."""
    rows = [sample_counts(archive.sample_path(k), n_clusters) for k in keys]
    count = np.array([r["count"] for r in rows], dtype=np.int64).reshape(len(keys), n_clusters)
    ds = xr.Dataset(
        {
            "count": (("sample", "cluster"), count),
            "flag_count": (("sample", "flag"), np.array([r["flag_count"] for r in rows], np.int64).reshape(len(keys), len(FLAGS))),
            "n_grains": ("sample", np.array([r["n_grains"] for r in rows], np.int64)),
            "n_flagged": ("sample", np.array([r["n_flagged"] for r in rows], np.int64)),
            "n_unassigned": ("sample", np.array([r["n_unassigned"] for r in rows], np.int64)),
            "count_corrected": (("sample", "cluster"),
                                np.array([r["count_corrected"] for r in rows], float).reshape(len(keys), n_clusters)),
            "n_repeats": ("sample", np.array([r["n_repeats"] for r in rows], np.int64)),
            "counting": ("sample", np.array([r["counting"] for r in rows], dtype=object)),
            "counting_note": ("sample", np.array([r["counting_note"] for r in rows], dtype=object)),
        },
        coords={
            "sample": np.array([k.name for k in keys], dtype=object),
            "core": ("sample", np.array([k.core for k in keys], dtype=object)),
            "depth_top_cm": ("sample", np.array([k.top_cm for k in keys], float)),
            "depth_bottom_cm": ("sample", np.array([k.bottom_cm for k in keys], float)),
            "depth_mid_cm": ("sample", np.array([(k.top_cm + k.bottom_cm) / 2 for k in keys], float)),
            "cluster": np.arange(n_clusters),
            "flag": np.array(FLAGS, dtype=object),
        },
        attrs=dict(attrs or {}),
    )
    ds["count"].attrs["description"] = "grains per cluster, chopped and clump grains left out"
    ds["count_corrected"].attrs["description"] = ("grains per cluster counted once across overlapping frames, "
                                                  "weighted by 1 / P(seen whole) (Miles-Lantuejoul)")
    if labels_mapping:
        ds = _with_classes(ds, labels_mapping, list(classes), proxies)
        ds = _with_corrected(ds, [r["grains"] for r in rows], list(classes), proxies, checked or {})
    return describe(ds)  # CF attributes, nothing to_netcdf refuses


def _with_corrected(ds: xr.Dataset, grains: list[tuple[np.ndarray, ...]], classes: list[str],
                    proxies: Sequence[Proxy], checked: Mapping[int, Mapping[str, int]]) -> xr.Dataset:
    """Corrected class counts, fractions and proxies with bootstrap bounds; proxies use them by default."""
    names = ds["cluster_class"].values
    member = np.array([[1 if names[c] == cls else 0 for cls in classes] for c in range(ds.sizes["cluster"])], float)
    member = member.reshape(ds.sizes["cluster"], len(classes))
    check = np.zeros_like(member)
    for cid, found in checked.items():
        if 0 <= cid < len(check):
            for cls, n in found.items():
                if cls in classes:
                    check[cid, classes.index(cls)] = n
    spec = [(p.name, [classes.index(c) for c in p.numerator], [classes.index(c) for c in p.denominator])
            for p in proxies]
    est = corrected_estimates(grains, member, check, spec)
    for var in ("class_count", "class_fraction", "class_fraction_lower", "class_fraction_upper"):
        ds[var.replace("class_count", "class_count_corrected").replace("class_fraction", "class_fraction_corrected")] = (
            ("sample", CLASS_DIM), est[var])
    ds["class_fraction_corrected"].attrs["interval"] = (
        "95% bootstrap over grains (Poisson, with edge weights) and over cluster contents (Dirichlet of the "
        "expert's check; unchecked clusters taken as pure); grains hidden in clumps re-estimated in each replicate")
    ds["class_count_corrected"].attrs["clumps"] = (
        "grains hidden in counted clump grains added, from the clumps' areas and names (sedarchive.counting.clumps)")
    for proxy in proxies:
        for suffix in ("", "_lower", "_upper"):
            ds[f"{proxy.name}_raw{suffix}"] = ds[f"{proxy.name}{suffix}"]
            ds[f"{proxy.name}{suffix}"] = ("sample", est[f"{proxy.name}{suffix}"], ds[f"{proxy.name}_raw{suffix}"].attrs)
        ds[proxy.name].attrs["interval"] = "95% bootstrap of the corrected counts (see class_fraction_corrected)"
        ds[proxy.name].attrs["counts"] = "corrected"
    return ds


def _with_classes(ds: xr.Dataset, mapping: Mapping[int, str | None], classes: list[str],
                  proxies: Sequence[Proxy]) -> xr.Dataset:
    for proxy in proxies:
        missing = [c for c in proxy.numerator + proxy.denominator if c not in classes]
        if missing:
            raise InputError(f"proxy {proxy.name} uses class {missing[0]!r}, which labels.yaml does not list")
    member = np.zeros((ds.sizes["cluster"], len(classes)), np.int64)
    names = np.full(ds.sizes["cluster"], "", dtype=object)
    for cid, cls in mapping.items():
        if cls is not None and 0 <= cid < ds.sizes["cluster"]:
            member[cid, classes.index(cls)] = 1
            names[cid] = cls
        elif cls is None and 0 <= cid < ds.sizes["cluster"]:
            names[cid] = "(excluded)"
    ds["cluster_class"] = ("cluster", names)
    ds = ds.assign_coords({CLASS_DIM: np.array(classes, dtype=object)})
    class_count = ds["count"].values @ member
    n_classified = class_count.sum(axis=1)
    p, lo, hi = wilson_interval(class_count, n_classified[:, None])
    ds["class_count"] = (("sample", CLASS_DIM), class_count)
    ds["n_classified"] = ("sample", n_classified)
    ds["class_fraction"] = (("sample", CLASS_DIM), p)
    ds["class_fraction_lower"] = (("sample", CLASS_DIM), lo)
    ds["class_fraction_upper"] = (("sample", CLASS_DIM), hi)
    for proxy in proxies:
        value, lower, upper = proxy_with_bounds(proxy, ds["class_count"])
        meta = {"numerator": " ".join(proxy.numerator), "denominator": " ".join(proxy.denominator), "kind": proxy.kind,
                "interval": "95% Wilson" + (" on A/(A+B), as odds" if proxy.kind == "ratio" else "")}
        ds[proxy.name] = ("sample", value, meta)
        ds[f"{proxy.name}_lower"] = ("sample", lower)
        ds[f"{proxy.name}_upper"] = ("sample", upper)
    return ds


def write_proportions(archive: Archive, *, proxies: Sequence[Proxy] | None = None) -> Path:
    """(Re)write proportions.zarr for every sample clustered with the current model; call it after labels change.

    ``proxies`` default to those recorded in the existing proportions.zarr, else :data:`DEFAULT_PROXIES`.
    """
    model = current_model(archive)
    if model is None:
        raise InputError(f"{archive.root}: no K-means model yet; run `sedarchive cluster` first")
    if proxies is None:
        proxies = recorded_proxies(archive)
    keys = [row.key for row in archive.samples(status="clustered")
            if read_attrs(row.path).get("kmeans_id") == model.id]
    labels = current_labels(archive)  # stale names (another model's) refused here as in every reader
    note = labels.stale_note
    mapping = resolve(labels)
    attrs = {
        "kmeans_id": model.id,
        "encoder_id": model.encoder_id or "",
        "written_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "labels_file": archive.labels_path.name if mapping else "",
        "labels_note": note,
        "proxies": json.dumps([asdict(p) for p in proxies]),
        "retired_clusters": json.dumps([int(i) for i in np.flatnonzero(model.retired)]),
    }
    ds = build_proportions(archive, keys, model.n_centres, labels_mapping=mapping, classes=labels.classes,
                           proxies=proxies, attrs=attrs, checked=checked_counts(labels) if mapping else None)
    path = write_dataset(ds, archive.proportions_path)
    register_results(archive.root)  # an intake entry `proportions` (consolidated metadata)
    return path


def recorded_proxies(archive: Archive) -> tuple[Proxy, ...]:
    path = archive.proportions_path
    if path.exists():
        try:
            raw = json.loads(xr.open_zarr(str(path)).attrs.get("proxies", "null"))
        except (OSError, ValueError, KeyError):
            raw = None
        if raw:
            return tuple(Proxy(p["name"], tuple(p["numerator"]), tuple(p["denominator"])) for p in raw)
    return DEFAULT_PROXIES
