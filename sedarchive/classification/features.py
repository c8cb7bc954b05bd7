"""The classifier's input: each grain's latent followed by its morphometrics, read from the sample store.

Morphometrics are taken from :data:`MORPHOMETRICS` when every store in use has them (the
segmentation stage writes them; stores made by other means may not), and are standardised with
the latent by the model. Rows with a non-finite value (grains never encoded) are not classified.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from catalog import read_array
from catalog.store import array_names, array_shape

#: morphometric arrays used when present (``mean_rgb`` has one column per channel)
MORPHOMETRICS = ("equivalent_diameter_um", "aspect_ratio", "solidity", "mean_rgb")


def common_morphometrics(paths: Sequence[str | Path]) -> list[str]:
    """The morphometrics that every store of ``paths`` holds, in :data:`MORPHOMETRICS` order."""
    names = [set(array_names(p)) for p in paths]
    return [m for m in MORPHOMETRICS if names and all(m in n for n in names)]


def feature_names(path: str | Path, morphometrics: Sequence[str]) -> list[str]:
    """Column names: ``latent_0 ..`` then one per morphometric column (``mean_rgb_0 ..``)."""
    d = array_shape(path, "latent")[1]
    out = [f"latent_{i}" for i in range(d)]
    for m in morphometrics:
        shape = array_shape(path, m)
        out += [m] if len(shape) == 1 else [f"{m}_{j}" for j in range(shape[1])]
    return out


def read_features(path: str | Path, morphometrics: Sequence[str], rows: slice | np.ndarray = slice(None)) -> np.ndarray:
    """Feature rows ``(grain, feature)`` float64 of one store (``rows``: a slice or sorted indices)."""
    selection = rows if isinstance(rows, slice) else np.asarray(rows, np.int64)
    parts = [np.asarray(read_array(path, "latent", (selection, slice(None))), np.float64)]
    for m in morphometrics:
        values = np.asarray(read_array(path, m, selection), np.float64)
        parts.append(values.reshape(len(values), -1))
    return np.hstack(parts)


def morphometrics_of(features: Sequence[str]) -> list[str]:
    """The morphometric arrays a model's feature names need."""
    return [m for m in MORPHOMETRICS if m in features or f"{m}_0" in features]
