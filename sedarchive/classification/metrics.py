"""How good a classifier is on held-out grains: split, confusion, precision and recall, calibration.

Kernels only (numpy in, numpy out). Classes are integer codes ``0 .. n_classes - 1``.
"""
from __future__ import annotations

from typing import Any

import numpy as np


def stratified_split(y: np.ndarray, held_out: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices of the training and held-out grains, ``held_out`` of every class held out (seeded).

    A class with a single grain stays in training; a class with two or more keeps at least one grain
    on each side.

    Examples
    --------
    >>> y = np.array([0] * 8 + [1] * 4 + [2])
    >>> train, test = stratified_split(y, 0.25, seed=0)
    >>> len(train), len(test), np.bincount(y[test], minlength=3).tolist()
    (10, 3, [2, 1, 0])
    """
    y = np.asarray(y)
    rng = np.random.default_rng(seed)
    test = []
    for c in np.unique(y):
        members = rng.permutation(np.flatnonzero(y == c))
        if len(members) < 2:
            continue
        n = min(len(members) - 1, max(1, int(round(held_out * len(members)))))
        test.append(members[:n])
    test_idx = np.sort(np.concatenate(test)) if test else np.zeros(0, np.int64)
    mask = np.ones(len(y), bool)
    mask[test_idx] = False
    return np.flatnonzero(mask), test_idx


def confusion_counts(true: np.ndarray, predicted: np.ndarray, n_classes: int) -> np.ndarray:
    """``counts[i, j]``: held-out grains of true class ``i`` predicted as ``j``.

    Examples
    --------
    >>> confusion_counts(np.array([0, 0, 1]), np.array([0, 1, 1]), 2).tolist()
    [[1, 1], [0, 1]]
    """
    counts = np.zeros((n_classes, n_classes), np.int64)
    np.add.at(counts, (np.asarray(true, np.int64), np.asarray(predicted, np.int64)), 1)
    return counts


def confusion_rates(counts: np.ndarray) -> np.ndarray:
    """Row-normalised confusion ``P(predicted j | true i)``; a class never seen held out keeps the identity row."""
    counts = np.asarray(counts, float)
    rows = counts.sum(axis=1, keepdims=True)
    eye = np.eye(len(counts))
    return np.where(rows > 0, counts / np.where(rows > 0, rows, 1), eye)


def precision_recall(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-class precision (of the grains predicted ``j``) and recall (of the grains truly ``i``); NaN when undefined."""
    counts = np.asarray(counts, float)
    diag = np.diag(counts)
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(counts.sum(axis=0) > 0, diag / counts.sum(axis=0), np.nan)
        recall = np.where(counts.sum(axis=1) > 0, diag / counts.sum(axis=1), np.nan)
    return precision, recall


def reliability_curve(probabilities: np.ndarray, true: np.ndarray, n_bins: int = 10) -> dict[str, Any]:
    """Confidence (the top probability) against accuracy in equal-width bins, and the expected calibration error.

    Returns ``{"bin_lower", "bin_upper", "confidence", "accuracy", "count", "ece"}`` (lists; NaN
    confidence and accuracy in empty bins).

    Examples
    --------
    >>> p = np.array([[0.9, 0.1]] * 4)  # 90 % sure every time, right half of the time
    >>> round(reliability_curve(p, np.array([0, 0, 1, 1]), n_bins=2)["ece"], 3)
    0.4
    """
    probabilities = np.asarray(probabilities, float)
    confidence = probabilities.max(axis=1)
    correct = probabilities.argmax(axis=1) == np.asarray(true)
    edges = np.linspace(0, 1, n_bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, n_bins - 1)
    count = np.bincount(which, minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        conf = np.bincount(which, confidence, n_bins) / count
        acc = np.bincount(which, correct.astype(float), n_bins) / count
    gaps = np.where(count > 0, np.abs(np.nan_to_num(conf) - np.nan_to_num(acc)), 0.0)
    ece = float((gaps * count).sum() / max(1, count.sum()))
    return {"bin_lower": edges[:-1].tolist(), "bin_upper": edges[1:].tolist(),
            "confidence": [None if np.isnan(v) else float(v) for v in conf],
            "accuracy": [None if np.isnan(v) else float(v) for v in acc],
            "count": count.tolist(), "ece": ece}


def held_out_report(true: np.ndarray, probabilities: np.ndarray, classes: list[str]) -> dict[str, Any]:
    """Everything measured on the held-out grains, JSON-ready (saved with the model)."""
    predicted = np.asarray(probabilities).argmax(axis=1)
    counts = confusion_counts(true, predicted, len(classes))
    precision, recall = precision_recall(counts)
    return {
        "n_held_out": int(len(true)),
        "accuracy": float(np.mean(predicted == true)) if len(true) else None,
        "confusion": counts.tolist(),
        "precision": {c: (None if np.isnan(v) else float(v)) for c, v in zip(classes, precision)},
        "recall": {c: (None if np.isnan(v) else float(v)) for c, v in zip(classes, recall)},
        "reliability": reliability_curve(probabilities, true) if len(true) else None,
    }
