"""Counts unbiased by frame edges: the Miles–Lantuéjoul weight of every grain seen whole.

A grain is counted only where it is seen whole (chopped grains are flagged and left out), and a
large grain is cut by a frame edge more often than a small one, so plain counts under-count large
grains. For a grain whose box is ``w x h`` pixels, in one frame of ``W x H`` pixels the chance that
a grain lying anywhere in the frame is seen whole is ``(W - 1 - w)(H - 1 - h) / (W H)`` (the box
must keep one pixel from every edge, which is how ``chopped`` is decided); weighting each whole
grain by the inverse of that chance gives unbiased counts (Miles 1974, Lantuéjoul 1978).

With overlapping frames placed on the plate, a grain is seen whole when it fits inside *some*
frame; the chance is then the area of the union of the frames shrunk by the box, over the area of
the union of the frames (summed over plates). On a regular grid with an overlap wider than the
grain this is close to 1: only the outer border of the scanned area loses grains. This module
computes that ratio exactly: in closed form for full grids, by coordinate compression otherwise.
"""
from __future__ import annotations

import numpy as np

from sedarchive.counting.frames import FrameLayout

EDGE_PX = 1  # a box touching the outer pixel row or column is chopped


def whole_view_probability(box_w_px: np.ndarray, box_h_px: np.ndarray, layout: FrameLayout) -> np.ndarray:
    """Chance that a grain with a box of ``w x h`` pixels, lying anywhere in the scanned area, shows whole.

    Examples
    --------
    One 100 x 80 frame: the plain Miles–Lantuéjoul chance.

    >>> from sedarchive.counting.frames import per_frame_layout
    >>> float(whole_view_probability(np.array([19]), np.array([9]), per_frame_layout(1, 80, 100, ""))[0])
    0.7
    """
    w = np.asarray(box_w_px, float).ravel()
    h = np.asarray(box_h_px, float).ravel()
    if w.shape != h.shape:
        raise ValueError("box widths and heights differ in number")
    if len(layout.group) == 0:
        return np.zeros(w.shape)
    W, H = layout.width, layout.height
    origin = layout.origin_mm / layout.pixel_mm  # frames in pixel units
    seen = np.zeros(w.shape)
    total = 0.0
    for g in np.unique(layout.group):
        o = origin[layout.group == g]
        xs, ys = np.unique(np.round(o[:, 0], 2)), np.unique(np.round(o[:, 1], 2))
        if len(xs) * len(ys) == len(o):  # a full grid (repeated places were refused by frame_layout)
            seen += _union_length(xs, W - EDGE_PX - w) * _union_length(ys, H - EDGE_PX - h)
            total += float(_union_length(xs, np.array([float(W)]))[0] * _union_length(ys, np.array([float(H)]))[0])
        else:
            seen += _union_area(o, W, H, w, h)
            total += float(_union_area(o, W, H, np.array([-float(EDGE_PX)]), np.array([-float(EDGE_PX)]))[0])
    return np.clip(seen / total, 0.0, 1.0) if total > 0 else np.zeros(w.shape)


def count_weights(chopped: np.ndarray, duplicate_of: np.ndarray, probability: np.ndarray,
                  excluded: np.ndarray | None = None) -> np.ndarray:
    """Weight of each found grain in the corrected counts: ``1 / probability`` for kept whole grains, else 0.

    Repeats (``duplicate_of >= 0``), chopped views and ``excluded`` grains (e.g. clumps) weigh 0.

    Examples
    --------
    >>> count_weights(np.array([False, True, False]), np.array([-1, -1, 0]), np.array([0.5, 0.5, 0.5])).tolist()
    [2.0, 0.0, 0.0]
    """
    p = np.asarray(probability, float)
    keep = ~np.asarray(chopped, bool) & (np.asarray(duplicate_of) < 0) & (p > 0)
    if excluded is not None:
        keep &= ~np.asarray(excluded, bool)
    return np.where(keep, 1.0 / np.where(p > 0, p, 1.0), 0.0)


def _union_length(starts: np.ndarray, length: np.ndarray) -> np.ndarray:
    """Length of the union of intervals ``[s, s + length]`` for sorted starts, for each length."""
    length = np.clip(np.asarray(length, float), 0.0, None)
    steps = np.diff(np.sort(starts))
    return length + np.minimum(steps[None, :], length[:, None]).sum(axis=1)


def _union_area(origin: np.ndarray, W: float, H: float, w: np.ndarray, h: np.ndarray) -> np.ndarray:
    """Area of the union of the frames shrunk to where a ``w x h`` box fits, per distinct box size."""
    out = np.zeros(w.shape)
    sizes, inverse = np.unique(np.stack([w, h], axis=1), axis=0, return_inverse=True)
    for s, (bw, bh) in enumerate(sizes):
        lx, ly = W - EDGE_PX - bw, H - EDGE_PX - bh
        if lx <= 0 or ly <= 0:
            continue
        x0, y0 = origin[:, 0] + EDGE_PX, origin[:, 1] + EDGE_PX
        xe, ye = np.unique(np.concatenate([x0, x0 + lx])), np.unique(np.concatenate([y0, y0 + ly]))
        cx, cy = (xe[:-1] + xe[1:]) / 2, (ye[:-1] + ye[1:]) / 2
        covered_x = (cx[None, :] >= x0[:, None]) & (cx[None, :] <= x0[:, None] + lx)  # (frame, cell x)
        covered_y = (cy[None, :] >= y0[:, None]) & (cy[None, :] <= y0[:, None] + ly)
        cell = (covered_x[:, :, None] & covered_y[:, None, :]).any(axis=0)
        out[inverse.ravel() == s] = float((np.diff(xe)[:, None] * np.diff(ye)[None, :] * cell).sum())
    return out
