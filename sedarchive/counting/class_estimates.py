"""Corrected class counts, fractions and proxies of several samples, with their bootstrap intervals.

Pure: per sample the cluster and count weight of every grain counted (see
:mod:`~sedarchive.counting.sample`), the cluster -> class membership from the expert's names, and
what the expert found when checking grains of each cluster. The proportions store calls this.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from sedarchive.counting.clumps import hidden_counts_replicates, size_model
from sedarchive.counting.intervals import (
    bootstrap_class_totals,
    draw_compositions,
    percentile_interval,
    replicate_fractions,
)

N_BOOT = 1000


def corrected_estimates(grains: Sequence[tuple[np.ndarray, ...]], member: np.ndarray,
                        checked: np.ndarray | None = None,
                        proxies: Sequence[tuple[str, Sequence[int], Sequence[int]]] = (), *,
                        n_boot: int = N_BOOT, seed: int = 0) -> dict[str, np.ndarray]:
    """Corrected class counts and fractions per sample with 95 % bootstrap intervals, and proxies.

    Parameters
    ----------
    grains
        Per sample ``(cluster, weight)`` of its counted grains (weight 0: not counted), or
        ``(cluster, weight, area, clump)``: then the grains hidden in the counted clumps are added
        (:mod:`~sedarchive.counting.clumps`), in the point estimate and in every replicate.
    member
        (cluster, class) 1 where the expert named the cluster that class.
    checked
        (cluster, class) counts from the expert's check of grains of each cluster (None: none).
    proxies
        ``(name, numerator class indices, denominator class indices)``; value = sum / sum.
    n_boot, seed
        Replicates of the bootstrap and its seed (the same inputs give the same intervals).

    Returns
    -------
    dict
        ``class_count`` (sample, class), ``class_fraction``, ``class_fraction_lower``,
        ``class_fraction_upper``, and ``<proxy>``, ``<proxy>_lower``, ``<proxy>_upper`` (sample,).

    Examples
    --------
    >>> member = np.array([[1, 0], [0, 1]])
    >>> out = corrected_estimates([(np.array([0, 0, 1]), np.array([1.0, 1.0, 2.0]))], member,
    ...                           proxies=[("b_a", [1], [0])], n_boot=200)
    >>> out["class_fraction"].tolist(), out["b_a"].tolist()
    ([[0.5, 0.5]], [1.0])
    """
    member = np.asarray(member, float)
    k, n_classes = member.shape
    naming = np.where(member.sum(axis=1) > 0, member.argmax(axis=1), -1)
    rng = np.random.default_rng(seed)
    compositions = draw_compositions(naming, checked, n_classes, n_boot, rng)
    counts, fractions, lower, upper = [], [], [], []
    proxy_values: dict[str, list[tuple[float, float, float]]] = {name: [] for name, _, _ in proxies}
    for sample in grains:
        cluster = np.asarray(sample[0], np.int64)
        weight = np.asarray(sample[1], float)
        keep = (cluster >= 0) & (cluster < k) & (weight > 0)
        per_cluster = np.bincount(cluster[keep], weights=weight[keep], minlength=k)
        count = per_cluster @ member
        extra = None
        if len(sample) > 2:
            extra = _hidden_in_clumps(naming[cluster[keep]], np.asarray(sample[2], float)[keep],
                                      np.asarray(sample[3], bool)[keep], weight[keep], n_classes)
            count = count + extra(weight[keep][None, :])[0]
        totals = bootstrap_class_totals(cluster[keep], weight[keep], compositions, rng, extra)
        point = replicate_fractions(count[None, :])[0]
        lo, hi = percentile_interval(replicate_fractions(totals), point)
        counts.append(count)
        fractions.append(point)
        lower.append(lo)
        upper.append(hi)
        for name, num, den in proxies:
            value = _ratio(count[list(num)].sum(), count[list(den)].sum())
            reps = _ratio(totals[:, list(num)].sum(axis=1), totals[:, list(den)].sum(axis=1))
            reps = np.where(np.isfinite(reps), reps, np.nan)
            plo, phi = percentile_interval(reps[:, None], np.array([value]))
            proxy_values[name].append((float(value), float(plo[0]), float(phi[0])))
    shape = (len(grains), n_classes)
    out = {
        "class_count": np.array(counts, float).reshape(shape),
        "class_fraction": np.array(fractions, float).reshape(shape),
        "class_fraction_lower": np.array(lower, float).reshape(shape),
        "class_fraction_upper": np.array(upper, float).reshape(shape),
    }
    for name, values in proxy_values.items():
        arr = np.array(values, float).reshape(len(grains), 3)
        out[name], out[f"{name}_lower"], out[f"{name}_upper"] = arr[:, 0], arr[:, 1], arr[:, 2]
    return out


def _hidden_in_clumps(cls: np.ndarray, area: np.ndarray, clump: np.ndarray, weight: np.ndarray,
                      n_classes: int):
    """(replicate, grain) weights -> (replicate, class) grains hidden in this sample's counted clumps."""
    model = size_model(area, cls, weight, ~clump, n_classes)
    return lambda weights: hidden_counts_replicates(area, cls, weights, clump, model)


def _ratio(num: np.ndarray | float, den: np.ndarray | float) -> np.ndarray:
    num, den = np.asarray(num, float), np.asarray(den, float)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1), np.nan)
