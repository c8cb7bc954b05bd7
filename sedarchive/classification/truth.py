"""The classifier's confusion against the grains' true classes, from named clusters and their checked impurity.

A classifier trained on the names of clusters learns the names, not the truth: a cluster named
quartz that holds broken foraminifera teaches it to call them quartz, and a confusion matrix
measured against the names cannot correct that. What does not change from sample to sample is how
the grains of a true class fall into clusters (a cluster is a region of feature space) and how the
classifier calls the grains of each cluster. So, with

- ``W[c, j]``: the count-weighted grains of cluster ``c`` that the classifier, not trained on them
  (out of fold), put in class ``j``, and ``n[c] = sum_j W[c, j]``;
- ``M[c, i]``: the share of true class ``i`` in cluster ``c``, from the expert's check of some of its
  grains (``checked`` in labels.yaml; a cluster not checked is taken as pure: its name);

the confusion against the truth is ``P(j | i) = sum_c M[c, i] W[c, j] / sum_c M[c, i] n[c]``
(the grains of a cluster are called alike whatever their true class). It is square over the
model's classes; a checked class the model does not know is left out of that cluster's mix.

:func:`draw_truth_rates` gives bootstrap replicates of it: every out-of-fold grain redrawn
(Poisson(1) times its count weight) and every checked cluster's mix drawn from
Dirichlet(checked + 1/C). Kernels only (numpy in, numpy out).
"""
from __future__ import annotations

import numpy as np


def cluster_mix(naming: np.ndarray, checked: np.ndarray | None, n_classes: int) -> np.ndarray:
    """``M (cluster, class)``: the checked share of each class in each cluster (posterior mean), else its name.

    Examples
    --------
    >>> cluster_mix(np.array([0, 1, -1]), np.array([[8, 2], [0, 0], [0, 0]]), 2).round(3).tolist()
    [[0.773, 0.227], [0.0, 1.0], [0.0, 0.0]]
    """
    naming = np.asarray(naming, np.int64)
    mix = np.zeros((len(naming), n_classes))
    named = naming >= 0
    mix[np.flatnonzero(named), naming[named]] = 1.0
    if checked is not None:
        checked = np.asarray(checked, float).reshape(len(naming), n_classes)
        seen = named & (checked.sum(axis=1) > 0)
        alpha = checked[seen] + 1.0 / n_classes
        mix[seen] = alpha / alpha.sum(axis=1, keepdims=True)
    return mix


def truth_rates(mix: np.ndarray, called: np.ndarray) -> np.ndarray:
    """``P(predicted j | true i)`` from ``mix (cluster, class)`` and ``called (cluster, predicted)`` weights.

    A true class no cluster holds keeps the identity row.

    Examples
    --------
    Two pure clusters, the classifier calls 10 % of the first one's grains class 1:

    >>> truth_rates(np.eye(2), np.array([[90.0, 10.0], [0.0, 50.0]])).round(3).tolist()
    [[0.9, 0.1], [0.0, 1.0]]

    A cluster named 0 that holds 20 % of class 1 moves that share of class 1 to "called 0":

    >>> truth_rates(np.array([[0.8, 0.2], [0, 1]]), np.array([[100.0, 0.0], [0.0, 100.0]])).round(3).tolist()
    [[1.0, 0.0], [0.167, 0.833]]
    """
    mix = np.asarray(mix, float)
    called = np.asarray(called, float)
    size = called.sum(axis=1)
    num = mix.T @ called
    den = mix.T @ size
    eye = np.eye(mix.shape[1], called.shape[1])
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den[:, None] > 0, num / np.where(den > 0, den, 1)[:, None], eye)


def called_weights(cluster: np.ndarray, predicted: np.ndarray, weight: np.ndarray, n_clusters: int,
                   n_classes: int) -> np.ndarray:
    """``W (cluster, predicted)``: summed weights of the grains of each cluster called each class."""
    cluster = np.asarray(cluster, np.int64)
    predicted = np.asarray(predicted, np.int64)
    out = np.zeros(n_clusters * n_classes)
    np.add.at(out, cluster * n_classes + predicted, np.asarray(weight, float))
    return out.reshape(n_clusters, n_classes)


def draw_truth_rates(cluster: np.ndarray, predicted: np.ndarray, weight: np.ndarray, naming: np.ndarray,
                     checked: np.ndarray | None, n_classes: int, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """Replicates ``(replicate, true, predicted)`` of :func:`truth_rates` (grains and checked mixes redrawn)."""
    naming = np.asarray(naming, np.int64)
    k = len(naming)
    weight = np.asarray(weight, float)
    base = cluster_mix(naming, None, n_classes)
    seen = np.zeros(k, bool)
    if checked is not None:
        checked = np.asarray(checked, float).reshape(k, n_classes)
        seen = (naming >= 0) & (checked.sum(axis=1) > 0)
    out = np.empty((n_boot, n_classes, n_classes))
    for b in range(n_boot):
        called = called_weights(cluster, predicted, rng.poisson(1.0, len(weight)) * weight, k, n_classes)
        mix = base.copy()
        for c in np.flatnonzero(seen):
            mix[c] = rng.dirichlet(checked[c] + 1.0 / n_classes)
        out[b] = truth_rates(mix, called)
    return out
