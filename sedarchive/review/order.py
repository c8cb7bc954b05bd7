"""Which grains of a cluster the expert sees first, and grains like a given one (pure numpy kernels).

A cluster is judged by its typical grains and its doubtful ones. :func:`typical_first` puts the
grains nearest the cluster's centre first, then the most doubtful (far from the centre, or nearly as
near another centre), then the rest; within each part the samples take turns, so every sample shows
on the first page. :func:`nearest_grains` finds the grains whose latents are nearest to one grain's.
"""
from __future__ import annotations

import numpy as np


def centre_distances(latents: np.ndarray, centres: np.ndarray, own: np.ndarray,
                     active: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Distance of each grain to its own centre and to the nearest other (active) centre.

    Examples
    --------
    >>> c = np.array([[0.0, 0.0], [10.0, 0.0]])
    >>> d_own, d_other = centre_distances(np.array([[1.0, 0.0], [6.0, 0.0]]), c, np.array([0, 0]))
    >>> d_own.tolist(), d_other.tolist()
    ([1.0, 6.0], [9.0, 4.0])
    """
    x = np.asarray(latents, np.float64)
    c = np.asarray(centres, np.float64)
    d = np.sqrt(np.maximum(((x[:, None, :] - c[None, :, :]) ** 2).sum(-1), 0.0)) if len(x) else np.zeros((0, len(c)))
    own = np.asarray(own, np.int64)
    d_own = d[np.arange(len(x)), own] if len(x) else np.zeros(0)
    others = d.copy()
    if len(x):
        others[np.arange(len(x)), own] = np.inf
    if active is not None:
        others[:, ~np.asarray(active, bool)] = np.inf
    d_other = others.min(axis=1) if others.shape[1] else np.full(len(x), np.inf)
    return d_own, d_other


def _samples_take_turns(order: np.ndarray, samples: np.ndarray) -> np.ndarray:
    """``order`` re-ranked so that each sample's best grain comes before any sample's second best."""
    if not len(order):
        return order
    turn = np.zeros(len(order), np.int64)
    seen: dict[object, int] = {}
    for i, idx in enumerate(order):
        s = samples[idx]
        turn[i] = seen.get(s, 0)
        seen[s] = turn[i] + 1
    return order[np.lexsort((np.arange(len(order)), turn))]


def typical_first(d_own: np.ndarray, d_other: np.ndarray, samples: np.ndarray, n_typical: int,
                  n_doubtful: int) -> tuple[np.ndarray, np.ndarray]:
    """Display order of a cluster's grains and the role of each (``0`` typical, ``1`` doubtful, ``2`` rest).

    Typical: smallest distance to the centre. Doubtful: largest ``d_own / d_other`` (near 1: as near
    another centre as to its own; large: far from its own); grains without a latent (NaN) come last.

    Examples
    --------
    >>> order, role = typical_first(np.array([3.0, 1.0, 2.0, 9.0]), np.array([9.0, 9.0, 9.0, 9.5]),
    ...                             np.array(["a", "a", "b", "b"]), 1, 1)
    >>> order.tolist(), role.tolist()
    ([1, 3, 2, 0], [0, 1, 2, 2])
    """
    d_own = np.asarray(d_own, np.float64)
    n = len(d_own)
    known = np.isfinite(d_own)
    by_typical = _samples_take_turns(np.argsort(np.where(known, d_own, np.inf), kind="stable"), samples)
    by_typical = by_typical[known[by_typical]]
    typical = by_typical[:n_typical]
    doubt = np.where(known, d_own / np.maximum(np.asarray(d_other, np.float64), 1e-12), -np.inf)
    taken = np.zeros(n, bool)
    taken[typical] = True
    ranked = _samples_take_turns(np.argsort(-doubt, kind="stable"), samples)
    doubtful = ranked[~taken[ranked] & known[ranked]][:n_doubtful]
    taken[doubtful] = True
    rest = by_typical[~taken[by_typical]]
    unknown = np.flatnonzero(~known)
    order = np.concatenate([typical, doubtful, rest, unknown]).astype(np.int64)
    role = np.concatenate([np.zeros(len(typical)), np.ones(len(doubtful)), np.full(len(rest) + len(unknown), 2)])
    return order, role.astype(np.int64)


def nearest_grains(query: np.ndarray, latents: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices of the ``k`` rows of ``latents`` nearest to ``query`` (Euclidean), nearest first, and distances.

    Examples
    --------
    >>> idx, dist = nearest_grains(np.array([0.0]), np.array([[5.0], [1.0], [-2.0]]), 2)
    >>> idx.tolist(), dist.tolist()
    ([1, 2], [1.0, 2.0])
    """
    x = np.asarray(latents, np.float64)
    d = np.sqrt(((x - np.asarray(query, np.float64)[None, :]) ** 2).sum(axis=1)) if len(x) else np.zeros(0)
    d = np.where(np.isfinite(d), d, np.inf)
    k = min(int(k), int(np.isfinite(d).sum()))
    idx = np.argsort(d, kind="stable")[:k]
    return idx, d[idx]
