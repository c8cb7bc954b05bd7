"""A virtual plate: grains lying at fixed places (mm) on the green plate.

The plate is the simulated microscope's specimen. Every grain has a kind, a centre, a diameter, a
focus height (µm above the plate's reference plane: the focal distance at which it is sharpest) and
its own drawing seed; overlapping stage positions therefore see the same grains. Most grains lie
apart (a gap of at least ``min_gap_mm``); a ``clump_fraction`` of them is dropped against another
grain so that they touch, as on a real plate.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from acquisition.sim.grains import DIAMETER_MM, GRAIN_KINDS, Sprite, draw_grain


@dataclass
class VirtualPlate:
    """Grains on a plate of ``width_mm`` x ``height_mm`` (x to the right, y downwards).

    Arrays are indexed by grain id. Use :meth:`generate` to make one.
    """

    seed: int
    width_mm: float
    height_mm: float
    kind: np.ndarray  # (grain,) int: index into GRAIN_KINDS
    x_mm: np.ndarray
    y_mm: np.ndarray
    diameter_mm: np.ndarray
    focus_um: np.ndarray
    grain_seed: np.ndarray
    _sprites: dict = field(default_factory=dict, repr=False, compare=False)

    @property
    def n_grains(self) -> int:
        return int(self.kind.size)

    def kind_name(self, grain: int) -> str:
        return GRAIN_KINDS[int(self.kind[grain])]

    @classmethod
    def generate(
        cls,
        seed: int = 0,
        width_mm: float = 10.0,
        height_mm: float = 10.0,
        grains_per_mm2: float = 2.0,
        kind_fractions: Mapping[str, float] | None = None,
        clump_fraction: float = 0.1,
        *,
        focus_range_um: tuple[float, float] = (-40.0, 40.0),
        min_gap_mm: float = 0.04,
        diameter_mm: Mapping[str, tuple[float, float]] | None = None,
    ) -> VirtualPlate:
        """Scatter grains over the plate, deterministically for ``seed``.

        Parameters
        ----------
        seed
            Seeds the whole plate (placement and every grain's look).
        width_mm, height_mm
            Plate area covered with grains.
        grains_per_mm2
            Mean grain density; fewer grains are placed when the plate is too crowded.
        kind_fractions
            Share of each kind (keys from ``GRAIN_KINDS``; normalised); equal shares by default.
        clump_fraction
            Share of grains placed touching an earlier grain (they form clumps).
        focus_range_um
            Range of the grains' focus heights (uniform).
        min_gap_mm
            Least gap between grains that are not meant to touch.
        diameter_mm
            Range ``(low, high)`` of each kind's diameter in mm (uniform within it); kinds not given
            keep :data:`~acquisition.sim.grains.DIAMETER_MM` (forams largest, dark grains smallest).
        """
        if width_mm <= 0 or height_mm <= 0 or grains_per_mm2 < 0:
            raise ValueError("plate size must be positive and the grain density not negative")
        if not 0.0 <= clump_fraction <= 1.0:
            raise ValueError(f"clump_fraction {clump_fraction} is not between 0 and 1")
        fractions = _fractions(kind_fractions)
        sizes = _sizes(diameter_mm)
        rng = np.random.default_rng(seed)
        n_target = int(rng.poisson(grains_per_mm2 * width_mm * height_mm))
        kinds: list[int] = []
        xs: list[float] = []
        ys: list[float] = []
        diameters: list[float] = []
        for _ in range(n_target):
            kind = int(rng.choice(len(GRAIN_KINDS), p=fractions))
            lo, hi = sizes[GRAIN_KINDS[kind]]
            d = float(rng.uniform(lo, hi))
            touching = bool(xs) and rng.random() < clump_fraction
            for _attempt in range(30):
                if touching:
                    partner = int(rng.integers(len(xs)))
                    angle = rng.uniform(0, 2 * np.pi)
                    # the outlines are star-shaped inside the circle, so overlap the circles well
                    dist = 0.62 * (d + diameters[partner]) / 2
                    x, y = xs[partner] + dist * np.cos(angle), ys[partner] + dist * np.sin(angle)
                else:
                    partner = -1
                    x, y = rng.uniform(0, width_mm), rng.uniform(0, height_mm)
                if not (0 <= x <= width_mm and 0 <= y <= height_mm):
                    continue
                if _free(x, y, d, xs, ys, diameters, partner, min_gap_mm):
                    kinds.append(kind)
                    xs.append(float(x))
                    ys.append(float(y))
                    diameters.append(d)
                    break
        n = len(kinds)
        return cls(
            seed=int(seed),
            width_mm=float(width_mm),
            height_mm=float(height_mm),
            kind=np.asarray(kinds, dtype=np.int8),
            x_mm=np.asarray(xs, dtype=float),
            y_mm=np.asarray(ys, dtype=float),
            diameter_mm=np.asarray(diameters, dtype=float),
            focus_um=rng.uniform(*focus_range_um, n),
            grain_seed=rng.integers(0, 2**31 - 1, n),
        )

    def sprite(self, grain: int, pixel_size_um: float) -> Sprite:
        """The grain's in-focus sprite at ``pixel_size_um`` (cached per grain and pixel size)."""
        key = (int(grain), round(float(pixel_size_um), 6))
        sprite = self._sprites.get(key)
        if sprite is None:
            diameter_px = self.diameter_mm[grain] * 1000.0 / pixel_size_um
            sprite = draw_grain(self.kind_name(grain), diameter_px, int(self.grain_seed[grain]))
            if len(self._sprites) > 4096:
                self._sprites.clear()
            self._sprites[key] = sprite
        return sprite

    def grains_near(self, x0_mm: float, y0_mm: float, x1_mm: float, y1_mm: float) -> np.ndarray:
        """Ids of grains whose extent reaches into the rectangle [x0, x1] x [y0, y1] (mm)."""
        r = self.diameter_mm / 2
        inside = (
            (self.x_mm + r >= x0_mm) & (self.x_mm - r <= x1_mm)
            & (self.y_mm + r >= y0_mm) & (self.y_mm - r <= y1_mm)
        )
        return np.flatnonzero(inside)


def _fractions(kind_fractions: Mapping[str, float] | None) -> np.ndarray:
    if kind_fractions is None:
        return np.full(len(GRAIN_KINDS), 1.0 / len(GRAIN_KINDS))
    unknown = set(kind_fractions) - set(GRAIN_KINDS)
    if unknown:
        raise ValueError(f"unknown grain kinds {sorted(unknown)}; expected some of {', '.join(GRAIN_KINDS)}")
    shares = np.array([float(kind_fractions.get(k, 0.0)) for k in GRAIN_KINDS])
    if (shares < 0).any() or shares.sum() <= 0:
        raise ValueError(f"kind_fractions {dict(kind_fractions)} must be non-negative and not all zero")
    return shares / shares.sum()


def _sizes(diameter_mm: Mapping[str, tuple[float, float]] | None) -> dict[str, tuple[float, float]]:
    sizes = dict(DIAMETER_MM)
    for kind, bounds in (diameter_mm or {}).items():
        if kind not in GRAIN_KINDS:
            raise ValueError(f"unknown grain kind {kind!r} in diameter_mm; expected some of {', '.join(GRAIN_KINDS)}")
        lo, hi = (float(v) for v in bounds)
        if not 0 < lo <= hi:
            raise ValueError(f"diameter range {bounds} of {kind} must be 0 < low <= high (mm)")
        sizes[kind] = (lo, hi)
    return sizes


def _free(x: float, y: float, d: float, xs: list[float], ys: list[float], diameters: list[float],
          partner: int, gap: float) -> bool:
    """True where a grain at (x, y) keeps ``gap`` from every grain but its clump ``partner``."""
    if not xs:
        return True
    dist = np.hypot(np.asarray(xs) - x, np.asarray(ys) - y)
    need = (np.asarray(diameters) + d) / 2 + gap
    ok = dist >= need
    if partner >= 0:
        ok[partner] = True
    return bool(ok.all())
