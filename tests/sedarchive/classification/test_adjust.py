"""Known answers for the confusion correction: a synthetic classifier with a known confusion matrix."""
from __future__ import annotations

import numpy as np

from sedarchive.classification.adjust import adjusted_fractions, fraction_intervals
from sedarchive.classification.metrics import (
    confusion_counts,
    confusion_rates,
    precision_recall,
    reliability_curve,
    stratified_split,
)

RATES = np.array([  # P(predicted j | true i): a classifier that confuses classes 0 and 1 and leaks into 3
    [0.80, 0.12, 0.03, 0.05],
    [0.15, 0.75, 0.05, 0.05],
    [0.02, 0.03, 0.90, 0.05],
    [0.05, 0.05, 0.05, 0.85],
])


def _classify(true: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Predicted labels of grains of class ``true``, drawn from the rows of :data:`RATES`."""
    cum = RATES.cumsum(axis=1)
    return (rng.random(len(true))[:, None] > cum[true]).sum(axis=1)


def test_exact_confusion_recovers_the_true_fractions():
    true = np.array([0.1, 0.5, 0.3, 0.1])
    assert np.allclose(adjusted_fractions(RATES, RATES.T @ true), true, atol=1e-6)
    # counts rather than fractions, and a fraction of zero
    true = np.array([0.0, 0.6, 0.4, 0.0])
    assert np.allclose(adjusted_fractions(RATES, 1000 * RATES.T @ true), true, atol=1e-6)


def test_synthetic_classifier_corrected_fractions_and_coverage():
    rng = np.random.default_rng(3)
    held_true = np.repeat(np.arange(4), 300)  # 1200 held-out grains
    held = confusion_counts(held_true, _classify(held_true, rng), 4)
    counted = np.array([True, True, True, False])  # class 3 is "debris": predicted, not counted
    raw_err, adj_err, covered = [], [], []
    for trial in range(12):
        p = rng.dirichlet(np.ones(4) * 2)
        true = rng.choice(4, size=2000, p=p)
        predicted = _classify(true, rng)
        observed = np.bincount(predicted, minlength=4)
        est, lo, hi = fraction_intervals(held, observed, counted, n_boot=200, seed=trial)
        truth = np.bincount(true, minlength=4)[:3] / (true < 3).sum()
        raw = observed[:3] / observed[:3].sum()
        assert np.isnan(est[3]) and np.isnan(lo[3]) and np.isnan(hi[3])
        assert np.isclose(np.nansum(est), 1.0)
        raw_err.append(np.abs(raw - truth).max())
        adj_err.append(np.abs(est[:3] - truth).max())
        covered += list((lo[:3] <= truth) & (truth <= hi[:3]))
    assert np.mean(adj_err) < 0.03  # corrected: within 3 points on average
    assert np.mean(adj_err) < np.mean(raw_err) / 2  # and much better than plain classify-and-count
    assert np.mean(covered) >= 0.85  # 36 pairs: the 95 % intervals hold the truth nearly always


def test_metrics_kernels():
    counts = np.array([[8, 2], [1, 9]])
    precision, recall = precision_recall(counts)
    assert np.allclose(precision, [8 / 9, 9 / 11]) and np.allclose(recall, [0.8, 0.9])
    assert np.allclose(confusion_rates(np.array([[0, 0], [1, 3]])), [[1, 0], [0.25, 0.75]])
    y = np.array([0] * 20 + [1] * 7 + [2])
    train, test = stratified_split(y, 0.25, seed=1)
    assert len(np.intersect1d(train, test)) == 0 and len(train) + len(test) == len(y)
    assert np.bincount(y[test], minlength=3).tolist() == [5, 2, 0]
    assert np.array_equal(stratified_split(y, 0.25, seed=1)[1], test)  # seeded
    curve = reliability_curve(np.array([[0.95, 0.05]] * 10 + [[0.55, 0.45]] * 10), np.array([0] * 10 + [0, 1] * 5))
    assert curve["count"][9] == 10 and curve["accuracy"][9] == 1.0 and curve["accuracy"][5] == 0.5
