"""The background model at the cost of the grains, not of the frame: where full resolution is needed.

The local plate colour (:func:`~sedarchive.segmentation.background_model.local_plate`) is smooth: a
quadratic trend and cells of 48 pixels. So it is learnt on the frame shrunk :func:`shrink_factor`
times (pixel areas averaged: 16x fewer pixels, and the noise averaged away as the smoothing would),
and the shrunk frame's ΔE from it says where grains may be: every pixel at least half the grain
level away from the plate, widened by :data:`MARGIN` shrunk pixels, is a *candidate*; each
connected group of candidates is a :class:`Region`. The full-resolution ΔE (the same smoothing as
:func:`~sedarchive.segmentation.background_model.distance_map`) is computed only inside the regions,
and the grain level (4x the plate's median ΔE at full resolution, where its noise is) on
:data:`SAMPLE_ROWS` rows spread over the frame. Frames under 256 pixels a side are not shrunk: one
region, the whole frame.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from sedarchive.errors import InputError
from sedarchive.segmentation.background_model import (
    CELL_PX, PLATE_TOLERANCE, _delta_e, check_blank, grain_level, lab_to_rgb, local_plate, smoothed_lab)

#: Shrunk pixels around candidates kept in a region: at 4x, 12 frame pixels of plate around each
#: grain, more than the reach of the blurs and openings that outline and split grains (8 pixels).
MARGIN = 3
#: Full-resolution rows on which the plate's own spread (the grain level) is measured.
SAMPLE_ROWS = 48
#: Smoothing (Gaussian sigma, pixels) of the full-resolution frame before ΔE, as in ``distance_map``.
SMOOTH_SIGMA = 0.8
_SUM = np.ones((1, 3), np.float32)


def shrink_factor(height: int, width: int) -> int:
    """How many times a frame is shrunk to learn its plate: 4, or 1 for frames under 256 px a side."""
    return 4 if min(height, width) >= 256 else 1


@dataclass
class PlateModel:
    """A frame's plate, learnt on the frame shrunk ``factor`` times: its Lab and local plate colour."""

    lab: np.ndarray
    local: np.ndarray
    factor: int
    height: int
    width: int
    #: the grain level (:func:`spread_level`), once measured
    level: float | None = None
    #: the frame it was learnt on (a second call on that frame takes this model as it is)
    frame: np.ndarray | None = field(default=None, repr=False, compare=False)

    def distance(self) -> np.ndarray:
        """ΔE of the shrunk frame from its local plate colour."""
        return _delta_e(self.lab, self.local)


@dataclass
class Region:
    """Frame rows ``y0:y1`` and columns ``x0:x1``; ``mask`` (bool, that shape) the pixels that are its own."""

    y0: int
    y1: int
    x0: int
    x1: int
    mask: np.ndarray | None = None


def _radius(sigma: float) -> int:
    """Reach (pixels) of OpenCV's float Gaussian of ``sigma`` with an automatic kernel size."""
    return (int(round(sigma * 8 + 1)) | 1) // 2 if sigma > 0 else 0


