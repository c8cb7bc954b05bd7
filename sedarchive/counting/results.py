"""Results for notebooks: an archive's proportions, all grains of a selection, down-core profiles.

Examples
--------
>>> import sedarchive                                                         # doctest: +SKIP
>>> ds = sedarchive.open_proportions("my-archive")                            # doctest: +SKIP
>>> ds.class_fraction.sel(grain_class="quartz")                               # doctest: +SKIP
>>> grains = sedarchive.open_grains("my-archive", core="AI-3352", depth="100-150")  # doctest: +SKIP
>>> grains.size_um.groupby(grains.depth_top_cm).median()                      # doctest: +SKIP
"""
from __future__ import annotations

import json
import warnings
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import xarray as xr

from catalog import Archive, SampleKey
from catalog.store import array_names
from sedarchive.counting.conventions import describe, netcdf_safe_attrs
from sedarchive.errors import InputError

#: per-grain variables of a sample store that :func:`open_grains` carries (when the store has them)
GRAIN_VARIABLES = ("cluster", "chopped", "clump", "area_px", "box_height_px", "box_width_px", "equivalent_diameter_um",
                   "aspect_ratio", "solidity", "bbox", "sharpness", "latent", "particle_images")


def open_store(path: str | Path) -> xr.Dataset:
    """A Zarr store written whole (proportions.zarr, umap.zarr) with its consolidated metadata."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zarr: consolidated metadata is not yet in the v3 spec
        try:
            return xr.open_zarr(str(path), consolidated=True)
        except (KeyError, ValueError, OSError):  # written before consolidation: read it as it is
            return xr.open_zarr(str(path), consolidated=False)


def open_proportions(archive: Archive | str | Path) -> xr.Dataset:
    """``ARCHIVE/proportions.zarr`` as an xarray Dataset (dimension ``sample``, loaded into memory).

    Archives written before the class dimension was renamed get ``class`` renamed to ``grain_class``.
    """
    archive = archive if isinstance(archive, Archive) else Archive.open(archive)
    path = archive.proportions_path
    if not path.exists():
        raise InputError(f"{archive.root} has no proportions.zarr yet; run `sedarchive cluster` first")
    with open_store(path) as ds:
        ds = ds.load()
    if "class" in ds.dims:  # written before (dimension `class`, a Python keyword)
        ds = ds.rename({"class": "grain_class"})
    return ds


def read_proportions(archive: Archive) -> xr.Dataset | None:
    """``proportions.zarr`` loaded, or None when it does not exist yet (for the report and review page)."""
    return open_proportions(archive) if archive.proportions_path.exists() else None


def depth_profile(ds: xr.Dataset, core: str) -> xr.Dataset:
    """The samples of one core, sorted from top to bottom (dimension ``sample``, coordinate ``depth_mid_cm``)."""
    cores = sorted(set(ds["core"].values.tolist()))
    if core not in cores:
        raise InputError(f"core {core!r} is not in the proportions (cores: {', '.join(cores) or 'none'})")
    return ds.sel(sample=ds["core"] == core).sortby(["depth_top_cm", "depth_bottom_cm"])


def grain_view(ds: xr.Dataset) -> xr.Dataset:
    """One sample store's grains as a Dataset that concatenates with others along ``grain``.

    Use it as ``preprocess`` of ``xr.open_mfdataset(paths, engine="zarr", preprocess=grain_view,
    combine="nested", concat_dim="grain")``. Only per-grain variables are kept, dimension
    ``particle`` becomes ``grain``; ``sample``, ``core``, ``depth_top_cm``, ``depth_bottom_cm`` and
    ``particle`` are per-grain coordinates; the store's per-grain ``position`` (whose name is also
    the dimension of stage positions) is renamed ``stage_position``; attributes are netCDF-safe.
    """
    core, top, bottom = ds.attrs.get("core"), ds.attrs.get("depth_top_cm"), ds.attrs.get("depth_bottom_cm")
    if core is None or top is None or bottom is None:
        raise InputError("a sample store needs core, depth_top_cm and depth_bottom_cm attributes")
    name = SampleKey(str(core), float(top), float(bottom)).name
    keep = [v for v in GRAIN_VARIABLES if v in ds.variables and "particle" in ds[v].dims]
    out = ds[keep] if keep else xr.Dataset()
    if "position" in ds.variables and ds["position"].dims == ("particle",):
        out["stage_position"] = ds["position"].variable
    out = out.reset_coords(drop=True) if out.coords else out
    n = int(ds.sizes.get("particle", 0))
    out = out.assign_coords(
        sample=("particle", np.full(n, name, dtype=object)),
        core=("particle", np.full(n, str(core), dtype=object)),
        depth_top_cm=("particle", np.full(n, float(top))),
        depth_bottom_cm=("particle", np.full(n, float(bottom))),
        particle=("particle", np.arange(n)),
    ).rename({"particle": "grain"})
    out = out.rename_vars({"grain": "particle"}) if "grain" in out.variables else out
    if "focal_offsets_um" in ds.attrs and "layer" in out.dims:
        out = out.assign_coords(focal_offset_um=("layer", np.asarray(ds.attrs["focal_offsets_um"], float)))
    out.attrs = netcdf_safe_attrs({k: v for k, v in ds.attrs.items() if k not in ("core", "depth_top_cm", "depth_bottom_cm")})
    return out


def open_grains(archive: Archive | str | Path, core: str | Iterable[str] | None = None,
                depth: str | tuple[float, float] | None = None) -> xr.Dataset:
    """All grains of the selected samples as one lazy (Dask-backed) Dataset, dimension ``grain``.

    ``core`` and ``depth`` select as on the command line (``depth="100-150"``: samples whose interval
    overlaps it). Coordinates per grain: ``sample``, ``core``, ``depth_top_cm``, ``depth_bottom_cm``,
    ``particle`` (its index within the sample) and, where the catalog's cores table knows them,
    ``latitude``, ``longitude``, ``water_depth_m``; CF attributes throughout, so ``to_netcdf`` works.
    Per-sample attributes differ between samples and are dropped (the catalog has them).
    """
    from catalog.cores import read_cores

    archive = archive if isinstance(archive, Archive) else Archive.open(archive)
    rows = [r for r in archive.samples(core=core, depth=depth) if "particle" in _dims(r.path)]
    if not rows:
        raise InputError(f"no sample with grains in {archive.root} matched core={core!r} depth={depth!r}")
    parts = []
    for row in rows:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds = xr.open_zarr(str(row.path), consolidated=False, chunks={})
        parts.append(grain_view(ds))
    grains = xr.concat(parts, dim="grain", data_vars="minimal", coords="minimal", compat="override",
                       combine_attrs="drop")
    cores = read_cores(archive.root)
    if cores:
        ids = grains["core"].values
        for field in ("latitude", "longitude", "water_depth_m"):
            values = np.array([getattr(cores.get(str(c)), field, None) if c in cores else None for c in ids], dtype=float)
            grains = grains.assign_coords({field: ("grain", values)})
    grains.attrs = {"source": str(archive.root), "samples": json.dumps([r.name for r in rows]),
                    "Conventions": "CF-1.10"}
    return describe(grains)


def _dims(path: Path) -> set[str]:
    names = set(array_names(path))
    return {"particle"} if {"bbox", "cluster", "particle_images"} & names else set()


__all__ = ["depth_profile", "grain_view", "open_grains", "open_proportions", "open_store", "read_proportions"]
