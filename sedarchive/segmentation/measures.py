"""What is measured on a grain: sharpness per focal layer, shape, colour, and the clump flag.

The paper's expert found chopped grains and clumps of touching grains only inside clusters; here
they are flagged when the grain is found. ``chopped`` comes from the box (see
:mod:`~sedarchive.segmentation.grains`); ``clump`` comes from the shape: touching grains that the
segmentation left merged make an object with two lobes joined by a neck (peaks of the distance
transform with a saddle between them), or whose outline has deep concavities (low solidity).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


def sharpness(stack: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    """Variance of the Laplacian of the grey image inside ``box``, per focal layer (float32).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> sharp = rng.integers(0, 255, (1, 32, 32, 3), dtype=np.uint8)
    >>> flat = np.full((1, 32, 32, 3), 128, np.uint8)
    >>> s = sharpness(np.concatenate([flat, sharp]), (0, 0, 32, 32))
    >>> int(s.argmax()), float(s[0])
    (1, 0.0)
    """
    import cv2

    y0, x0, y1, x1 = box
    out = np.empty(len(stack), np.float32)
    for i, frame in enumerate(stack):
        grey = cv2.cvtColor(np.ascontiguousarray(frame[y0:y1, x0:x1]), cv2.COLOR_RGB2GRAY)
        out[i] = cv2.Laplacian(grey.astype(np.float32), cv2.CV_32F, ksize=1).var()
    return out


@dataclass(frozen=True)
class Shape:
    """Shape measures of one grain mask (pixels)."""

    area_px: int
    equivalent_diameter_px: float
    aspect_ratio: float
    solidity: float
    n_cores: int
    #: Lobes joined by a neck narrower than the ``lobe_neck`` given to :func:`shape_of` (1: one grain).
    n_lobes: int = 1


def shape_of(mask: np.ndarray, core_fraction: float = 0.5, lobe_neck: float = 0.55) -> Shape:
    """Area, equivalent diameter, aspect ratio (major / minor axis), solidity and cores of a bool mask.

    Cores are the connected parts of the mask where the distance to the outline exceeds
    ``core_fraction`` of its maximum: one for a convex or elongated grain, two or more for grains
    touching through a neck. Lobes are the grains that :func:`~sedarchive.segmentation.touching.split_object`
    finds with the neck ratio ``lobe_neck``: two grains overlapping too much to be split (a neck
    wider than the split allows) still make two lobes.

    Examples
    --------
    >>> import cv2
    >>> one = np.zeros((60, 100), np.uint8); _ = cv2.circle(one, (30, 30), 20, 1, -1)
    >>> two = one.copy(); _ = cv2.circle(two, (68, 30), 20, 1, -1)
    >>> shape_of(one.astype(bool)).n_cores, shape_of(two.astype(bool)).n_cores
    (1, 2)
    >>> round(shape_of(one.astype(bool)).solidity, 2), round(shape_of(two.astype(bool)).aspect_ratio, 1)
    (0.97, 2.1)
    """
    import cv2

    mask = np.ascontiguousarray(mask, dtype=bool)
    area = int(mask.sum())
    if area == 0:
        return Shape(0, 0.0, 1.0, 1.0, 0)
    # A zero border, so that a grain cut by the box edge is measured against the plate there too.
    padded = np.pad(mask, 1).view(np.uint8)
    m = cv2.moments(padded, binaryImage=True)
    cov = np.array([[m["mu20"], m["mu11"]], [m["mu11"], m["mu02"]]]) / area
    low, high = np.linalg.eigvalsh(cov)
    aspect = math.sqrt(high / low) if low > 1e-9 else float("inf") if high > 0 else 1.0
    contours, _ = cv2.findContours(padded, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    hull = cv2.convexHull(np.concatenate(contours))
    canvas = np.zeros_like(padded)
    cv2.fillConvexPoly(canvas, hull, 1)
    solidity = area / max(int(canvas.sum()), area)
    dist = cv2.distanceTransform(padded, cv2.DIST_L2, 5)
    cores = (dist > core_fraction * dist.max()).view(np.uint8)
    n, _, stats, _ = cv2.connectedComponentsWithStats(cores, connectivity=8)
    sizes = stats[1:, cv2.CC_STAT_AREA]
    # Specks of core along a ragged outline are not grains of their own.
    n_cores = int((sizes >= 0.05 * sizes.max()).sum()) if n > 1 else 0
    from sedarchive.segmentation.touching import split_object

    n_lobes = int(split_object(mask, lobe_neck, similar_bonus=0.0).max()) if area >= 64 else 1
    return Shape(area, math.sqrt(4 * area / math.pi), float(min(aspect, 1e6)), float(solidity), n_cores, n_lobes)


def is_clump(shape: Shape, *, min_solidity: float = 0.75) -> bool:
    """A clump: two or more lobes joined by a neck (grains left merged), or a very concave outline.

    Examples
    --------
    >>> is_clump(Shape(100, 11.3, 1.0, 0.95, 1, 1)), is_clump(Shape(100, 11.3, 2.0, 0.9, 2, 2))
    (False, True)
    """
    return bool(shape.n_lobes >= 2 or shape.solidity < min_solidity)


def mean_colour(frame: np.ndarray, box: tuple[int, int, int, int], mask: np.ndarray) -> np.ndarray:
    """Mean RGB of the grain's pixels (``mask`` over ``box``) in one frame, float32.

    Examples
    --------
    >>> frame = np.zeros((4, 4, 3), np.uint8); frame[1:3, 1:3] = (10, 20, 30)
    >>> mask = np.zeros((4, 4), bool); mask[1:3, 1:3] = True
    >>> mean_colour(frame, (0, 0, 4, 4), mask).tolist()
    [10.0, 20.0, 30.0]
    """
    y0, x0, y1, x1 = box
    pixels = frame[y0:y1, x0:x1][mask]
    if len(pixels) == 0:
        return np.full(3, np.nan, np.float32)
    return pixels.mean(axis=0).astype(np.float32)
