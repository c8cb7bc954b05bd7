"""From a grain mask to labelled grains: holes filled, specks dropped, touching pixels joined.

Each grain is an outer contour of the mask, filled: this joins 8-connected pixels, fills holes (the
plate seen through a translucent grain, a glint inside a foram) and numbers the grains in one pass,
several times faster than connected components followed by hole filling on full frames.
"""
from __future__ import annotations

import numpy as np


def label_grains(mask: np.ndarray, min_area_px: int = 0, fill_holes: bool = True) -> np.ndarray:
    """Grains of a boolean mask as int32 labels (0 the plate), holes filled, specks dropped.

    With ``fill_holes=False`` holes stay plate: a network of touching grains encloses gaps of plate
    that must stay gaps until the grains are split (:func:`fill_each`, after splitting, fills the
    holes inside each single grain).

    Grains are numbered ``1..n`` in raster order of their top-left-most pixel; a grain smaller than
    ``min_area_px`` pixels (filled) is dropped.

    Examples
    --------
    >>> mask = np.zeros((7, 9), bool); mask[1:6, 1:6] = True; mask[3, 3] = False; mask[5, 8] = True
    >>> labels = label_grains(mask, min_area_px=2)
    >>> int(labels.max()), int(labels[3, 3]), int(labels[5, 8])
    (1, 1, 0)
    """
    import cv2

    mask = np.ascontiguousarray(mask, dtype=bool)
    if not fill_holes:
        n, labels, stats, _ = cv2.connectedComponentsWithStats(mask.view(np.uint8), connectivity=8)
        keep = np.zeros(n, np.int32)
        big = np.nonzero(stats[1:, cv2.CC_STAT_AREA] >= min_area_px)[0] + 1
        keep[big] = np.arange(1, len(big) + 1)  # components are numbered in raster order already
        return keep[labels]
    contours, _ = cv2.findContours(mask.view(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    # findContours starts each outer contour at its top-most, then left-most pixel.
    contours = sorted(contours, key=lambda c: (int(c[0, 0, 1]), int(c[0, 0, 0])))
    labels = np.zeros(mask.shape, np.int32)
    n = 0
    for contour in contours:
        # Pixels of the filled contour: polygon area through pixel centres + half the outline + 1.
        if cv2.contourArea(contour) + cv2.arcLength(contour, True) / 2 + 1 < min_area_px:
            continue
        n += 1
        cv2.drawContours(labels, [contour], 0, n, thickness=cv2.FILLED)
    return labels


def fill_each(labels: np.ndarray) -> np.ndarray:
    """Each grain's own holes (plate enclosed by that grain alone) filled with its label.

    A gap enclosed by several grains stays plate.

    Examples
    --------
    >>> labels = np.zeros((7, 12), np.int32); labels[1:6, 1:6] = 1; labels[3, 3] = 0
    >>> labels[1:6, 6:11] = 2; labels[3, 6:8] = 0
    >>> out = fill_each(labels)
    >>> int(out[3, 3]), int(out[3, 6])
    (1, 0)
    """
    from scipy import ndimage

    out = labels.copy()
    for index, sl in enumerate(ndimage.find_objects(labels), start=1):
        if sl is None:
            continue
        mask = labels[sl] == index
        holes = filled(mask) & ~mask & (labels[sl] == 0)
        if holes.any():
            out[sl][holes] = index
    return out


def filled(mask: np.ndarray) -> np.ndarray:
    """``mask`` with its holes filled: the same pixels as ``scipy.ndimage.binary_fill_holes``, drawn
    from the outer contours (several times faster on small masks).

    Examples
    --------
    >>> mask = np.zeros((5, 5), bool); mask[1:4, 1:4] = True; mask[2, 2] = False
    >>> bool(filled(mask)[2, 2]), int(filled(mask).sum())
    (True, 9)
    """
    import cv2

    mask = np.ascontiguousarray(mask, dtype=bool)
    contours, _ = cv2.findContours(mask.view(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    out = np.zeros(mask.shape, np.uint8)
    cv2.drawContours(out, contours, -1, 1, thickness=cv2.FILLED)
    return out.view(bool)
