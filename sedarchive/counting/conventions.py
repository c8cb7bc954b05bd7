"""CF-style attributes for the Datasets handed to notebooks (units, long names, ``positive`` for depths).

xarray and netCDF tools (and cf_xarray) read these; every attribute value is a string or a number
(``to_netcdf`` refuses dicts, and netCDF-3 lists of strings), see :func:`netcdf_safe_attrs`.
"""
from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import numpy as np
import xarray as xr

#: variable or coordinate name -> its attributes
CF_ATTRS: dict[str, dict[str, str]] = {
    "depth_top_cm": {"units": "cm", "long_name": "depth of the top of the sample below the core top",
                     "positive": "down", "standard_name": "depth"},
    "depth_bottom_cm": {"units": "cm", "long_name": "depth of the bottom of the sample below the core top",
                        "positive": "down"},
    "depth_mid_cm": {"units": "cm", "long_name": "mid-depth of the sample below the core top", "positive": "down"},
    "core": {"long_name": "sediment core id"},
    "sample": {"long_name": "sample (core and depth interval)"},
    "latitude": {"units": "degrees_north", "standard_name": "latitude", "long_name": "latitude of the core site"},
    "longitude": {"units": "degrees_east", "standard_name": "longitude", "long_name": "longitude of the core site"},
    "water_depth_m": {"units": "m", "long_name": "water depth at the core site", "positive": "down",
                      "standard_name": "sea_floor_depth_below_sea_surface"},
    "particle": {"long_name": "grain index within its sample"},
    "cluster": {"long_name": "K-means cluster of the grain (-1: none)"},
    "grain_class": {"long_name": "class named by the expert"},
    "count": {"units": "1", "long_name": "grains per cluster (chopped and clump grains left out)"},
    "class_count": {"units": "1", "long_name": "grains per named class"},
    "class_fraction": {"units": "1", "long_name": "fraction of classified grains in the class"},
    "n_grains": {"units": "1", "long_name": "grains in the sample"},
    "area_px": {"units": "1", "long_name": "grain area in pixels"},
    "size_um": {"units": "um", "long_name": "equivalent diameter of the grain"},
    "equivalent_diameter_um": {"units": "um", "long_name": "equivalent diameter of the grain"},
    "aspect_ratio": {"units": "1", "long_name": "aspect ratio of the grain"},
    "latent": {"long_name": "the encoder's latent vector of the grain"},
    "chopped": {"long_name": "grain cut by the frame edge"},
    "clump": {"long_name": "touching grains segmented as one"},
}


def netcdf_safe_attrs(attrs: Mapping[str, Any]) -> dict[str, Any]:
    """Attributes that ``to_netcdf`` accepts: dicts and lists of text as JSON text, bools as 0/1.

    Examples
    --------
    >>> netcdf_safe_attrs({"a": {"k": 1}, "b": [1.0, 2.0], "c": ["x"], "d": True, "e": None})
    {'a': '{"k": 1}', 'b': [1.0, 2.0], 'c': '["x"]', 'd': 1, 'e': ''}
    """
    out: dict[str, Any] = {}
    for key, value in attrs.items():
        if isinstance(value, (bool, np.bool_)):
            out[key] = int(value)
        elif value is None:
            out[key] = ""
        elif isinstance(value, Mapping):
            out[key] = json.dumps(value, default=str)
        elif isinstance(value, (list, tuple)):
            numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
            out[key] = list(value) if numeric and value else json.dumps(list(value), default=str)
        else:
            out[key] = value
    return out


def describe(ds: xr.Dataset) -> xr.Dataset:
    """``ds`` with CF attributes on the names it has, and every attribute netCDF-safe (a shallow copy)."""
    ds = ds.copy()
    ds.attrs = netcdf_safe_attrs(ds.attrs)
    for name in list(ds.variables):
        extra = CF_ATTRS.get(str(name), {})
        ds[name].attrs = netcdf_safe_attrs({**ds[name].attrs, **extra})
    return ds
