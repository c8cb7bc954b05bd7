"""Each grain once: join the appearances of one grain in overlapping frames, keep its best view.

Like dask-image joins labels across block faces, two frames that overlap on the plate share a
strip; a grain in that strip shows in both. Each grain found in a frame is placed on the plate
(frame origin + box x pixel size). For two overlapping frames, every found box that reaches into
their shared rectangle is clipped to it, and two clipped boxes from the two frames that overlap
with an IoU of at least ``min_iou`` are the same grain: a grain whole in one frame and cut by the
other's edge is, inside the shared rectangle, the same box in both. Joined appearances form
connected groups (a grain at a corner may show in four frames); each group keeps one view — whole
rather than chopped, then the sharpest, then the largest — and the others get
``duplicate_of`` = the kept grain's index. Nothing is dropped: repeats stay in the store, marked.
"""
from __future__ import annotations

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from sedarchive.counting.frames import FrameLayout


def plate_boxes(position: np.ndarray, bbox: np.ndarray, layout: FrameLayout) -> np.ndarray:
    """Boxes ``(x0, y0, x1, y1)`` on the plate (mm) of grains at frame boxes ``bbox`` (y0, x0, y1, x1 px)."""
    bbox = np.asarray(bbox, float).reshape(-1, 4)
    origin = layout.origin_mm[np.asarray(position, np.int64)]
    px = layout.pixel_mm
    return np.stack([origin[:, 0] + bbox[:, 1] * px, origin[:, 1] + bbox[:, 0] * px,
                     origin[:, 0] + bbox[:, 3] * px, origin[:, 1] + bbox[:, 2] * px], axis=1).reshape(-1, 4)


def join_appearances(position: np.ndarray, bbox: np.ndarray, layout: FrameLayout, *,
                     chopped: np.ndarray | None = None, sharpness: np.ndarray | None = None,
                     min_iou: float = 0.5) -> np.ndarray:
    """``duplicate_of`` of every found grain: -1 for the view kept, else the index of the kept view.

    Parameters
    ----------
    position, bbox
        (grain,) frame index and (grain, 4) box ``y0, x0, y1, x1`` in pixels, end exclusive.
    layout
        Where the frames lie (:func:`~sedarchive.counting.frames.frame_layout`); frames of
        different groups are never joined.
    chopped, sharpness
        Per grain: cut by the frame edge, and a focus score (higher is sharper); pick the kept view.
    min_iou
        Least IoU of the two boxes clipped to the shared rectangle.

    Examples
    --------
    Two 100 x 100 px frames 8 px apart at 10 µm/px; one grain whole in frame 0, cut in frame 1:

    >>> from sedarchive.counting.frames import frame_layout
    >>> layout = frame_layout(np.array([[0.5, 0.5], [1.3, 0.5]]), 10.0, 100, 100)
    >>> join_appearances(np.array([0, 1, 1]), np.array([[40, 85, 60, 98], [40, 0, 60, 18], [10, 50, 20, 60]]),
    ...                  layout, chopped=np.array([False, True, False])).tolist()
    [-1, 0, -1]
    """
    position = np.asarray(position, np.int64)
    n = len(position)
    duplicate_of = np.full(n, -1, np.int64)
    if n == 0:
        return duplicate_of
    boxes = plate_boxes(position, bbox, layout)
    frames = _frame_rects(layout)
    rows: list[np.ndarray] = []
    cols: list[np.ndarray] = []
    by_frame = {int(f): np.flatnonzero(position == f) for f in np.unique(position)}
    for a, b in _overlapping_pairs(frames, layout.group, 2 * layout.pixel_mm):
        ia, ib = by_frame.get(a), by_frame.get(b)
        if ia is None or ib is None:
            continue
        shared = np.array([max(frames[a, 0], frames[b, 0]), max(frames[a, 1], frames[b, 1]),
                           min(frames[a, 2], frames[b, 2]), min(frames[a, 3], frames[b, 3])])
        ca, cb = _clip(boxes[ia], shared), _clip(boxes[ib], shared)
        iou = _iou(ca, cb)
        ra, rb = np.nonzero(iou >= min_iou)
        rows.append(ia[ra])
        cols.append(ib[rb])
    if not rows or not sum(len(r) for r in rows):
        return duplicate_of
    r, c = np.concatenate(rows), np.concatenate(cols)
    graph = coo_matrix((np.ones(len(r)), (r, c)), shape=(n, n))
    n_groups, group = connected_components(graph, directed=False)
    whole = ~np.asarray(chopped, bool) if chopped is not None else np.ones(n, bool)
    sharp = np.asarray(sharpness, float).reshape(n, -1).max(axis=1) if sharpness is not None else np.zeros(n)
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    # best view first: whole, then sharpest, then largest (lexsort sorts by the last key first)
    order = np.lexsort((-area, -np.nan_to_num(sharp, nan=-np.inf), ~whole, group))
    first = np.ones(n, bool)
    first[1:] = group[order][1:] != group[order][:-1]
    keeper = np.empty(n_groups, np.int64)
    keeper[group[order][first]] = order[first]
    duplicate_of = keeper[group]
    duplicate_of[duplicate_of == np.arange(n)] = -1
    return duplicate_of


def _frame_rects(layout: FrameLayout) -> np.ndarray:
    fw, fh = layout.frame_mm
    o = layout.origin_mm
    return np.stack([o[:, 0], o[:, 1], o[:, 0] + fw, o[:, 1] + fh], axis=1).reshape(-1, 4)


def _overlapping_pairs(frames: np.ndarray, group: np.ndarray, least: float) -> list[tuple[int, int]]:
    """Pairs (a < b) of frames of one group that share a strip at least ``least`` wide (mm).

    Frames that only touch (no overlap, up to rounding of the stage positions) share nothing.
    """
    ox = np.minimum(frames[:, None, 2], frames[None, :, 2]) - np.maximum(frames[:, None, 0], frames[None, :, 0])
    oy = np.minimum(frames[:, None, 3], frames[None, :, 3]) - np.maximum(frames[:, None, 1], frames[None, :, 1])
    hit = (ox >= least) & (oy >= least) & (group[:, None] == group[None, :])
    a, b = np.nonzero(np.triu(hit, k=1))
    return list(zip(a.tolist(), b.tolist()))


def _clip(boxes: np.ndarray, rect: np.ndarray) -> np.ndarray:
    out = boxes.copy()
    out[:, 0] = np.clip(out[:, 0], rect[0], rect[2])
    out[:, 2] = np.clip(out[:, 2], rect[0], rect[2])
    out[:, 1] = np.clip(out[:, 1], rect[1], rect[3])
    out[:, 3] = np.clip(out[:, 3], rect[1], rect[3])
    return out


def _iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    iw = np.clip(np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0]), 0, None)
    ih = np.clip(np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1]), 0, None)
    inter = iw * ih
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)
