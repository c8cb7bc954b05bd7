"""How each kind of grain looks: in-focus RGBA sprites drawn with OpenCV.

A sprite is the grain seen sharply from above at a given pixel size: ``rgb`` (float32, 0-255,
not premultiplied), ``alpha`` (float32, 0-1: quartz lets the green plate show through) and
``mask`` (bool: the grain's footprint, one connected piece). The look follows the paper's classes:

- ``quartz``: pale grey-white, angular polygon with facets of different brightness, a darker
  refracting rim, partly transparent;
- ``dark``: dark brown to black, irregular rounded outline, speckled;
- ``foram_intact``: cream-white test of several round chambers growing along a spiral, with
  darker sutures between chambers and bright chamber centres;
- ``foram_broken``: the same test cut along a jagged line, the open chambers showing a dark
  brownish cavity and a darker broken rim.

Each sprite is drawn from the grain's own seed, so a grain looks the same in every frame.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

GRAIN_KINDS = ("quartz", "dark", "foram_intact", "foram_broken")

#: Equivalent diameter range of each kind, in mm (sieved fraction > 0.1 mm).
DIAMETER_MM = {
    "quartz": (0.12, 0.40),
    "dark": (0.10, 0.35),
    "foram_intact": (0.20, 0.50),
    "foram_broken": (0.15, 0.42),
}

_SUB = 4  # fixed-point sub-pixel bits for cv2 drawing
_ONE = 1 << _SUB


@dataclass(frozen=True)
class Sprite:
    """An in-focus grain image; ``rgb`` and ``alpha`` share the shape of ``mask``."""

    rgb: np.ndarray
    alpha: np.ndarray
    mask: np.ndarray

    @property
    def shape(self) -> tuple[int, int]:
        return self.mask.shape  # type: ignore[return-value]


def _fixed(points: np.ndarray) -> np.ndarray:
    return np.round(points * _ONE).astype(np.int32).reshape(-1, 1, 2)


def _polygon(rng: np.random.Generator, n: int, jitter: float, smooth: int = 0) -> np.ndarray:
    """Unit-radius star-shaped polygon (``n`` vertices); ``smooth`` low-pass filters the radii."""
    angles = np.sort(rng.uniform(0, 2 * np.pi, n)) if smooth == 0 else np.linspace(0, 2 * np.pi, n, endpoint=False)
    radii = 1.0 - jitter * rng.random(n)
    if smooth:
        spectrum = np.fft.rfft(radii)
        spectrum[smooth:] = 0
        radii = np.fft.irfft(spectrum, n)
        radii = radii / radii.max()
    return np.stack([np.cos(angles) * radii, np.sin(angles) * radii], axis=1)


def _largest_piece(mask: np.ndarray) -> np.ndarray:
    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    if n <= 2:
        return mask.astype(bool)
    biggest = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    return labels == biggest


def _quartz(rng: np.random.Generator, r: float, size: int) -> tuple[np.ndarray, np.ndarray]:
    c = size / 2.0
    poly = _polygon(rng, int(rng.integers(5, 9)), jitter=0.35) * r
    poly = poly @ _rotation(rng.uniform(0, np.pi)).T
    # angular grains are elongated a little
    poly[:, 0] *= rng.uniform(1.0, 1.35)
    poly = poly / np.abs(poly).max() * r + c
    rgb = np.zeros((size, size, 3), np.float32)
    alpha = np.zeros((size, size), np.float32)
    base = np.array([222, 226, 220], np.float32) * rng.uniform(0.9, 1.02)
    # facets: triangles from an off-centre interior point, each with its own brightness
    apex = c + rng.uniform(-0.25, 0.25, 2) * r
    for i in range(len(poly)):
        tri = np.array([apex, poly[i], poly[(i + 1) % len(poly)]])
        shade = rng.uniform(0.78, 1.12)
        cv2.fillPoly(rgb, [_fixed(tri)], tuple(float(v) for v in np.clip(base * shade, 0, 255)), cv2.LINE_8, _SUB)
        cv2.fillPoly(alpha, [_fixed(tri)], float(rng.uniform(0.6, 0.78)), cv2.LINE_8, _SUB)
    rim = max(1, int(round(r * 0.08)))
    cv2.polylines(rgb, [_fixed(poly)], True, (120, 128, 124), rim, cv2.LINE_8, _SUB)
    cv2.polylines(alpha, [_fixed(poly)], True, 0.95, rim, cv2.LINE_8, _SUB)
    # bright conchoidal highlights
    for _ in range(int(rng.integers(1, 3))):
        a, b = apex + rng.uniform(-0.5, 0.5, 2) * r, apex + rng.uniform(-0.5, 0.5, 2) * r
        cv2.line(rgb, tuple(_fixed(a).ravel()), tuple(_fixed(b).ravel()), (255, 255, 255), max(1, rim // 2), cv2.LINE_8, _SUB)
    mask = np.zeros((size, size), np.uint8)
    cv2.fillPoly(mask, [_fixed(poly)], 1, cv2.LINE_8, _SUB)
    return rgb, alpha, mask


def _dark(rng: np.random.Generator, r: float, size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    c = size / 2.0
    poly = _polygon(rng, 48, jitter=0.7, smooth=5) * r + c
    mask = np.zeros((size, size), np.uint8)
    cv2.fillPoly(mask, [_fixed(poly)], 1, cv2.LINE_8, _SUB)
    base = np.array([60, 52, 45], np.float32) * rng.uniform(0.75, 1.15)
    speckle = rng.normal(0, 7, (size, size, 1)).astype(np.float32)
    rgb = np.broadcast_to(base, (size, size, 3)) + speckle
    for _ in range(int(rng.integers(2, 6))):  # lighter mineral inclusions
        p = c + rng.uniform(-0.5, 0.5, 2) * r
        cv2.circle(rgb, tuple(_fixed(p).ravel()), max(1, int(r * rng.uniform(0.05, 0.15)) * _ONE),
                   (100, 90, 78), -1, cv2.LINE_8, _SUB)
    return np.clip(rgb, 0, 255).astype(np.float32), mask.astype(np.float32), mask


def _chambers(rng: np.random.Generator, r: float, c: float) -> list[tuple[np.ndarray, float]]:
    """Chambers of a trochospiral test: (centre, radius) pairs, smallest first, fitting in radius ``r``."""
    n = int(rng.integers(4, 8))
    growth = rng.uniform(1.18, 1.32)
    theta0, turn = rng.uniform(0, 2 * np.pi), rng.uniform(1.0, 1.35)
    radii = growth ** np.arange(n)
    centres = []
    for i in range(n):
        dist = 0.9 * radii[i] * (1.0 + 0.15 * i)
        centres.append(np.array([np.cos(theta0 + turn * i), np.sin(theta0 + turn * i)]) * dist)
    centres = np.array(centres)
    extent = np.max(np.linalg.norm(centres, axis=1) + radii)
    shift = centres.mean(axis=0)
    extent = np.max(np.linalg.norm(centres - shift, axis=1) + radii)
    scale = r / extent
    return [((centres[i] - shift) * scale + c, radii[i] * scale) for i in range(n)]


def _foram(rng: np.random.Generator, r: float, size: int, broken: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    c = size / 2.0
    chambers = _chambers(rng, r, c)
    base = np.array([238, 230, 208], np.float32) * rng.uniform(0.93, 1.03)
    rgb = np.zeros((size, size, 3), np.float32)
    mask = np.zeros((size, size), np.uint8)
    suture = tuple(float(v) for v in base * 0.68)
    line = max(1, int(round(r * 0.05)))
    for centre, cr in chambers:  # later (bigger) chambers overlap the earlier ones
        ctr = tuple(_fixed(centre).ravel())
        rad = int(round(cr * _ONE))
        cv2.circle(mask, ctr, rad, 1, -1, cv2.LINE_8, _SUB)
        cv2.circle(rgb, ctr, rad, tuple(float(v) for v in base * 0.86), -1, cv2.LINE_8, _SUB)
        cv2.circle(rgb, ctr, int(rad * 0.62), tuple(float(v) for v in base * 0.96), -1, cv2.LINE_8, _SUB)
        cv2.circle(rgb, ctr, int(rad * 0.3), tuple(float(v) for v in np.minimum(base * 1.06, 255)), -1, cv2.LINE_8, _SUB)
        cv2.circle(rgb, ctr, rad, suture, line, cv2.LINE_8, _SUB)
    if broken:
        # a jagged fracture line through the test, placed so that 40-85 % of the test remains
        whole = max(int(mask.sum()), 1)
        for _attempt in range(8):
            normal = _rotation(rng.uniform(0, 2 * np.pi)) @ np.array([1.0, 0.0])
            along = np.array([-normal[1], normal[0]])
            t = np.linspace(-1.6 * r, 1.6 * r, 11)
            jag = rng.uniform(-0.15, 0.15, t.size) * r
            crack = c + rng.uniform(-0.1, 0.45) * r * normal + t[:, None] * along + jag[:, None] * normal
            gone = np.zeros_like(mask)
            cv2.fillPoly(gone, [_fixed(np.concatenate([crack, crack[::-1] + 3 * r * normal]))], 1, cv2.LINE_8, _SUB)
            piece = _largest_piece(mask & (1 - gone)).astype(np.uint8)
            if 0.4 <= piece.sum() / whole <= 0.85:
                break
        mask = piece
        # the open chambers: a dark cavity along the fracture, with a broken brownish rim
        cavity = np.zeros_like(mask)
        depth = rng.uniform(0.18, 0.3) * r
        cv2.fillPoly(cavity, [_fixed(np.concatenate([crack, crack[::-1] - depth * normal]))], 1, cv2.LINE_8, _SUB)
        cavity &= mask
        rgb[cavity.astype(bool)] = np.array([155, 130, 98], np.float32) * rng.uniform(0.85, 1.05)
        cv2.polylines(rgb, [_fixed(crack)], False, (110, 92, 70), line + 1, cv2.LINE_8, _SUB)
    pores = rng.normal(0, 6, (size, size, 1)).astype(np.float32)
    rgb = np.clip(rgb + pores, 0, 255)
    return rgb, mask.astype(np.float32), mask


def _rotation(angle: float) -> np.ndarray:
    return np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])


def draw_grain(kind: str, diameter_px: float, seed: int) -> Sprite:
    """Draw one grain of ``kind`` about ``diameter_px`` across, from its own ``seed``.

    The sprite is square with an odd side, the grain centred on its middle pixel.

    Examples
    --------
    >>> sprite = draw_grain("dark", 40, seed=3)
    >>> sprite.rgb.shape[2], sprite.mask.dtype.name, bool(sprite.mask.any())
    (3, 'bool', True)
    >>> bool(sprite.rgb[sprite.mask].mean() < 100)
    True
    """
    if kind not in GRAIN_KINDS:
        raise ValueError(f"unknown grain kind {kind!r}; expected one of {', '.join(GRAIN_KINDS)}")
    rng = np.random.default_rng(seed)
    r = max(1.5, diameter_px / 2.0)
    size = 2 * int(np.ceil(r)) + 3
    if kind == "quartz":
        rgb, alpha, mask = _quartz(rng, r, size)
    elif kind == "dark":
        rgb, alpha, mask = _dark(rng, r, size)
    else:
        rgb, alpha, mask = _foram(rng, r, size, broken=kind == "foram_broken")
    mask = _largest_piece(mask)
    alpha = np.where(mask, alpha, 0.0).astype(np.float32)
    return Sprite(np.ascontiguousarray(rgb, dtype=np.float32), alpha, mask)
