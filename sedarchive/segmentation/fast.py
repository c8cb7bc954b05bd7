"""The fast segmentation: per-pixel threshold, morphology and connected components.

It draws the same grains as :mod:`~sedarchive.segmentation.slic` without superpixels. With the
background model (the default) a pixel is grain when its colour is at least ``min_delta_e`` away
from the local plate colour (the ΔE of
:func:`~sedarchive.segmentation.background_model.distance_map`, which smooths away the noise; by
default ``min_delta_e`` follows the plate's own spread,
:func:`~sedarchive.segmentation.background_model.grain_level`). The plate model is learnt on the
shrunk frame (once per stack position) and the full-resolution ΔE, outlines and splitting are
worked out only where grains may be (:mod:`~sedarchive.segmentation.regions`). With
``background="paper"`` the saturation is smoothed over a small window (what averaging over a
superpixel does) and thresholded with Otsu's method. The mask is opened to drop noise, labelled,
and touching grains split. ``bench/segment.py`` and ``bench/real.py`` measure it.
"""
from __future__ import annotations

import numpy as np

from sedarchive.segmentation.background import background_score, pixel_threshold
from sedarchive.segmentation.background_model import core_level, plate_colour
from sedarchive.segmentation.mask import fill_each, label_grains
from sedarchive.segmentation.regions import PlateModel, candidate_regions, plate_model, region_distance, spread_level
from sedarchive.segmentation.touching import DENSE_COVERAGE, grow_from_cores, split_touching


def segment_fast(frame: np.ndarray, *, smooth_px: int = 5, open_px: int = 3, threshold: float | None = None,
                 hue_gate: bool = True, min_area_px: int = 200, min_plate_fraction: float = 0.02,
                 min_contrast: float = 0.2, background: str | tuple = "auto", plate_lab: np.ndarray | None = None,
                 min_delta_e: float | None = None, split: bool = True, neck_ratio: float = 0.5,
                 what: str = "frame", like: PlateModel | None = None, colour: bool = True) -> np.ndarray:
    """Grain labels of one frame from a per-pixel threshold (int32, 0 for the plate).

    ``plate_lab`` is the plate's Lab colour (estimated from this frame with the ``background``
    rule when not given). ``background="paper"`` uses the paper's saturation rule instead
    (``threshold``, ``hue_gate``, ``min_contrast``). ``like`` is the plate model of another focal
    layer of the same position (:func:`~sedarchive.segmentation.regions.plate_model`), reused.
    ``colour``: also split a dark grain touching a pale one by colour (``split`` on).

    Examples
    --------
    >>> frame = np.zeros((64, 64, 3), np.uint8); frame[...] = (40, 170, 60)
    >>> frame[10:30, 20:44] = (150, 150, 140)
    >>> labels = segment_fast(frame, min_area_px=10)
    >>> int(labels.max()), [int(v) for v in np.argwhere(labels).min(0)], [int(v) for v in np.argwhere(labels).max(0)]
    (1, [10, 20], [29, 43])
    """
    import cv2

    if background == "paper":
        score = background_score(frame, hue_gate=hue_gate, min_plate_fraction=min_plate_fraction, what=what)
        if threshold is None:
            threshold = pixel_threshold(score, min_contrast=min_contrast)
            if threshold is None:  # one mode only: an empty plate
                return np.zeros(score.shape, np.int32)
        if smooth_px > 1:
            score = cv2.blur(score, (smooth_px, smooth_px))
        # score is 0..255; bin b of the histogram covers [b/256, (b+1)/256) of the [0, 1] scale.
        mask = score < np.float32(threshold * 256)
    else:
        if plate_lab is None:
            plate_lab = plate_colour([frame], background)
        return _segment_model(frame, plate_lab, open_px=open_px, min_area_px=min_area_px,
                              min_plate_fraction=min_plate_fraction, min_delta_e=min_delta_e, split=split,
                              neck_ratio=neck_ratio, what=what, like=like, colour=colour)
    if open_px > 1:
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (open_px, open_px))
        mask = cv2.morphologyEx(mask.view(np.uint8), cv2.MORPH_OPEN, kernel).view(bool)
    labels = label_grains(mask, min_area_px)
    if not split:
        return fill_each(labels)
    return split_touching(labels, neck_ratio, min_area_px, frame=frame if colour else None)


def _segment_model(frame: np.ndarray, plate_lab: np.ndarray, *, open_px: int, min_area_px: int,
                   min_plate_fraction: float, min_delta_e: float | None, split: bool, neck_ratio: float,
                   what: str, like: PlateModel | None = None, colour: bool = True) -> np.ndarray:
    """The background model's grains: ΔE at full resolution only in the candidate regions, each
    region outlined, grown from its cores and split alone (:mod:`~sedarchive.segmentation.regions`)."""
    import cv2

    model = plate_model(frame, plate_lab, min_plate_fraction=min_plate_fraction, what=what, like=like)
    if min_delta_e is None:
        if model.level is None:
            model.level = spread_level(frame, model)
        min_delta_e = model.level
    regions = candidate_regions(model, min_delta_e, min_area_px)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (open_px, open_px)) if open_px > 1 else None
    scores = []
    for region in regions:
        score = region_distance(frame, model, region)
        mask = score >= min_delta_e
        if kernel is not None:
            mask = cv2.morphologyEx(mask.view(np.uint8), cv2.MORPH_OPEN, kernel).view(bool)
        # outlines half-way up each grain's edge; grains joined by a dim halo grown apart from their cores
        scores.append(np.where(mask, score, np.float32(0)))
    high = min_delta_e
    if split and scores:  # the frame's grain pixels (every other row and column of the frame)
        high = core_level(np.concatenate([s[r.y0 % 2::2, r.x0 % 2::2].ravel() for s, r in zip(scores, regions)]),
                          min_delta_e)
    grown = [grow_from_cores(score, min_delta_e, high, min_area_px) for score in scores]
    height, width = frame.shape[:2]
    dense = sum(int(np.count_nonzero(g)) for g in grown) / (height * width) >= DENSE_COVERAGE
    labels = np.zeros((height, width), np.int32)
    n = 0
    for region, grains in zip(regions, grown):
        part = frame[region.y0:region.y1, region.x0:region.x1] if colour else None
        grains = split_touching(grains, neck_ratio, min_area_px, dense=dense, frame=part) if split else fill_each(grains)
        inside = grains > 0
        labels[region.y0:region.y1, region.x0:region.x1][inside] = grains[inside] + n
        n += int(grains.max()) if grains.size else 0
    return labels
