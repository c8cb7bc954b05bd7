"""Frames placed on the plate from the stage positions, and the checks that make that placement safe.

A frame of ``width x height`` pixels taken at stage position ``(x, y)`` (mm) shows the plate
rectangle centred on ``(x, y)``: the left edge of pixel column 0 lies at ``x - width / 2 * pixel``
(the simulated camera's geometry, and the usual one of a stage whose axes run with the image's).
Frames of different plates (a plan that reloads the operator's plate) never share grains; they are
kept apart by ``group``.

The placement is only trusted when every position has a stage position, no two positions of one
plate repeat the same place, and each plate's positions follow a scan (along the scan order either
y or x never goes back). Otherwise every frame becomes its own group: grains are counted per frame,
with the Miles–Lantuéjoul weights of a single frame, and ``note`` says why in one line.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

PLATE = "plate"
PER_FRAME = "per frame"


@dataclass(frozen=True)
class FrameLayout:
    """Where each frame lies: ``origin_mm`` (frame, 2) = plate x, y of its top-left pixel edge.

    ``group`` (frame,) numbers the independent areas (plates, or single frames when counted per
    frame); ``mode`` is ``"plate"`` or ``"per frame"``; ``note`` is empty or says why per frame.
    """

    origin_mm: np.ndarray
    group: np.ndarray
    height: int
    width: int
    pixel_mm: float
    mode: str
    note: str = ""

    @property
    def frame_mm(self) -> tuple[float, float]:
        """(width, height) of a frame in mm."""
        return self.width * self.pixel_mm, self.height * self.pixel_mm


def frame_layout(stage_xy_mm: np.ndarray | None, pixel_size_um: float | None, height: int, width: int, *,
                 plate: np.ndarray | None = None) -> FrameLayout:
    """Place the frames of one sample on its plate(s), or fall back to per-frame counting.

    Parameters
    ----------
    stage_xy_mm
        (position, 2) stage x, y in mm (NaN where unknown), or None when the sample has none.
    pixel_size_um
        Pixel size on the plate (None when unknown).
    height, width
        Frame size in pixels.
    plate
        (position,) plate of each position (default: one plate).

    Examples
    --------
    >>> layout = frame_layout(np.array([[1.0, 1.0], [2.8, 1.0]]), 10.0, 200, 200)
    >>> layout.mode, layout.origin_mm.round(2).tolist()
    ('plate', [[0.0, 0.0], [1.8, 0.0]])
    >>> frame_layout(np.array([[1.0, 1.0], [np.nan, np.nan]]), 10.0, 200, 200).note
    'stage positions missing for 1 of 2 positions: counted per frame'
    """
    n = 0 if stage_xy_mm is None else len(stage_xy_mm)
    plate = np.zeros(n, np.int64) if plate is None else np.asarray(plate, np.int64)
    note = _problem(stage_xy_mm, pixel_size_um, height, width, plate)
    if note:
        m = n if stage_xy_mm is not None else 0
        return FrameLayout(np.zeros((m, 2)), np.arange(m), int(height), int(width),
                           float(pixel_size_um or 1000.0) / 1000.0, PER_FRAME, note + ": counted per frame")
    px = float(pixel_size_um) / 1000.0
    xy = np.asarray(stage_xy_mm, float).reshape(-1, 2)
    origin = xy - np.array([width, height]) / 2 * px
    return FrameLayout(origin, plate, int(height), int(width), px, PLATE, "")


def per_frame_layout(n_frames: int, height: int, width: int, note: str) -> FrameLayout:
    """Every frame its own group (for samples whose positions cannot be trusted or do not exist)."""
    return FrameLayout(np.zeros((n_frames, 2)), np.arange(n_frames), int(height), int(width), 1.0e-3, PER_FRAME,
                       note)


def _problem(stage_xy_mm: np.ndarray | None, pixel_size_um: float | None, height: int, width: int,
             plate: np.ndarray) -> str:
    """A one-line reason why the frames cannot be placed on the plate, or ``""``."""
    if stage_xy_mm is None or len(stage_xy_mm) == 0:
        return "no stage positions"
    xy = np.asarray(stage_xy_mm, float).reshape(-1, 2)
    missing = ~np.isfinite(xy).all(axis=1)
    if missing.any():
        return f"stage positions missing for {int(missing.sum())} of {len(xy)} positions"
    if pixel_size_um is None or not np.isfinite(pixel_size_um) or pixel_size_um <= 0:
        return "no pixel size"
    if len(plate) != len(xy):
        return f"{len(plate)} plate numbers for {len(xy)} positions"
    px = float(pixel_size_um) / 1000.0
    tol = 0.05 * np.array([width, height]) * px  # closer than 5 % of a frame: the same place
    for p in np.unique(plate):
        idx = np.flatnonzero(plate == p)
        pts = xy[idx]
        close = (np.abs(pts[:, None, :] - pts[None, :, :]) < tol).all(axis=2)
        np.fill_diagonal(close, False)
        if close.any():
            i, j = np.argwhere(close)[0]
            return f"positions {idx[i]} and {idx[j]} repeat the same stage position"
        steps = np.diff(pts, axis=0)
        slack = px  # one pixel of stage jitter is not a step back
        monotone = [bool((steps[:, a] >= -slack).all() or (steps[:, a] <= slack).all()) for a in (0, 1)]
        if len(pts) > 2 and not any(monotone):
            back = int(idx[1 + np.flatnonzero(steps[:, 1] < -slack)[0]]) if (steps[:, 1] < -slack).any() else int(idx[-1])
            return f"stage positions out of scan order (position {back} goes back to an earlier row)"
    return ""
