"""The green plate: how saturated a pixel is, whether a frame shows the plate, and the threshold.

The paper separates grains from the plate by HSV saturation: the plate is a strongly saturated
green, grains (quartz, dark grains, foraminifera) are greys, browns and creams. Both segmentation
methods start from :func:`background_score`, the per-pixel saturation (0..255); with the hue
gate (the default) only green pixels keep their saturation, so a saturated orange or red grain is
not mistaken for the plate.
"""
from __future__ import annotations

import numpy as np

from sedarchive.errors import InputError

#: OpenCV hue (0..179) range counted as "green plate"; broad, so that yellow-green and teal plates pass.
GREEN_HUE = (30, 100)
#: A pixel of the plate is at least this saturated and this bright (0..255 scale).
PLATE_MIN_SATURATION = 64
PLATE_MIN_VALUE = 40


def check_frame(frame: np.ndarray, what: str = "frame") -> np.ndarray:
    """Return ``frame`` if it is an RGB ``(y, x, 3)`` uint8 image, else raise :class:`InputError`."""
    frame = np.asarray(frame)
    if frame.ndim != 3 or frame.shape[-1] != 3 or frame.dtype != np.uint8:
        raise InputError(f"{what}: expected an RGB image (y, x, 3) uint8, got {frame.shape} {frame.dtype}")
    if frame.shape[0] < 8 or frame.shape[1] < 8:
        raise InputError(f"{what}: image of {frame.shape[0]}x{frame.shape[1]} pixels is too small to segment")
    return frame


def hsv(frame: np.ndarray) -> np.ndarray:
    """OpenCV HSV of an RGB uint8 frame (hue 0..179, saturation and value 0..255)."""
    import cv2

    return cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2HSV)


def plate_fraction(frame_hsv: np.ndarray) -> float:
    """Fraction of pixels that look like the green plate (green hue, saturated, not dark).

    Counted on every 4th row and column: the fraction is all that matters, and it is 16x cheaper.
    """
    import cv2

    sample = np.ascontiguousarray(frame_hsv[::4, ::4])
    plate = cv2.inRange(sample, (GREEN_HUE[0], PLATE_MIN_SATURATION, PLATE_MIN_VALUE), (GREEN_HUE[1], 255, 255))
    return float(cv2.countNonZero(plate)) / plate.size


def background_score(frame: np.ndarray, *, hue_gate: bool = True, min_plate_fraction: float = 0.02,
                     what: str = "frame") -> np.ndarray:
    """Per-pixel saturation as uint8 (0..255): high on the plate, low on grains.

    Raises :class:`InputError` when less than ``min_plate_fraction`` of the frame looks like the
    green plate: such a frame is not a plate photograph (or the plate is buried under grains).

    Examples
    --------
    >>> frame = np.zeros((16, 16, 3), np.uint8); frame[...] = (40, 170, 60)
    >>> frame[4:8, 4:8] = (150, 150, 140)
    >>> score = background_score(frame)
    >>> bool(score[0, 0] > 150), bool(score[5, 5] < 50)
    (True, True)
    """
    frame = check_frame(frame, what)
    frame_hsv = hsv(frame)
    fraction = plate_fraction(frame_hsv)
    if fraction < min_plate_fraction:
        raise InputError(
            f"{what}: no green background ({100 * fraction:.1f}% of pixels look like the plate, "
            f"need {100 * min_plate_fraction:.0f}%); is this a photograph of the green plate?"
        )
    import cv2

    hue, score, _ = cv2.split(frame_hsv)
    if hue_gate:
        score = cv2.bitwise_and(score, cv2.inRange(hue, GREEN_HUE[0], GREEN_HUE[1]))
    return score


def saturation_threshold(values: np.ndarray, weights: np.ndarray | None = None, *,
                         min_contrast: float = 0.2) -> float | None:
    """Otsu's threshold between grains (low) and plate (high) saturation, or ``None`` for no grains.

    ``values`` are saturations in ``[0, 1]`` (pixels, or superpixel means with their sizes as
    ``weights``). When the two classes Otsu finds differ by less than ``min_contrast`` in mean
    saturation, the histogram has one mode only (an empty plate) and ``None`` is returned.

    Examples
    --------
    >>> values = np.r_[np.full(90, 0.8), np.full(10, 0.1)]
    >>> round(saturation_threshold(values), 2)
    0.45
    >>> saturation_threshold(np.full(100, 0.8)) is None
    True
    """
    values = np.clip(np.asarray(values, dtype=np.float64).ravel(), 0.0, 1.0)
    weights = np.ones_like(values) if weights is None else np.asarray(weights, dtype=np.float64).ravel()
    bins = np.minimum((values * 256).astype(np.int64), 255)
    return threshold_from_histogram(np.bincount(bins, weights=weights, minlength=256), min_contrast=min_contrast)


def pixel_threshold(score: np.ndarray, *, min_contrast: float = 0.2) -> float | None:
    """Otsu's threshold of a frame's saturation histogram (``score`` from :func:`background_score`).

    Counted on every other row and column: the same threshold at a quarter of the cost. Both
    methods use it, so that they draw the grain outline at the same saturation.

    Examples
    --------
    >>> score = np.full((20, 20), 200, np.uint8); score[5:10, 5:10] = 30
    >>> round(pixel_threshold(score), 3)
    0.451
    """
    import cv2

    hist = cv2.calcHist([np.ascontiguousarray(score[::2, ::2])], [0], None, [256], [0, 256]).ravel()
    return threshold_from_histogram(hist, min_contrast=min_contrast)


def threshold_from_histogram(hist: np.ndarray, *, min_contrast: float = 0.2) -> float | None:
    """Otsu's threshold (in ``[0, 1]``) of a histogram over equal bins of ``[0, 1]``; ``None`` if unimodal.

    The threshold is put in the middle of the empty gap above Otsu's split, so that it does not
    depend on which of several equally good bins ``argmax`` picks.

    Examples
    --------
    >>> hist = np.zeros(256); hist[20] = 10; hist[200] = 90
    >>> round(threshold_from_histogram(hist), 3)
    0.432
    """
    hist = np.asarray(hist, dtype=np.float64)
    n = hist.size
    if hist.sum() <= 0:
        return None
    centres = (np.arange(n) + 0.5) / n
    w0 = np.cumsum(hist)
    w1 = w0[-1] - w0
    m0 = np.cumsum(hist * centres)
    with np.errstate(divide="ignore", invalid="ignore"):
        mean0 = m0 / w0
        mean1 = (m0[-1] - m0) / w1
        between = np.nan_to_num(w0 * w1 * (mean0 - mean1) ** 2, nan=-1.0)
    best = int(np.argmax(between))
    if between[best] <= 0 or not mean1[best] - mean0[best] >= min_contrast:
        return None
    above = np.flatnonzero(hist[best + 1:] > 0)
    next_bin = best + 1 + (int(above[0]) if above.size else 0)
    return float((best + 1 + next_bin) / (2 * n))
