"""K-means kernels: the streamed mini-batch fit, and assigning grains to a (split) set of centres.

Pure numpy / scikit-learn on arrays handed in; reading the stores is :mod:`.latents`' job.

A model's centres form a shallow tree: the centres of the first fit are roots (``parent == -1``);
:func:`split_centres` retires one centre and appends its children. :func:`assign_grains` picks the
nearest root, then, while the chosen centre is retired, the nearest of its children. So splitting
one cluster never moves a grain of another cluster, and an expert's names stay valid.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np

_ASSIGN_ROWS = 16384  # rows per distance block: 16384 x 100 float64 distances = 13 MB


@dataclass
class StreamedFit:
    """What a streamed fit returns: centres, the mean squared distance seen in its last epoch, counts."""

    centres: np.ndarray
    mean_sq_distance: float
    n_grains: int
    n_batches: int
    n_epochs: int


def nearest_centre(latents: np.ndarray, centres: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Index of the nearest centre of every row, and its squared distance.

    Examples
    --------
    >>> x = np.array([[0.0, 0.1], [5.0, 5.2]], dtype=np.float32)
    >>> c = np.array([[5.0, 5.0], [0.0, 0.0]], dtype=np.float32)
    >>> nearest_centre(x, c)[0]
    array([1, 0])
    """
    latents = np.asarray(latents, dtype=np.float32)
    centres = np.asarray(centres, dtype=np.float32)
    index = np.empty(len(latents), dtype=np.int64)
    sq = np.empty(len(latents), dtype=np.float64)
    c_sq = np.einsum("ij,ij->i", centres, centres, dtype=np.float64)
    for start in range(0, len(latents), _ASSIGN_ROWS):
        block = latents[start : start + _ASSIGN_ROWS]
        d = c_sq[None, :] - 2.0 * (block @ centres.T).astype(np.float64)
        best = np.argmin(d, axis=1)
        index[start : start + len(block)] = best
        x_sq = np.einsum("ij,ij->i", block, block, dtype=np.float64)
        sq[start : start + len(block)] = np.maximum(d[np.arange(len(block)), best] + x_sq, 0.0)
    return index, sq


def assign_grains(latents: np.ndarray, centres: np.ndarray, parent: np.ndarray, retired: np.ndarray) -> np.ndarray:
    """Cluster id (int32) of every grain: nearest root, then down through retired centres.

    Rows with any non-finite value (not encoded) get -1.

    Examples
    --------
    >>> c = np.array([[0, 0], [10, 10], [-1, 0], [1, 0]], dtype=np.float32)
    >>> parent = np.array([-1, -1, 0, 0]); retired = np.array([True, False, False, False])
    >>> x = np.array([[0.9, 0], [-0.8, 0], [9, 9], [np.nan, 0]], dtype=np.float32)
    >>> assign_grains(x, c, parent, retired)
    array([ 3,  2,  1, -1], dtype=int32)
    """
    latents = np.asarray(latents, dtype=np.float32)
    parent = np.asarray(parent)
    retired = np.asarray(retired, dtype=bool)
    out = np.full(len(latents), -1, dtype=np.int32)
    ok = np.isfinite(latents).all(axis=1) if latents.size else np.zeros(len(latents), bool)
    _descend(latents, np.flatnonzero(ok), np.flatnonzero(parent < 0), centres, parent, retired, out)
    return out


def _descend(latents, rows, candidates, centres, parent, retired, out) -> None:
    if len(rows) == 0:
        return
    pick, _ = nearest_centre(latents[rows], centres[candidates])
    chosen = candidates[pick]
    for cid in np.unique(chosen):
        members = rows[chosen == cid]
        children = np.flatnonzero(parent == cid)
        if retired[cid] and len(children):
            _descend(latents, members, children, centres, parent, retired, out)
        else:
            out[members] = cid


def initial_centres(sample: np.ndarray, k: int, seed: int) -> np.ndarray:
    """Starting centres: k-means++ seeding on a random sample of latents (the stream refines them)."""
    from sklearn.cluster import kmeans_plusplus

    sample = np.asarray(sample, dtype=np.float32)
    centres, _ = kmeans_plusplus(sample, k, random_state=seed)
    return centres.astype(np.float32)


def fit_streamed(
    epochs: Callable[[int], Iterable[np.ndarray]],
    init: np.ndarray,
    *,
    batch_size: int,
    max_epochs: int = 3,
    tol: float = 1e-4,
    seed: int = 0,
    progress: Callable[[str], None] | None = None,
) -> StreamedFit:
    """MiniBatchKMeans ``partial_fit`` over batches that never sit in memory together.

    ``epochs(e)`` yields the batches (float32 rows) of pass ``e`` over the data, each pass in a new
    random order. Passes stop after ``max_epochs`` or when the centres moved less than ``tol``
    (relative to their spread) during a pass.
    """
    from sklearn.cluster import MiniBatchKMeans

    init = np.asarray(init, dtype=np.float32)
    model = MiniBatchKMeans(n_clusters=len(init), init=init, n_init=1, batch_size=batch_size,
                            random_state=seed, compute_labels=False)
    scale = float(np.mean(np.var(init, axis=0))) or 1.0
    n_batches = 0
    n_epochs = 0
    mean_sq = float("nan")
    n_grains = 0
    for epoch in range(max_epochs):
        before = init if epoch == 0 else model.cluster_centers_.copy()
        sq_sum, seen = 0.0, 0
        for batch in epochs(epoch):
            if len(batch) == 0:
                continue
            if n_batches % 4 == 0:  # distance to the centres before this batch moves them: an inertia estimate
                centres = init if n_batches == 0 else model.cluster_centers_
                sq_sum += float(nearest_centre(batch, centres)[1].sum())
                seen += len(batch)
            model.partial_fit(batch)
            n_batches += 1
            if epoch == 0:
                n_grains += len(batch)
        n_epochs += 1
        mean_sq = sq_sum / seen if seen else mean_sq
        shift = float(np.mean(np.sum((model.cluster_centers_ - before) ** 2, axis=1))) / scale
        if progress:
            progress(f"epoch {epoch + 1}/{max_epochs}: {n_grains} grains, mean squared distance {mean_sq:.4g}, "
                     f"centre shift {shift:.2e}")
        if shift < tol:
            break
    if n_batches == 0:
        raise ValueError("no latents to fit")
    return StreamedFit(model.cluster_centers_.astype(np.float32), mean_sq, n_grains, n_batches, n_epochs)


def split_centres(members: np.ndarray, n: int, seed: int) -> np.ndarray:
    """``n`` new centres for the latents of one cluster (full K-means, they fit in memory).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> x = np.concatenate([rng.normal(-5, 0.1, (20, 2)), rng.normal(5, 0.1, (20, 2))]).astype(np.float32)
    >>> np.sort(np.round(split_centres(x, 2, seed=0)[:, 0]))
    array([-5.,  5.], dtype=float32)
    """
    from sklearn.cluster import KMeans

    members = np.asarray(members, dtype=np.float32)
    model = KMeans(n_clusters=n, n_init=4, random_state=seed).fit(members)
    return model.cluster_centers_.astype(np.float32)
