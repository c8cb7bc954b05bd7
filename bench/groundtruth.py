"""Found grains against the simulated ground truth: boxes matched by IoU, detection and flag scores.

Reused by the clustering benchmark to give each found grain its true kind::

    from groundtruth import true_kinds           # with bench/ on sys.path
    kinds = true_kinds(position, bbox, read_truth(store_path))   # '' where no true object matches

Truth rows are objects a perfect segmenter would find (``acquisition.sim``: touching grains are
one ``clump`` row), one table per sample: ``position, kind, y0, x0, y1, x1, chopped, clump, ...``.
Within each position, found and true boxes are paired one to one by maximum total IoU (Hungarian
assignment); pairs below ``min_iou`` do not count.
"""
from __future__ import annotations

import numpy as np
import pandas as pd


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every box of ``a`` (n, 4) with every box of ``b`` (m, 4); boxes ``y0, x0, y1, x1`` end-exclusive.

    Examples
    --------
    >>> box_iou(np.array([[0, 0, 10, 10]]), np.array([[0, 0, 10, 10], [5, 0, 15, 10], [20, 20, 30, 30]])).round(3)
    array([[1.   , 0.333, 0.   ]])
    """
    a = np.asarray(a, float).reshape(-1, 4)
    b = np.asarray(b, float).reshape(-1, 4)
    ih = np.clip(np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0]), 0, None)
    iw = np.clip(np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1]), 0, None)
    inter = ih * iw
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def match(position: np.ndarray, bbox: np.ndarray, truth: pd.DataFrame, min_iou: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """For each found grain, the index (row number) of its true object in ``truth``, or -1; and the IoU.

    Examples
    --------
    >>> truth = pd.DataFrame({"position": [0, 0], "y0": [0, 50], "x0": [0, 50], "y1": [10, 60], "x1": [10, 60]})
    >>> match(np.array([0, 0, 1]), np.array([[51, 50, 60, 60], [0, 0, 10, 9], [0, 0, 10, 10]]), truth)[0].tolist()
    [1, 0, -1]
    """
    from scipy.optimize import linear_sum_assignment

    position = np.asarray(position)
    bbox = np.asarray(bbox).reshape(-1, 4)
    index = np.full(len(position), -1, np.int64)
    iou_of = np.zeros(len(position))
    truth_boxes = truth[["y0", "x0", "y1", "x1"]].to_numpy()
    truth_pos = truth["position"].to_numpy()
    for p in np.unique(position):
        found = np.flatnonzero(position == p)
        true = np.flatnonzero(truth_pos == p)
        if not len(true):
            continue
        iou = box_iou(bbox[found], truth_boxes[true])
        rows, cols = linear_sum_assignment(-iou)
        for r, c in zip(rows, cols):
            if iou[r, c] >= min_iou:
                index[found[r]] = true[c]
                iou_of[found[r]] = iou[r, c]
    return index, iou_of


def match_pieces(position: np.ndarray, bbox: np.ndarray, truth: pd.DataFrame, appearances: pd.DataFrame,
                 min_iou: float = 0.5) -> np.ndarray:
    """The true kind of each found grain, with the grains of split clumps named by their own grain.

    First as :func:`match` (a found object against the simulator's objects, a clump having the kind
    of its largest grain). Found objects left unmatched are then paired, one to one by IoU, with the
    single-grain appearances (``<name>.appearances.csv``) of the clump objects of their frame: a
    segmenter that splits a clump into its grains finds grains that are no object of the truth,
    and an expert names each by its own look. ``''`` where nothing matches.

    Examples
    --------
    >>> truth = pd.DataFrame({"position": [0], "object_id": [0], "kind": ["quartz"], "clump": [True],
    ...                       "y0": [0], "x0": [0], "y1": [10], "x1": [20]})
    >>> app = pd.DataFrame({"position": [0, 0], "object_id": [0, 0], "kind": ["quartz", "dark"],
    ...                     "y0": [0, 0], "x0": [0, 12], "y1": [10, 10], "x1": [13, 20]})
    >>> match_pieces(np.array([0]), np.array([[0, 0, 10, 20]]), truth, app).tolist()    # merged
    ['quartz']
    >>> match_pieces(np.array([0, 0]), np.array([[0, 0, 10, 12], [0, 12, 10, 20]]), truth, app).tolist()  # split
    ['quartz', 'dark']
    """
    from scipy.optimize import linear_sum_assignment

    position = np.asarray(position)
    bbox = np.asarray(bbox).reshape(-1, 4)
    index, _ = match(position, bbox, truth, min_iou)
    kinds = truth["kind"].to_numpy().astype(object)
    out = np.array([kinds[i] if i >= 0 else "" for i in index], dtype=object)
    clumps = truth[truth["clump"].to_numpy(bool)]
    pieces = appearances.merge(clumps[["position", "object_id"]], on=["position", "object_id"])
    if not len(pieces):
        return out
    piece_boxes, piece_pos = pieces[["y0", "x0", "y1", "x1"]].to_numpy(), pieces["position"].to_numpy()
    piece_kind = pieces["kind"].to_numpy().astype(object)
    for p in np.unique(position[index < 0]):
        found = np.flatnonzero((position == p) & (index < 0))
        true = np.flatnonzero(piece_pos == p)
        if not len(true):
            continue
        iou = box_iou(bbox[found], piece_boxes[true])
        for r, c in zip(*linear_sum_assignment(-iou)):
            if iou[r, c] >= min_iou:
                out[found[r]] = piece_kind[true[c]]
    return out


def true_kinds(position: np.ndarray, bbox: np.ndarray, truth: pd.DataFrame, min_iou: float = 0.5) -> np.ndarray:
    """The true kind of each found grain (``''`` where no true object matches it)."""
    index, _ = match(position, bbox, truth, min_iou)
    kinds = truth["kind"].to_numpy().astype(object)
    return np.array([kinds[i] if i >= 0 else "" for i in index], dtype=object)


def detection_scores(position: np.ndarray, bbox: np.ndarray, chopped: np.ndarray, clump: np.ndarray,
                     truth: pd.DataFrame, min_iou: float = 0.5) -> dict[str, float]:
    """Recall, precision, median box IoU, and how well the chopped and clump flags agree with the truth."""
    index, iou = match(position, bbox, truth, min_iou)
    hit = index >= 0
    n_true, n_found, n_hit = len(truth), len(position), int(hit.sum())
    t = index[hit]
    true_chopped = truth["chopped"].to_numpy(bool)
    true_clump = truth["clump"].to_numpy(bool)
    chopped, clump = np.asarray(chopped, bool)[hit], np.asarray(clump, bool)[hit]
    # A true chopped object counts as flagged only when it is found and flagged.
    matched_true = np.zeros(n_true, bool)
    flagged_true = np.zeros(n_true, bool)
    matched_true[t] = True
    flagged_true[t] = chopped
    n_chopped = int(true_chopped.sum())
    return {
        "n_true": n_true,
        "n_found": n_found,
        "recall": n_hit / n_true if n_true else float("nan"),
        "precision": n_hit / n_found if n_found else float("nan"),
        "median_iou": float(np.median(iou[hit])) if n_hit else float("nan"),
        "chopped_accuracy": float(np.mean(chopped == true_chopped[t])) if n_hit else float("nan"),
        "chopped_flagged": float((flagged_true & true_chopped).sum() / n_chopped) if n_chopped else float("nan"),
        "n_chopped": n_chopped,
        "clump_accuracy": float(np.mean(clump == true_clump[t])) if n_hit else float("nan"),
        "clump_recall": float((clump & true_clump[t]).sum() / max(true_clump[t].sum(), 1)),
        "clump_precision": float((clump & true_clump[t]).sum() / max(clump.sum(), 1)),
        "n_clump": int(true_clump.sum()),
    }
