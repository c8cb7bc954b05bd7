"""The paper's segmentation: SLIC superpixels, the plate-like ones dropped, the rest joined.

Each superpixel is plate or grain by its mean score: its distance from the local plate colour
(the background model, default) or, with ``background="paper"``, its mean HSV saturation against
Otsu's threshold, exactly as in the paper. Touching grains are then split.
"""
from __future__ import annotations

import numpy as np

from sedarchive.segmentation.background import background_score, pixel_threshold
from sedarchive.segmentation.background_model import core_level, distance_map, grain_level, plate_colour
from sedarchive.segmentation.mask import fill_each, label_grains
from sedarchive.segmentation.touching import grow_from_cores, split_touching


def superpixels(frame: np.ndarray, *, superpixel_px: int = 10, compactness: float = 10.0,
                sigma: float = 0.0) -> np.ndarray:
    """SLIC superpixels of an RGB frame (int32 labels from 0), about ``superpixel_px`` pixels across.

    Examples
    --------
    >>> frame = np.zeros((32, 32, 3), np.uint8); frame[:, 16:] = 200
    >>> sp = superpixels(frame, superpixel_px=8)
    >>> bool(sp.max() > 4)
    True
    """
    from skimage.segmentation import slic

    height, width = frame.shape[:2]
    n_segments = max(4, round(height * width / superpixel_px**2))
    return slic(frame, n_segments=n_segments, compactness=compactness, sigma=sigma, start_label=0,
                enforce_connectivity=True, channel_axis=-1, convert2lab=True).astype(np.int32, copy=False)


def segment_slic(frame: np.ndarray, *, superpixel_px: int = 10, compactness: float = 10.0, sigma: float = 0.0,
                 threshold: float | None = None, hue_gate: bool = True, min_area_px: int = 200,
                 min_plate_fraction: float = 0.02, min_contrast: float = 0.2, background: str | tuple = "auto",
                 plate_lab: np.ndarray | None = None, min_delta_e: float | None = None, split: bool = True,
                 neck_ratio: float = 0.5, what: str = "frame", colour: bool = True) -> np.ndarray:
    """Grain labels of one frame by the paper's method (superpixels).

    With the background model, superpixels whose mean distance from the plate colour is below
    ``min_delta_e`` are plate. With ``background="paper"``, superpixels whose mean saturation is at
    or above ``threshold`` (default: Otsu's threshold of the frame's saturation histogram, as in the
    paper's figure 1) are plate. The other superpixels are grain; touching grain superpixels form
    one object, split where grains touch through a neck (and, with ``colour``, where a dark grain
    touches a pale one). Returns int32 labels, 0 for the plate.

    Examples
    --------
    >>> frame = np.zeros((64, 64, 3), np.uint8); frame[...] = (40, 170, 60)
    >>> frame[10:30, 20:44] = (150, 150, 140)
    >>> labels = segment_slic(frame, superpixel_px=8, min_area_px=10)
    >>> int(labels.max()), [int(v) for v in np.argwhere(labels).min(0)], [int(v) for v in np.argwhere(labels).max(0)]
    (1, [10, 20], [29, 43])
    """
    if background == "paper":
        score = background_score(frame, hue_gate=hue_gate, min_plate_fraction=min_plate_fraction, what=what)
        if threshold is None:
            threshold = pixel_threshold(score, min_contrast=min_contrast)
            if threshold is None:  # one mode only: an empty plate
                return np.zeros(score.shape, np.int32)
        # score is 0..255; the threshold is on the scale where bin b of the histogram is [b/256, (b+1)/256).
        cut, plate_high = threshold * 256, True
    else:
        if plate_lab is None:
            plate_lab = plate_colour([frame], background)
        score = distance_map(frame, plate_lab, min_plate_fraction=min_plate_fraction, what=what)
        cut, plate_high = (grain_level(score) if min_delta_e is None else min_delta_e), False
    sp = superpixels(frame, superpixel_px=superpixel_px, compactness=compactness, sigma=sigma)
    counts = np.bincount(sp.ravel())
    means = np.bincount(sp.ravel(), weights=score.ravel()) / np.maximum(counts, 1)
    grain = ((means < cut) if plate_high else (means >= cut)) & (counts > 0)
    if not plate_high:
        # outlines half-way up each grain's edge; grains joined by a dim halo grown apart from their cores
        pooled = np.where(grain, means, 0).astype(np.float32)[sp]
        # pixels of a grain superpixel that are plate-coloured themselves (in a neck between two
        # touching grains, along the outline) are plate: the outline follows the pixels
        pooled[score < cut] = 0
        labels = grow_from_cores(pooled, cut, core_level(pooled, cut) if split else cut, min_area_px)
    else:
        labels = label_grains(grain[sp], min_area_px)
    if not split:
        return fill_each(labels)
    return split_touching(labels, neck_ratio, min_area_px, frame=frame if colour else None)
