"""The archive's grains as one table, and their images, read from the sample stores.

The report, the review page and the export all look at grains the same way: one row per grain
with its sample, its index within the sample (``particle``), its cluster, its sharpest focal layer,
its size and its flags. Only per-grain scalars are read here; images are read for the few grains
shown, a sample at a time.
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from catalog import Archive, SampleKey, read_array, read_attrs
from catalog.store import array_names, array_shape, open_array

#: per-grain scalar variables copied into the table when a store has them
MEASUREMENTS = (
    "area_px",
    "box_height_px",
    "box_width_px",
    "equivalent_diameter_um",
    "aspect_ratio",
    "solidity",
)


def grain_table(archive: Archive, keys: Iterable[SampleKey] | None = None) -> pd.DataFrame:
    """One row per grain of the selected samples (all catalogued samples by default).

    Columns: ``sample``, ``core``, ``depth_top_cm``, ``depth_bottom_cm``, ``particle``,
    ``position``, ``cluster`` (-1 where not assigned), ``sharpest_layer``, ``chopped``, ``clump``,
    ``size_um`` (equivalent diameter: from the area in pixels times ``pixel_size_um`` where only
    pixels are known, in pixels without a pixel size (``size_unit`` says which), NaN when nothing
    tells), the measurements of :data:`MEASUREMENTS` that exist, and
    ``bbox_y0 .. bbox_x1``. Samples without grains add no rows.
    """
    keys = list(keys) if keys is not None else archive.keys()
    frames = [_sample_rows(archive, key) for key in keys]
    frames = [f for f in frames if len(f)]
    if not frames:
        return pd.DataFrame(columns=["sample", "core", "depth_top_cm", "depth_bottom_cm", "particle",
                                     "position", "cluster", "sharpest_layer", "chopped", "clump", "size_um",
                                     "size_unit"])
    return pd.concat(frames, ignore_index=True)


def _sample_rows(archive: Archive, key: SampleKey) -> pd.DataFrame:
    path = archive.sample_path(key)
    names = set(array_names(path))
    if "particle_images" not in names and "bbox" not in names:
        return pd.DataFrame()
    n = _length(path, "bbox" if "bbox" in names else "particle_images")
    attrs = read_attrs(path)
    rows: dict[str, object] = {
        "sample": key.name,
        "core": key.core,
        "depth_top_cm": key.top_cm,
        "depth_bottom_cm": key.bottom_cm,
        "particle": np.arange(n, dtype=np.int64),
    }
    rows["position"] = _read(path, names, "position", n, -1).astype(np.int64)
    rows["cluster"] = _read(path, names, "cluster", n, -1).astype(np.int64)
    rows["sharpest_layer"] = sharpest_layers(path, names, n)
    rows["chopped"] = _read(path, names, "chopped", n, False).astype(bool)
    rows["clump"] = _read(path, names, "clump", n, False).astype(bool)
    for name in MEASUREMENTS:
        if name in names:
            rows[name] = read_array(path, name)
    if "bbox" in names:
        bbox = read_array(path, "bbox").reshape(n, 4)
        for i, corner in enumerate(("y0", "x0", "y1", "x1")):
            rows[f"bbox_{corner}"] = bbox[:, i].astype(np.int64)
    rows["size_um"] = grain_size_um(rows, attrs.get("pixel_size_um"), n)
    rows["size_unit"] = "µm" if ("equivalent_diameter_um" in rows or attrs.get("pixel_size_um")) else "px"
    return pd.DataFrame(rows)


def _length(path: Path, name: str) -> int:
    return array_shape(path, name)[0]


def _read(path: Path, names: set[str], name: str, n: int, fill: object) -> np.ndarray:
    if name in names:
        return np.asarray(read_array(path, name)).reshape(n)
    return np.full(n, fill)


def sharpest_layers(path: Path, names: set[str], n: int) -> np.ndarray:
    """The focal layer to show for each grain: ``sharpest_layer``, else argmax of ``sharpness``, else 0."""
    if "sharpest_layer" in names:
        return np.asarray(read_array(path, "sharpest_layer")).astype(np.int64).reshape(n)
    if "sharpness" in names:
        sharp = np.asarray(read_array(path, "sharpness"), dtype=float)
        return np.nan_to_num(sharp, nan=-np.inf).argmax(axis=1).astype(np.int64) if sharp.size else np.zeros(n, np.int64)
    return np.zeros(n, dtype=np.int64)


def grain_size_um(rows: dict, pixel_size_um: float | None, n: int) -> np.ndarray:
    """Equivalent diameter in micrometres where the store allows it (else in pixels, else NaN).

    Examples
    --------
    >>> grain_size_um({"area_px": np.array([math.pi * 25])}, 2.0, 1).round(3)
    array([20.])
    """
    if "equivalent_diameter_um" in rows:
        return np.asarray(rows["equivalent_diameter_um"], dtype=float)
    if "area_px" in rows:
        diameter_px = 2.0 * np.sqrt(np.asarray(rows["area_px"], dtype=float) / math.pi)
        return diameter_px * float(pixel_size_um) if pixel_size_um else diameter_px
    return np.full(n, np.nan)


def read_grain_images(archive: Archive, sample: str, particles: Sequence[int]) -> np.ndarray:
    """``(grain, layer, py, px, 3)`` uint8 images of some grains of one sample, in the order asked."""
    key = SampleKey.from_name(sample)
    array = open_array(archive.sample_path(key), "particle_images")
    order = np.asarray(particles, dtype=np.int64)
    if order.size == 0:
        return np.zeros((0, *array.shape[1:]), dtype=np.uint8)
    unique, inverse = np.unique(order, return_inverse=True)
    # one plain read per touched chunk: much faster here than zarr's orthogonal selection (0.16 s
    # against 0.75 s for 20 grains stored one per chunk)
    step = int(array.chunks[0])
    parts = []
    for chunk in np.unique(unique // step):
        start = int(chunk) * step
        block = np.asarray(array[start:min(start + step, array.shape[0])])
        parts.append(block[unique[(unique >= start) & (unique < start + step)] - start])
    return np.concatenate(parts)[inverse]


def particle_count(archive: Archive, key: SampleKey) -> int:
    """Grains in a sample (0 before segmentation)."""
    path = archive.sample_path(key)
    names = set(array_names(path))
    if "bbox" in names:
        return _length(path, "bbox")
    if "particle_images" in names:
        return _length(path, "particle_images")
    return 0
