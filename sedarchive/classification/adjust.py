"""Class fractions corrected for the classifier's measured confusion, with bootstrap intervals.

Adjusted classify-and-count: if ``C[i, j] = P(predicted j | true i)`` (measured on held-out grains)
and ``q`` are the fractions of a sample's grains predicted in each class, the true fractions ``p``
satisfy ``C^T p = q``. :func:`adjusted_fractions` solves it by non-negative least squares with the
fractions summing to one (clipped and renormalised). :func:`fraction_intervals` repeats the solve on
bootstrap replicates that redraw both the sample's grains (sampling error) and the held-out
confusion counts (classifier error), and reports percentile intervals.

Kernels only (numpy in, numpy out).
"""
from __future__ import annotations

import warnings

import numpy as np
from scipy.optimize import nnls

from sedarchive.classification.metrics import confusion_rates


def adjusted_fractions(rates: np.ndarray, observed: np.ndarray) -> np.ndarray:
    """True fractions ``p >= 0``, ``sum p = 1``, that best explain the predicted fractions ``observed``.

    Examples
    --------
    >>> rates = np.array([[0.9, 0.1], [0.2, 0.8]])
    >>> true = np.array([0.3, 0.7])
    >>> adjusted_fractions(rates, rates.T @ true).round(6).tolist()
    [0.3, 0.7]
    """
    rates = np.asarray(rates, float)
    observed = np.asarray(observed, float)
    total = observed.sum()
    if total <= 0:
        return np.full(len(observed), np.nan)
    q = observed / total
    weight = 10.0  # the sum-to-one row, weighted so it holds closely
    a = np.vstack([rates.T, weight * np.ones(len(q))])
    b = np.concatenate([q, [weight]])
    p, _ = nnls(a, b)
    p = np.clip(p, 0, None)
    return p / p.sum() if p.sum() > 0 else q


def renormalised(p: np.ndarray, counted: np.ndarray) -> np.ndarray:
    """Fractions among the ``counted`` classes only (NaN for the others, e.g. debris); the last axis is the class."""
    p = np.where(counted, p, 0.0)
    s = p.sum(axis=-1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where((s > 0) & counted, p / np.where(s > 0, s, 1), np.nan)


def fraction_intervals(held_out_counts: np.ndarray, predicted_counts: np.ndarray, counted: np.ndarray, *,
                       n_boot: int = 400, level: float = 0.95, seed: int = 0,
                       ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Corrected fractions of the counted classes with a ``level`` interval, for one sample.

    ``held_out_counts`` is the confusion count matrix of the held-out grains, ``predicted_counts``
    the sample's grains per predicted class. Each replicate redraws the sample's grains
    (multinomial on its predicted fractions) and every row of the confusion counts (multinomial on
    that row's rates), solves again, and keeps the counted classes' renormalised fractions.
    Returns ``(estimate, lower, upper)`` over all classes (NaN for classes not counted).
    """
    counts = np.asarray(held_out_counts, np.int64)
    observed = np.asarray(predicted_counts, np.int64)
    counted = np.asarray(counted, bool)
    n = int(observed.sum())
    k = len(observed)
    nan = np.full(k, np.nan)
    if n == 0:
        return nan, nan.copy(), nan.copy()
    rates = confusion_rates(counts)
    estimate = renormalised(adjusted_fractions(rates, observed), counted)
    rng = np.random.default_rng(seed)
    q = observed / n
    rows = counts.sum(axis=1)
    reps = np.empty((n_boot, k))
    for b in range(n_boot):
        obs_b = rng.multinomial(n, q)
        counts_b = np.array([rng.multinomial(r, rates[i]) if r > 0 else np.zeros(k, np.int64)
                             for i, r in enumerate(rows)])
        reps[b] = renormalised(adjusted_fractions(confusion_rates(counts_b), obs_b), counted)
    alpha = (1 - level) / 2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # classes not counted: all-NaN columns
        lower = np.nanquantile(reps, alpha, axis=0)
        upper = np.nanquantile(reps, 1 - alpha, axis=0)
    lower = np.where(counted, np.minimum(lower, estimate), np.nan)
    upper = np.where(counted, np.maximum(upper, estimate), np.nan)
    return estimate, lower, upper


def count_replicates(held_out_counts: np.ndarray, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """Replicates ``(replicate, true, predicted)`` of the rates of a confusion count matrix (rows redrawn)."""
    counts = np.asarray(held_out_counts, np.int64)
    rates = confusion_rates(counts)
    rows = counts.sum(axis=1)
    k = len(counts)
    return np.array([confusion_rates(np.array([rng.multinomial(r, rates[i]) if r > 0 else np.zeros(k, np.int64)
                                               for i, r in enumerate(rows)])) for _ in range(n_boot)])


def weighted_fraction_intervals(rates: np.ndarray, rate_replicates: np.ndarray, predicted: np.ndarray,
                                weight: np.ndarray, counted: np.ndarray, *, level: float = 0.95, seed: int = 0,
                                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Corrected fractions of one sample's weighted grains, with a ``level`` bootstrap interval.

    ``predicted`` and ``weight`` are every grain's predicted class and count weight (0: not counted,
    e.g. a repeat of a grain seen in another frame); ``rates`` the confusion ``P(predicted | true)``
    and ``rate_replicates`` its bootstrap replicates. Each replicate redraws the grains (Poisson(1)
    times their weight, as :mod:`sedarchive.counting.intervals` does) and takes the next confusion
    replicate. Returns ``(estimate, lower, upper)`` over all classes (NaN for classes not counted).
    """
    predicted = np.asarray(predicted, np.int64)
    weight = np.asarray(weight, float)
    counted = np.asarray(counted, bool)
    k = len(counted)
    keep = (predicted >= 0) & (weight > 0)
    predicted, weight = predicted[keep], weight[keep]
    nan = np.full(k, np.nan)
    if not len(predicted):
        return nan, nan.copy(), nan.copy()
    estimate = renormalised(adjusted_fractions(rates, np.bincount(predicted, weight, k)), counted)
    rng = np.random.default_rng(seed)
    reps = np.empty((len(rate_replicates), k))
    for b, rates_b in enumerate(rate_replicates):
        observed = np.bincount(predicted, rng.poisson(1.0, len(weight)) * weight, k)
        reps[b] = renormalised(adjusted_fractions(rates_b, observed), counted)
    alpha = (1 - level) / 2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        lower = np.nanquantile(reps, alpha, axis=0)
        upper = np.nanquantile(reps, 1 - alpha, axis=0)
    lower = np.where(counted, np.fmin(lower, estimate), np.nan)
    upper = np.where(counted, np.fmax(upper, estimate), np.nan)
    return estimate, lower, upper
