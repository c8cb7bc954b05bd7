"""Grain images: each grain's box cut from every focal layer and brought to one square size."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from sedarchive.errors import InputError


def plate_colour(frame: np.ndarray, grain_mask: np.ndarray | None = None) -> np.ndarray:
    """Median RGB of the plate (the pixels outside ``grain_mask``; every pixel when none is given).

    Examples
    --------
    >>> frame = np.zeros((8, 8, 3), np.uint8); frame[...] = (40, 170, 60); frame[:2] = 255
    >>> plate_colour(frame).tolist()
    [40, 170, 60]
    """
    pixels = frame[~grain_mask] if grain_mask is not None else frame.reshape(-1, 3)
    if len(pixels) == 0:
        pixels = frame.reshape(-1, 3)
    return np.median(pixels[:: max(1, len(pixels) // 20000)], axis=0).astype(np.uint8)


def crop_grain(stack: np.ndarray, box: Sequence[int], size: int = 280, *, pad: bool = False,
               fill: Sequence[int] | np.ndarray = (0, 0, 0), out: np.ndarray | None = None) -> np.ndarray:
    """The box ``y0, x0, y1, x1`` (end exclusive) of every layer, resized to ``(layer, size, size, 3)``
    (written into ``out`` when given: a C-contiguous uint8 array of that shape).

    Without ``pad`` the box is stretched to the square (the paper); with ``pad`` it is first padded
    to a square with the colour ``fill``, centred, so that the grain keeps its proportions.

    Examples
    --------
    >>> stack = np.zeros((2, 40, 40, 3), np.uint8); stack[:, 10:20, 10:30] = 200
    >>> crop_grain(stack, (10, 10, 20, 30), size=8).shape
    (2, 8, 8, 3)
    >>> int(crop_grain(stack, (10, 10, 20, 30), size=8, pad=True)[0, 0, 0, 0])
    0
    """
    import cv2

    y0, x0, y1, x1 = (int(v) for v in box)
    if not (0 <= y0 < y1 <= stack.shape[1] and 0 <= x0 < x1 <= stack.shape[2]):
        raise InputError(f"box {tuple(box)} is empty or outside the {stack.shape[1]}x{stack.shape[2]} frame")
    cut = stack[:, y0:y1, x0:x1]
    if pad:
        h, w = y1 - y0, x1 - x0
        side = max(h, w)
        square = np.empty((len(stack), side, side, 3), np.uint8)
        square[...] = np.asarray(fill, np.uint8)
        top, left = (side - h) // 2, (side - w) // 2
        square[:, top:top + h, left:left + w] = cut
        cut = square
    h, w = cut.shape[1:3]
    interpolation = cv2.INTER_AREA if h >= size and w >= size else cv2.INTER_LINEAR
    if out is None:
        out = np.empty((len(cut), size, size, 3), np.uint8)
    for layer, target in zip(cut, out):
        cv2.resize(np.ascontiguousarray(layer), (size, size), dst=target, interpolation=interpolation)
    return out


def crop_grains(stack: np.ndarray, boxes: Sequence[Sequence[int]], size: int = 280, *, pad: bool = False,
                fill: Sequence[int] | np.ndarray | None = None) -> np.ndarray:
    """Images of all grains: ``(grain, layer, size, size, 3)`` uint8 (see :func:`crop_grain`).

    ``fill`` (for ``pad``) defaults to the plate colour of the first layer.

    Examples
    --------
    >>> stack = np.zeros((6, 64, 64, 3), np.uint8)
    >>> crop_grains(stack, [(0, 0, 10, 20), (30, 30, 64, 40)], size=28).shape
    (2, 6, 28, 28, 3)
    """
    if fill is None:
        fill = plate_colour(stack[0])
    out = np.empty((len(boxes), len(stack), size, size, 3), np.uint8)
    for i, box in enumerate(boxes):
        crop_grain(stack, box, size, pad=pad, fill=fill, out=out[i])
    return out
