"""Grains hidden in clumps: how many, and of which classes, from the clumps' areas and names.

A clump of touching grains that the segmentation leaves merged is one object, and naming its
cluster gives it one class (the look of its largest grain); the other grains of it are lost. Left
as it is, that under-counts the classes that hide in clumps: the small ones, which are rarely the
largest grain of a clump. Leaving clumps out does not help either where grains do not clump
independently of their class (on the benchmark's plates small grains clump more often).

The correction adds, per sample, the expected number of grains hidden in its clumps, class by class:

1. *Which classes*: the grains in clumps are a sample of their own, with a class mix ``g`` that may
   differ from the sample's (class-dependent clumping), paired at random and named by their larger
   grain. With ``P[c, d]`` the chance that a single grain of class ``d`` is smaller than one of
   class ``c`` (from the singles' areas), a clump is named ``c`` with probability
   ``∝ g_c (P g)_c``, and the other grain of a clump named ``c`` is of class ``d`` with probability
   ``q_c(d) ∝ g_d P[c, d]``. ``g`` is solved from the observed names of the clumps (a fixed point).
2. *How many*: a counted clump named ``c`` with area ``A`` holds ``max(0, A - a_c) / sum_d q_c(d) a_d``
   grains besides the one it is counted as, where ``a_d`` is the mean area of the single grains of
   class ``d`` (edge-weighted: whole, not flagged clump): the area beyond its named grain, in grains
   of the classes it hides.

Pure numpy; :mod:`~sedarchive.counting.class_estimates` applies it to each sample and to each
bootstrap replicate (so the intervals include its uncertainty). Measured in ``bench/accuracy.py``
(README "Class fractions against the plate's truth").
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

ITERATIONS = 200


@dataclass(frozen=True)
class ClumpModel:
    """What the singles of one sample say about sizes: mean area per class and the size order ``P``."""

    mean_area: np.ndarray  # (class,), NaN where a class has no single grain
    smaller: np.ndarray  # (class, class): P[c, d] = P(area of a d single < area of a c single)


def size_model(area: np.ndarray, cls: np.ndarray, weight: np.ndarray, single: np.ndarray,
               n_classes: int) -> ClumpModel:
    """Mean areas and the size order of the classes, from the weighted single grains.

    Examples
    --------
    >>> m = size_model(np.array([10., 12, 40, 44]), np.array([0, 0, 1, 1]), np.ones(4), np.ones(4, bool), 2)
    >>> m.mean_area.tolist(), m.smaller.tolist()
    ([11.0, 42.0], [[0.5, 0.0], [1.0, 0.5]])
    """
    area, cls, weight = np.asarray(area, float), np.asarray(cls, np.int64), np.asarray(weight, float)
    keep = np.asarray(single, bool) & (cls >= 0) & (cls < n_classes) & (weight > 0)
    mean = np.full(n_classes, np.nan)
    smaller = np.full((n_classes, n_classes), 0.5)
    ecdf = []
    for c in range(n_classes):
        sel = keep & (cls == c)
        if sel.any():
            mean[c] = np.average(area[sel], weights=weight[sel])
            order = np.argsort(area[sel])
            a, w = area[sel][order], weight[sel][order]
            ecdf.append((a, np.concatenate([[0.0], np.cumsum(w)]) / w.sum()))
        else:
            ecdf.append(None)
    for c in range(n_classes):
        if ecdf[c] is None:
            continue
        a_c, w_c = area[keep & (cls == c)], weight[keep & (cls == c)]
        for d in range(n_classes):
            if ecdf[d] is None:
                continue
            a_d, cum = ecdf[d]
            below = cum[np.searchsorted(a_d, a_c, side="left")]  # share of d strictly smaller
            upto = cum[np.searchsorted(a_d, a_c, side="right")]  # ties count half
            smaller[c, d] = float(np.average((below + upto) / 2, weights=w_c))
    return ClumpModel(mean, smaller)


def clumped_mix(named: np.ndarray, smaller: np.ndarray) -> np.ndarray:
    """Class mix ``g`` of the grains in clumps from the (weighted) number of clumps named each class.

    Solves ``named_c ∝ g_c (P g)_c`` by the fixed point ``g_c ∝ named_c / (P g)_c``; ``named`` may
    hold one row per bootstrap replicate (``(..., class)``).

    Examples
    --------
    Two classes of clearly different sizes, clumped equally: a quarter of the pairs are two small
    grains (named small), three quarters hold a large one (named large).

    >>> [round(float(v), 3) for v in clumped_mix(np.array([1.0, 3.0]), np.array([[0.5, 0.0], [1.0, 0.5]]))]
    [0.5, 0.5]
    """
    named = np.clip(np.asarray(named, float), 0.0, None)
    total = named.sum(axis=-1, keepdims=True)
    n = named / np.where(total > 0, total, 1.0)
    g = n.copy()
    for _ in range(ITERATIONS):
        g = np.where(n > 0, n / np.maximum(g @ smaller.T, 1e-12), 0.0)
        s = g.sum(axis=-1, keepdims=True)
        g = g / np.where(s > 0, s, 1.0)
    return g


def hidden_mix(g: np.ndarray, smaller: np.ndarray) -> np.ndarray:
    """Class mix of the grains hidden in clumps (each smaller than the grain a clump is named by)."""
    h = g * (g @ smaller)
    s = h.sum(axis=-1, keepdims=True)
    return h / np.where(s > 0, s, 1.0)


def hidden_counts(area: np.ndarray, cls: np.ndarray, weight: np.ndarray, clump: np.ndarray,
                  model: ClumpModel) -> np.ndarray:
    """Expected (weighted) number of grains hidden in the counted clumps, per class.

    Parameters
    ----------
    area, cls, weight, clump
        Per grain: area (px), class index (-1: not counted), count weight, flagged clump.
    model
        From :func:`size_model` on the same sample's singles.

    Examples
    --------
    Small grains of area 11, large of 42, both clumping alike: of four pairs one is two small grains
    (area 22, named small), two a small and a large (53, named large), one two large (84). The
    hidden grains are the smaller of each pair: three small, one large.

    >>> m = size_model(np.array([10., 12, 40, 44]), np.array([0, 0, 1, 1]), np.ones(4), np.ones(4, bool), 2)
    >>> hidden = hidden_counts(np.array([22.0, 53, 53, 84]), np.array([0, 1, 1, 1]), np.ones(4), np.ones(4, bool), m)
    >>> [round(float(v), 6) for v in hidden]
    [3.0, 1.0]
    """
    area, cls, weight = np.asarray(area, float), np.asarray(cls, np.int64), np.asarray(weight, float)
    return hidden_counts_replicates(area, cls, weight[None, :], clump, model)[0]


def hidden_counts_replicates(area: np.ndarray, cls: np.ndarray, weights: np.ndarray, clump: np.ndarray,
                             model: ClumpModel) -> np.ndarray:
    """:func:`hidden_counts` for each row of ``weights`` (replicate, grain): (replicate, class).

    The sizes (``model``) stay those of the sample; the clumps' number and names vary with the weights.
    """
    area, cls = np.asarray(area, float), np.asarray(cls, np.int64)
    weights = np.atleast_2d(np.asarray(weights, float))
    n_classes = len(model.mean_area)
    counted = np.asarray(clump, bool) & (cls >= 0) & (cls < n_classes)
    out = np.zeros((weights.shape[0], n_classes))
    if not counted.any() or not np.isfinite(model.mean_area).any():
        return out  # no clump, or no single grain to size a clump by
    mean = np.where(np.isfinite(model.mean_area), model.mean_area, np.nanmean(model.mean_area))
    c = cls[counted]
    w = np.clip(weights[:, counted], 0.0, None)
    named = np.zeros((weights.shape[0], n_classes))
    for k in np.unique(c):
        named[:, k] = w[:, c == k].sum(axis=1)
    g = clumped_mix(named, model.smaller)  # (replicate, class)
    # given a clump named c, its other grains are of class d with chance ∝ g_d P[c, d]
    q = g[:, None, :] * model.smaller[None, :, :]  # (replicate, named c, hidden d)
    s = q.sum(axis=-1, keepdims=True)
    q = q / np.where(s > 0, s, 1.0)
    hidden_area = q @ mean  # (replicate, named c): mean area of a hidden grain
    left = np.clip(area[counted] - mean[c], 0.0, None)  # the area beyond the grain the clump is named by
    extra = left[None, :] / np.maximum(hidden_area[:, c], 1e-12)  # (replicate, clump)
    per_named = np.zeros((weights.shape[0], n_classes))
    for k in np.unique(c):
        per_named[:, k] = (w[:, c == k] * extra[:, c == k]).sum(axis=1)
    return np.einsum("bc,bcd->bd", per_named, q)
