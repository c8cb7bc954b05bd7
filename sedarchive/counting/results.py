"""Results for notebooks: an archive's proportions in one call, and down-core depth profiles.

Examples
--------
>>> from sedarchive.counting.results import open_proportions, depth_profile   # doctest: +SKIP
>>> ds = open_proportions("my-archive")                                # doctest: +SKIP
>>> depth_profile(ds, "AI-3352").foram_fragmentation.plot(y="depth_mid_cm", yincrease=False)  # doctest: +SKIP
"""
from __future__ import annotations

from pathlib import Path

import xarray as xr

from catalog import Archive
from sedarchive.errors import InputError


def open_proportions(archive: Archive | str | Path) -> xr.Dataset:
    """``ARCHIVE/proportions.zarr`` as an xarray Dataset (dimension ``sample``, loaded into memory)."""
    archive = archive if isinstance(archive, Archive) else Archive.open(archive)
    path = archive.proportions_path
    if not path.exists():
        raise InputError(f"{archive.root} has no proportions.zarr yet; run `sedarchive cluster` first")
    with xr.open_zarr(str(path)) as ds:
        return ds.load()


def read_proportions(archive: Archive) -> xr.Dataset | None:
    """``proportions.zarr`` loaded, or None when it does not exist yet (for the report and review page)."""
    return open_proportions(archive) if archive.proportions_path.exists() else None


def depth_profile(ds: xr.Dataset, core: str) -> xr.Dataset:
    """The samples of one core, sorted from top to bottom (dimension ``sample``, coordinate ``depth_mid_cm``)."""
    cores = sorted(set(ds["core"].values.tolist()))
    if core not in cores:
        raise InputError(f"core {core!r} is not in the proportions (cores: {', '.join(cores) or 'none'})")
    return ds.sel(sample=ds["core"] == core).sortby(["depth_top_cm", "depth_bottom_cm"])