def plate_model(frame: np.ndarray, plate_lab: np.ndarray, *, cell_px: int = CELL_PX,
                min_plate_fraction: float = 0.02, what: str = "frame", like: PlateModel | None = None) -> PlateModel:
    """The frame's local plate colour, learnt on the shrunk frame (or taken from ``like``, the model
    of another focal layer of the same position: the plate and its light are the same in every layer).

    Raises :class:`InputError` for a blank frame, or when less than ``min_plate_fraction`` of the
    frame is near the plate colour (as :func:`~sedarchive.segmentation.background_model.distance_map`).
    """
    import cv2

    if like is not None and _same_pixels(like.frame, frame):  # the middle layer, whose model was learnt first
        return like
    height, width = frame.shape[:2]
    factor = shrink_factor(height, width)
    if factor > 1:
        hs, ws = height // factor, width // factor
        small = cv2.resize(np.ascontiguousarray(frame[:hs * factor, :ws * factor]), (ws, hs),
                           interpolation=cv2.INTER_AREA)
        check_blank(small, what)  # blank (every pixel black, or white) shrunk as whole
        lab = smoothed_lab(small, 0.0)
    else:
        check_blank(frame, what)
        lab = smoothed_lab(frame, SMOOTH_SIGMA)
    plate_lab = np.asarray(plate_lab, np.float32)
    from_plate = _delta_e(lab, plate_lab)
    fraction = float((from_plate < PLATE_TOLERANCE * 1.5).mean())
    if fraction < min_plate_fraction:
        rgb = lab_to_rgb(plate_lab)
        raise InputError(f"{what}: no background found ({100 * fraction:.1f}% of pixels look like the plate "
                         f"colour {rgb[0]},{rgb[1]},{rgb[2]}, need {100 * min_plate_fraction:.0f}%): "
                         "a grain fills the frame, or it shows another plate")
    if like is not None and like.local.shape == lab.shape:
        return PlateModel(lab, like.local, factor, height, width, like.level)
    cells = (max(1, round(width / cell_px)), max(1, round(height / cell_px)))
    return PlateModel(lab, local_plate(lab, plate_lab, cells, from_plate, fast_fit=True), factor, height, width,
                      frame=frame)


def _same_pixels(a: np.ndarray | None, b: np.ndarray) -> bool:
    """True when ``a`` and ``b`` view the same memory the same way (two views of one stack's layer)."""
    return a is b or (isinstance(a, np.ndarray) and isinstance(b, np.ndarray) and a.shape == b.shape
                      and a.strides == b.strides and a.dtype == b.dtype and a.ctypes.data == b.ctypes.data)


