"""Small synthetic plates drawn in the tests: green with noise, grains of known boxes."""
from __future__ import annotations

import cv2
import numpy as np

GREEN = (38, 196, 72)
QUARTZ = (205, 205, 195)
DARK = (45, 40, 38)
FORAM = (225, 215, 185)


def plate(height: int = 256, width: int = 320, seed: int = 0, noise: float = 3.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    frame = np.empty((height, width, 3), np.float32)
    frame[...] = GREEN
    frame += rng.normal(0, noise, frame.shape)
    return np.clip(frame, 0, 255).astype(np.uint8)


def draw_ellipse(frame: np.ndarray, cy: int, cx: int, ry: int, rx: int, colour) -> tuple[int, int, int, int]:
    """Draw an axis-aligned filled ellipse; return its box (y0, x0, y1, x1), end exclusive, clipped."""
    mask = np.zeros(frame.shape[:2], np.uint8)
    cv2.ellipse(mask, (cx, cy), (rx, ry), 0, 0, 360, 1, -1)
    frame[mask.astype(bool)] = colour
    ys, xs = np.nonzero(mask)
    return int(ys.min()), int(xs.min()), int(ys.max()) + 1, int(xs.max()) + 1


def scene(seed: int = 0, height: int = 256, width: int = 320):
    """A plate with four separate grains (one cut by the left edge), two discs just touching (two
    grains: the segmentation splits them) and a clump of two elongated grains lying across each other.

    Returns the frame and a list of (box, chopped, clump).
    """
    frame = plate(height, width, seed)
    objects = [
        (draw_ellipse(frame, 60, 70, 25, 35, QUARTZ), False, False),
        (draw_ellipse(frame, 180, 80, 30, 30, DARK), False, False),
        (draw_ellipse(frame, 70, 230, 20, 45, FORAM), False, False),
        (draw_ellipse(frame, 150, 10, 22, 25, QUARTZ), True, False),
    ]
    # just touching: a narrow neck, two grains (before issue 14 this was expected to stay one clump)
    objects.append((draw_ellipse(frame, 190, 205, 24, 24, FORAM), False, False))
    objects.append((draw_ellipse(frame, 190, 252, 24, 24, FORAM), False, False))
    # two elongated grains lying across each other: one distance peak (nothing to split), flagged
    # clump by the concave outline. (Two equal discs overlapping by a third are left merged too, but
    # their shape is that of a two-chambered foraminifer, which must not be flagged: issue 14.)
    a = draw_ellipse(frame, 80, 151, 7, 26, QUARTZ)
    b = draw_ellipse(frame, 80, 151, 26, 7, QUARTZ)
    objects.append(((min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3])), False, True))
    return frame, sorted(objects)


def stack_of(frame: np.ndarray, n_layers: int = 3, seed: int = 0) -> np.ndarray:
    """A focal stack: the frame sharp in layer 0 and increasingly blurred in the others."""
    layers = [frame]
    for i in range(1, n_layers):
        layers.append(cv2.GaussianBlur(frame, (0, 0), 0.8 * i))
    return np.stack(layers)
