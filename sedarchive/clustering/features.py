"""What K-means clusters: the latent alone (the paper), or the latent plus standardised morphometrics.

A :class:`FeatureRecipe` says how a grain's clustering features are made from what its store holds:
the ``latent`` row, then (when ``weight > 0``) the morphometrics measured at segmentation — the
log of the equivalent diameter (µm when the store has it, else pixels), the log of the aspect
ratio, the solidity and the mean RGB colour — each standardised with the mean and spread of the
grains the model was fitted on. The latent block is divided by one number (the square root of its
total variance), so its shape is kept and its total variance is 1; the morphometric block is scaled
so that its share of the total variance is ``weight``.

The recipe is fitted once, with the K-means model, and stored in the model's ``settings.json``
(``features``): assigning a new sample, splitting a cluster, every later use reads the same
columns and applies the same numbers. A model without a recipe (written before it existed, or
fitted with ``weight = 0``) clusters the latent as it is.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from catalog import read_array
from catalog.store import array_names, array_shape
from sedarchive.clustering.model import ClusteringError

#: measured at segmentation (sedarchive.segmentation.extract); the size in µm is preferred
SIZE_COLUMNS = ("equivalent_diameter_um", "equivalent_diameter_px")
SHAPE_COLUMNS = ("aspect_ratio", "solidity", "mean_rgb")
LOG_COLUMNS = ("equivalent_diameter_um", "equivalent_diameter_px", "aspect_ratio")


@dataclass(frozen=True)
class FeatureRecipe:
    """How clustering features are made; see the module docstring. ``columns`` name store arrays."""

    latent_dim: int
    columns: tuple[str, ...] = ()
    weight: float = 0.0
    latent_scale: float = 1.0
    mean: tuple[float, ...] = ()
    std: tuple[float, ...] = ()

    @property
    def uses_morphometrics(self) -> bool:
        return bool(self.columns) and self.weight > 0

    @property
    def n_features(self) -> int:
        return self.latent_dim + (len(self.mean) if self.uses_morphometrics else 0)

    def to_dict(self) -> dict[str, Any]:
        return {"latent_dim": self.latent_dim, "columns": list(self.columns), "weight": self.weight,
                "latent_scale": self.latent_scale, "mean": list(self.mean), "std": list(self.std),
                "log_columns": [c for c in self.columns if c in LOG_COLUMNS]}

    @classmethod
    def from_info(cls, info: dict[str, Any], latent_dim: int) -> FeatureRecipe:
        """The recipe recorded in a model's ``settings.json``; the latent alone for a model without one."""
        raw = info.get("features")
        if not raw:
            return cls(latent_dim)
        try:
            return cls(int(raw["latent_dim"]), tuple(raw["columns"]), float(raw["weight"]),
                       float(raw["latent_scale"]), tuple(float(v) for v in raw["mean"]),
                       tuple(float(v) for v in raw["std"]))
        except (KeyError, TypeError, ValueError) as err:
            raise ClusteringError(f"K-means model: its feature recipe cannot be read ({err!r})") from None

    def read(self, path: str | Path, rows: Any) -> np.ndarray:
        """Raw features of ``rows`` of a store: ``latent`` then the recipe's morphometric columns."""
        latent = np.asarray(read_array(path, "latent", (rows, slice(None)) if not isinstance(rows, slice) else rows),
                            np.float32)
        if not self.uses_morphometrics:
            return latent
        return np.concatenate([latent, read_morphometrics(path, self.columns, rows)], axis=1)

    def apply(self, raw: np.ndarray) -> np.ndarray:
        """Features from raw rows (:meth:`read`): the latent as it is, or scaled beside the morphometrics."""
        raw = np.asarray(raw, np.float32)
        if not self.uses_morphometrics:
            return raw
        latent = raw[:, :self.latent_dim] / np.float32(self.latent_scale)
        z = (raw[:, self.latent_dim:] - np.asarray(self.mean, np.float32)) / np.asarray(self.std, np.float32)
        z = np.nan_to_num(z, nan=0.0, posinf=0.0, neginf=0.0)  # a grain without a measure: the average
        scale = np.sqrt(self.weight / (1 - self.weight) / z.shape[1])
        return np.concatenate([latent, (scale * z).astype(np.float32)], axis=1)


def morphometric_columns(paths: Sequence[str | Path]) -> tuple[str, ...]:
    """The morphometric arrays every store has (size in µm where all have it, else in pixels)."""
    have = None
    for path in paths:
        names = set(array_names(path))
        have = names if have is None else have & names
    have = have or set()
    size = [c for c in SIZE_COLUMNS if c in have][:1]
    return tuple(size + [c for c in SHAPE_COLUMNS if c in have])


def read_morphometrics(path: str | Path, columns: Sequence[str], rows: Any) -> np.ndarray:
    """``(grain, value)`` float32: each column (``mean_rgb`` gives three), logs where :data:`LOG_COLUMNS`."""
    parts = []
    for name in columns:
        if name not in array_names(path):
            raise ClusteringError(f"{Path(path).name} has no {name}, which the K-means model's features need; "
                                  f"segment it again or fit the model anew (--refit)")
        values = np.asarray(read_array(path, name, rows), np.float32)
        values = values.reshape(len(values), -1)
        if name in LOG_COLUMNS:
            with np.errstate(divide="ignore", invalid="ignore"):
                values = np.log(np.where(values > 0, values, np.nan))
        parts.append(values)
    return np.concatenate(parts, axis=1)


def fit_recipe(raw: np.ndarray, latent_dim: int, columns: Sequence[str], weight: float) -> FeatureRecipe:
    """The recipe for these raw rows (latent + morphometrics, as :meth:`FeatureRecipe.read` gives them).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> raw = np.concatenate([rng.normal(0, 3, (500, 4)), rng.normal(10, 2, (500, 1))], axis=1)
    >>> recipe = fit_recipe(raw, 4, ["solidity"], 0.5)
    >>> x = recipe.apply(raw)
    >>> round(float(x[:, :4].var(axis=0).sum()), 1), round(float(x[:, 4:].var(axis=0).sum()), 1)
    (1.0, 1.0)
    """
    if not 0 <= weight < 1:
        raise ClusteringError(f"morphometrics weight {weight} is not in [0, 1) (its share of the feature variance)")
    if weight == 0 or not columns:
        return FeatureRecipe(latent_dim)
    raw = np.asarray(raw, np.float64)
    latent = raw[:, :latent_dim]
    scale = float(np.sqrt(latent.var(axis=0).sum())) or 1.0
    morph = raw[:, latent_dim:]
    mean = np.nanmean(morph, axis=0)
    std = np.nanstd(morph, axis=0)
    mean = np.where(np.isfinite(mean), mean, 0.0)
    std = np.where(np.isfinite(std) & (std > 0), std, 1.0)
    return FeatureRecipe(latent_dim, tuple(columns), float(weight), scale, tuple(mean.tolist()), tuple(std.tolist()))


def latent_dim_of(path: str | Path) -> int:
    return int(array_shape(path, "latent")[1])