def local_window(model: PlateModel, y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
    """The local plate colour (Lab) at full resolution over rows ``y0:y1``, columns ``x0:x1``.

    The same numbers as the whole shrunk surface enlarged (bilinear) and cut: the shrunk window is
    taken with one pixel of context, so that only the frame's own edges are clamped.
    """
    import cv2

    f = model.factor
    if f == 1:
        return model.local[y0:y1, x0:x1]
    hs, ws = model.local.shape[:2]
    sy0, sx0 = max(0, y0 // f - 1), max(0, x0 // f - 1)
    sy1, sx1 = min(hs, -(-y1 // f) + 1), min(ws, -(-x1 // f) + 1)
    up = cv2.resize(model.local[sy0:sy1, sx0:sx1], ((sx1 - sx0) * f, (sy1 - sy0) * f),
                    interpolation=cv2.INTER_LINEAR)
    part = up[y0 - sy0 * f:y1 - sy0 * f, x0 - sx0 * f:x1 - sx0 * f]
    short_y, short_x = (y1 - y0) - part.shape[0], (x1 - x0) - part.shape[1]
    if short_y or short_x:  # the frame's last rows or columns, left out of the shrunk frame
        part = np.pad(part, ((0, short_y), (0, short_x), (0, 0)), mode="edge")
    return part


def lab_window(frame: np.ndarray, y0: int, y1: int, x0: int, x1: int, sigma: float = SMOOTH_SIGMA) -> np.ndarray:
    """Smoothed Lab of the frame over rows ``y0:y1``, columns ``x0:x1``: the same numbers as the whole
    frame's :func:`~sedarchive.segmentation.background_model.smoothed_lab` cut there."""
    r = _radius(sigma)
    height, width = frame.shape[:2]
    py0, px0 = max(0, y0 - r), max(0, x0 - r)
    py1, px1 = min(height, y1 + r), min(width, x1 + r)
    lab = smoothed_lab(frame[py0:py1, px0:px1], sigma)
    return lab[y0 - py0:y1 - py0, x0 - px0:x1 - px0]


def spread_level(frame: np.ndarray, model: PlateModel, sigma: float = SMOOTH_SIGMA) -> float:
    """:func:`~sedarchive.segmentation.background_model.grain_level` of the full-resolution ΔE,
    measured on :data:`SAMPLE_ROWS` rows (every other column) spread over the frame."""
    import cv2

    height, width = frame.shape[:2]
    r = _radius(sigma)
    if model.factor == 1 or height < 4 * (2 * r + 1):
        return grain_level(_delta_e(lab_window(frame, 0, height, 0, width, sigma),
                                    local_window(model, 0, height, 0, width)))
    rows = np.unique(np.linspace(r, height - 1 - r, SAMPLE_ROWS).round().astype(np.int64))
    # each row with its r neighbours above and below: blurred together, its middle row is the frame's
    blocks = frame[rows[:, None] + np.arange(-r, r + 1)].reshape(-1, width, 3)
    rgb = cv2.GaussianBlur(blocks.astype(np.float32) * np.float32(1 / 255), (0, 0), sigma)
    rgb = np.ascontiguousarray(rgb.reshape(len(rows), 2 * r + 1, width, 3)[:, r, ::2])
    lab = cv2.cvtColor(rgb, cv2.COLOR_RGB2LAB)
    # the local colour on those rows: the shrunk surface enlarged (bilinear, clamped at the edges)
    f, (hs, ws) = model.factor, model.local.shape[:2]
    sy = np.clip((rows + 0.5) / f - 0.5, 0, hs - 1)
    lo = np.floor(sy).astype(np.int64)
    hi = np.minimum(lo + 1, hs - 1)
    w = (sy - lo).astype(np.float32)[:, None, None]
    across = model.local[lo] * (1 - w) + model.local[hi] * w
    local = cv2.resize(np.ascontiguousarray(across), (ws * f, len(rows)), interpolation=cv2.INTER_LINEAR)
    if local.shape[1] < width:
        local = np.pad(local, ((0, 0), (0, width - local.shape[1]), (0, 0)), mode="edge")
    return grain_level(_delta_e(lab, local[:, ::2]).ravel())


def candidate_regions(model: PlateModel, level: float, min_area_px: int = 0) -> list[Region]:
    """Regions of the frame where the shrunk ΔE reaches half the grain ``level`` (with :data:`MARGIN`).

    Each region's ``mask`` holds its own pixels: regions never share a pixel, and each ends in
    plate. Groups of candidates too small to hold ``min_area_px`` pixels are left out.
    """
    import cv2

    f = model.factor
    if f == 1:
        return [Region(0, model.height, 0, model.width)]
    seeds = (model.distance() >= 0.5 * level).view(np.uint8)
    size = 2 * MARGIN + 1
    grown = cv2.dilate(seeds, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size)))
    n, groups, stats, _ = cv2.connectedComponentsWithStats(grown, connectivity=8, ltype=cv2.CV_32S)
    counts = np.bincount(groups[seeds > 0], minlength=n)
    hs, ws = groups.shape
    regions = []
    for k in range(1, n):
        if 2 * counts[k] * f * f < min_area_px:
            continue
        x, y, w, h = (int(v) for v in stats[k, :4])
        y0, x0 = y * f, x * f
        y1 = model.height if y + h == hs else (y + h) * f
        x1 = model.width if x + w == ws else (x + w) * f
        own = np.repeat(np.repeat(groups[y:y + h, x:x + w] == k, f, axis=0), f, axis=1)
        if own.shape != (y1 - y0, x1 - x0):
            own = np.pad(own, ((0, y1 - y0 - own.shape[0]), (0, x1 - x0 - own.shape[1])), mode="edge")
        regions.append(Region(y0, y1, x0, x1, own))
    return regions


def region_distance(frame: np.ndarray, model: PlateModel, region: Region) -> np.ndarray:
    """Full-resolution ΔE (float32) of a region's pixels from the local plate colour, 0 outside its own."""
    import cv2

    difference = cv2.subtract(lab_window(frame, region.y0, region.y1, region.x0, region.x1),
                              np.ascontiguousarray(local_window(model, region.y0, region.y1, region.x0, region.x1)))
    distance = cv2.sqrt(cv2.transform(cv2.multiply(difference, difference), _SUM))
    if region.mask is not None:
        distance *= region.mask
    return distance
