"""Honest intervals of class fractions and proxies: a bootstrap over grains and over cluster contents.

A class fraction from named clusters is uncertain for two reasons, and the Wilson interval of a
plain count covers only the first:

1. *sampling*: the grains on the plate are a sample of the sediment. Each replicate redraws every
   counted grain's multiplicity from Poisson(1) (the Poisson bootstrap) and keeps its edge weight,
   so grains with large Miles–Lantuéjoul weights move the replicate as much as they move the count;
2. *cluster impurity*: naming a cluster gives all its grains one class, but clusters are not pure.
   Where the expert recorded what a check of some of a cluster's grains found (``checked`` in
   labels.yaml: ``{class: n}``), each replicate draws the cluster's class mix from
   Dirichlet(checked + 1/C) and spreads the cluster's weighted grains over the classes by it.
   Clusters without such a check are taken as pure (their impurity is not known). The share drawn
   for a class that no cluster is counted as (clumps, debris: excluded clusters) is not counted.
3. *grains hidden in clumps*: where the counts add them (:mod:`~sedarchive.counting.clumps`), each
   replicate estimates them again from its own multiplicities of the clumps.

The reported interval is the 2.5-97.5 % range of the replicates, widened where needed to contain
the point estimate (the named-cluster count itself).
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np


def draw_compositions(naming: np.ndarray, checked: np.ndarray | None, n_classes: int, n_boot: int,
                      rng: np.random.Generator) -> np.ndarray:
    """Class mix of every cluster in every replicate: (replicate, cluster, class), rows summing to 1 or 0.

    Parameters
    ----------
    naming
        (cluster,) class index of each cluster's name, -1 where it is not counted (unnamed, excluded).
    checked
        (cluster, class) counts found when checking grains of each named cluster (zeros: not checked).
    """
    naming = np.asarray(naming, np.int64)
    k = len(naming)
    pure = np.zeros((k, n_classes))
    named = naming >= 0
    pure[np.flatnonzero(named), naming[named]] = 1.0
    out = np.broadcast_to(pure, (n_boot, k, n_classes)).copy()
    if checked is None:
        return out
    checked = np.asarray(checked, float).reshape(k, n_classes)
    counted = np.zeros(n_classes, bool)
    counted[naming[named]] = True
    for c in np.flatnonzero(named & (checked.sum(axis=1) > 0)):
        out[:, c, :] = rng.dirichlet(checked[c] + 1.0 / n_classes, size=n_boot)
    # grains of classes no cluster is counted as (e.g. clumps, debris) would not be counted if seen
    out[:, :, ~counted] = 0.0
    return out


def bootstrap_class_totals(cluster: np.ndarray, weight: np.ndarray, compositions: np.ndarray,
                           rng: np.random.Generator,
                           extra: Callable[[np.ndarray], np.ndarray] | None = None) -> np.ndarray:
    """Weighted class totals of one sample in each replicate: (replicate, class).

    Parameters
    ----------
    cluster, weight
        (grain,) cluster of every counted grain and its count weight.
    compositions
        (replicate, cluster, class) from :func:`draw_compositions`.
    extra
        Class counts to add, from the replicate weights of the grains ((replicate, grain) ->
        (replicate, class)): the grains hidden in clumps (:mod:`~sedarchive.counting.clumps`).

    Examples
    --------
    Pure clusters, equal weights: replicates scatter around the plain counts.

    >>> rng = np.random.default_rng(0)
    >>> comp = draw_compositions(np.array([0, 1]), None, 2, 2000, rng)
    >>> totals = bootstrap_class_totals(np.array([0] * 300 + [1] * 100), np.ones(400), comp, rng)
    >>> [round(float(v)) for v in totals.mean(axis=0)]
    [300, 100]
    """
    cluster = np.asarray(cluster, np.int64)
    weight = np.asarray(weight, float)
    n_boot, k, _ = compositions.shape
    if cluster.size == 0:
        return np.zeros((n_boot, compositions.shape[2]))
    counts = rng.poisson(1.0, size=(n_boot, cluster.size)) * weight[None, :]
    per_cluster = np.zeros((n_boot, k))
    for c in np.unique(cluster):
        per_cluster[:, c] = counts[:, cluster == c].sum(axis=1)
    totals = np.einsum("bk,bkc->bc", per_cluster, compositions)
    return totals if extra is None else totals + extra(counts)


def percentile_interval(replicates: np.ndarray, point: np.ndarray, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Lower and upper bound over the first axis of ``replicates``, widened to contain ``point`` (NaN stays NaN).

    Examples
    --------
    >>> lo, hi = percentile_interval(np.linspace(0, 1, 101)[:, None], np.array([0.99]))
    >>> round(float(lo[0]), 3), round(float(hi[0]), 3)
    (0.025, 0.99)
    """
    tail = (1.0 - level) / 2 * 100
    with np.errstate(invalid="ignore"):
        lo, hi = np.nanpercentile(replicates, [tail, 100 - tail], axis=0) if np.isfinite(replicates).any() else (
            np.full(np.shape(point), np.nan), np.full(np.shape(point), np.nan))
    point = np.asarray(point, float)
    lo = np.where(np.isfinite(point), np.fmin(lo, point), np.nan)
    hi = np.where(np.isfinite(point), np.fmax(hi, point), np.nan)
    return lo, hi


def replicate_fractions(totals: np.ndarray) -> np.ndarray:
    """Class fractions of each replicate (NaN where a replicate counted nothing)."""
    s = totals.sum(axis=-1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(s > 0, totals / np.where(s > 0, s, 1), np.nan)
