"""Label noise of cluster names: the confusion against the truth corrects it, the one against the names does not."""
from __future__ import annotations

import numpy as np

from sedarchive.classification.adjust import adjusted_fractions, renormalised, weighted_fraction_intervals
from sedarchive.classification.metrics import confusion_rates
from sedarchive.classification.truth import (
    called_weights,
    cluster_mix,
    draw_truth_rates,
    truth_rates,
)

# how the grains of each true class fall into clusters (fixed: a cluster is a region of feature space)
CLUSTER_GIVEN_TRUE = np.array([[0.80, 0.15, 0.05], [0.10, 0.05, 0.85]])  # classes A, B; clusters 0, 1, 2
NAMING = np.array([0, 0, 1])  # clusters 0 and 1 named A (1 is half B), 2 named B
CALL_RIGHT = 0.9  # the classifier calls a grain its cluster's name 90 % of the time


def _grains(rng, mix, n):
    true = rng.choice(2, size=n, p=mix)
    cluster = np.array([rng.choice(3, p=CLUSTER_GIVEN_TRUE[t]) for t in true])
    right = rng.random(n) < CALL_RIGHT
    predicted = np.where(right, NAMING[cluster], 1 - NAMING[cluster])
    return true, cluster, predicted


def test_truth_rates_of_pure_clusters_are_the_plain_confusion():
    rng = np.random.default_rng(0)
    true, cluster, predicted = _grains(rng, [0.5, 0.5], 3000)
    called = called_weights(cluster, predicted, np.ones(len(true)), 3, 2)
    plain = confusion_rates(np.array([[np.sum((NAMING[cluster] == i) & (predicted == j)) for j in range(2)]
                                      for i in range(2)]))
    assert np.allclose(truth_rates(cluster_mix(NAMING, None, 2), called), plain)


def test_checked_impurity_corrects_label_noise_under_a_new_mix():
    rng = np.random.default_rng(1)
    true, cluster, predicted = _grains(rng, [0.5, 0.5], 4000)  # the training samples
    weight = rng.uniform(1.0, 1.5, len(true))  # edge weights
    checked = np.zeros((3, 2))
    for c in range(3):  # the expert checks 20 grains of each cluster
        look = rng.choice(np.flatnonzero(cluster == c), 20, replace=False)
        checked[c] = np.bincount(true[look], minlength=2)
    called = called_weights(cluster, predicted, weight, 3, 2)
    against_truth = truth_rates(cluster_mix(NAMING, checked, 2), called)
    names = np.zeros((2, 2))
    np.add.at(names, (NAMING[cluster], predicted), weight)
    against_names = confusion_rates(names)
    reps = draw_truth_rates(cluster, predicted, weight, NAMING, checked, 2, 200, rng)
    inside = errors_truth = errors_names = 0
    trials = 12
    for trial in range(trials):
        mix = [0.15 + 0.05 * trial, 0.85 - 0.05 * trial]
        new_true, _, new_pred = _grains(rng, mix, 800)
        w = rng.uniform(1.0, 1.5, len(new_true))
        real = np.bincount(new_true, w, 2) / w.sum()
        q = np.bincount(new_pred, w, 2)
        errors_truth = max(errors_truth, abs(adjusted_fractions(against_truth, q)[0] - real[0]))
        errors_names = max(errors_names, abs(adjusted_fractions(against_names, q)[0] - real[0]))
        est, lo, hi = weighted_fraction_intervals(against_truth, reps, new_pred, w, np.array([True, True]), seed=trial)
        assert np.allclose(est, renormalised(adjusted_fractions(against_truth, q), np.array([True, True])))
        inside += int(lo[0] <= real[0] <= hi[0])
    assert errors_names > 0.05  # the names' confusion leaves the impurity in
    assert errors_truth < 0.05
    assert inside >= trials - 2
