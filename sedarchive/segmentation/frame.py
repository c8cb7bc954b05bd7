"""One frame to grain labels, by either method, with the options of :class:`SegmentSettings`."""
from __future__ import annotations

import numpy as np

from sedarchive.errors import InputError
from sedarchive.segmentation.background_model import parse_background
from sedarchive.segmentation.fast import segment_fast
from sedarchive.segmentation.settings import METHODS, SegmentSettings
from sedarchive.segmentation.slic import segment_slic


def segment_frame(frame: np.ndarray, method: str | None = None, settings: SegmentSettings | None = None, *,
                  what: str = "frame", plate_lab: np.ndarray | None = None,
                  min_area_px: int | None = None, like=None, grain_px: float | None = None) -> np.ndarray:
    """Grain labels of one RGB frame (int32, 0 for the plate, grains ``1..n``).

    ``method`` overrides ``settings.method``; ``what`` names the frame in error messages;
    ``plate_lab`` is the plate colour of the sample (Lab; estimated from the frame when ``None``);
    ``min_area_px`` overrides ``settings.min_area_px`` (e.g. from ``min_diameter_um``); ``like`` is
    the fast method's plate model of another layer of the same position (see :func:`segment_fast`);
    ``grain_px`` the boundary method's grain scale (else ``settings.grain_px``, else estimated).

    Examples
    --------
    >>> frame = np.zeros((64, 64, 3), np.uint8); frame[...] = (40, 170, 60)
    >>> frame[5:20, 5:20] = (30, 30, 30); frame[30:50, 30:60] = (220, 210, 190)
    >>> settings = SegmentSettings(min_area_px=10, superpixel_px=8)
    >>> int(segment_frame(frame, "slic", settings).max()), int(segment_frame(frame, "fast", settings).max())
    (2, 2)
    """
    from sedarchive.segmentation.background import check_frame

    frame = check_frame(frame, what)
    settings = settings or SegmentSettings()
    method = method or settings.method
    if method == "boundary":
        from sedarchive.segmentation.boundary import segment_boundary

        return segment_boundary(frame, settings.weights, grain_px=grain_px or settings.grain_px, what=what,
                                min_area_px=settings.min_area_px if min_area_px is None else min_area_px)
    common = dict(threshold=settings.saturation_threshold, hue_gate=settings.hue_gate,
                  min_area_px=settings.min_area_px if min_area_px is None else min_area_px,
                  min_plate_fraction=settings.min_plate_fraction, min_contrast=settings.min_contrast,
                  background=parse_background(settings.background), plate_lab=plate_lab,
                  min_delta_e=settings.min_delta_e, split=settings.split_touching,
                  colour=settings.split_by_colour,
                  neck_ratio=settings.neck_ratio, what=what)
    if method == "slic":
        return segment_slic(frame, superpixel_px=settings.superpixel_px, compactness=settings.slic_compactness,
                            sigma=settings.slic_sigma, **common)
    if method == "fast":
        return segment_fast(frame, smooth_px=settings.smooth_px, open_px=settings.open_px, like=like, **common)
    raise InputError(f"segmentation method {method!r} is not one of {', '.join(METHODS)}")
