"""The simulated camera's optics: a focal stack of what one stage position shows, and its truth.

Geometry: the stage position ``(x_mm, y_mm)`` is the plate point seen at the centre of the frame;
column ``j`` sees ``x_mm + (j - (width - 1) / 2) * pixel_size_um / 1000`` and row ``i`` likewise
in y. Focal layer ``l`` is focused at ``z_um + focal_offsets_um[l]``; a grain whose focus height
differs by ``dz`` is blurred with a Gaussian of ``defocus_per_um * |dz|`` µm (plus a small optical
blur). The plate is bright saturated green with a faint mottling (or any ``plate_rgb``: black,
white, grey, blue trays); the frame then gets illumination fall-off towards its corners, an
optional light gradient across it, and sensor noise. ``palette="varied"`` recolours grains as real
sands look: very dark brown, dark olive (greener than red), saturated orange and red. The noise is seeded from the plate and the position,
so the same position always renders the same bytes (a resumed scan matches an uninterrupted one).
"""
from __future__ import annotations

import hashlib
from collections.abc import Sequence
from functools import lru_cache
from statistics import NormalDist

import cv2
import numpy as np
import pandas as pd

from acquisition.sim.plate import VirtualPlate

DEFAULT_FOCAL_OFFSETS_UM = (-50.0, -30.0, -10.0, 10.0, 30.0, 50.0)
PLATE_GREEN = (38.0, 196.0, 72.0)  # RGB: bright, strongly saturated (HSV saturation ~0.8)
TRUTH_COLUMNS = ("position", "object_id", "kind", "y0", "x0", "y1", "x1", "chopped", "clump", "n_grains",
                 "grain_id", "area_px")


def render_stack(
    plate: VirtualPlate,
    x_mm: float,
    y_mm: float,
    *,
    z_um: float = 0.0,
    focal_offsets_um: Sequence[float] = DEFAULT_FOCAL_OFFSETS_UM,
    height: int = 1024,
    width: int = 1280,
    pixel_size_um: float = 1.5,
    rng: np.random.Generator | None = None,
    defocus_per_um: float = 0.12,
    vignetting: float = 0.25,
    noise_sd: float = 2.5,
    min_area_px: int = 16,
    truth: bool = True,
    plate_rgb: Sequence[float] = PLATE_GREEN,
    light_gradient: float = 0.0,
    palette: str = "paper",
    touching: str = "clump",
) -> tuple[np.ndarray, pd.DataFrame | None]:
    """Render the focal stack the camera sees at one stage position, with its ground truth.

    Parameters
    ----------
    plate
        The specimen.
    x_mm, y_mm
        Plate point at the frame centre (the stage position).
    z_um
        Stage height; layer ``l`` is focused at ``z_um + focal_offsets_um[l]``.
    focal_offsets_um
        One focal offset per layer.
    height, width
        Frame size in pixels.
    pixel_size_um
        Size of a pixel on the plate (about 1.5 µm at the paper's 80x).
    rng
        Source of the sensor noise; by default seeded from the plate seed and the position.
    defocus_per_um, vignetting, noise_sd
        Blur (µm of Gaussian sigma per µm of defocus), brightness lost in the corners, and
        noise standard deviation (digital numbers).
    min_area_px
        Objects smaller than this (slivers at the frame edge) are left out of the truth.
    truth
        Whether to work out the truth (``None`` is returned in its place otherwise; faster).
    plate_rgb
        Colour of the plate (the paper's green by default).
    light_gradient
        Uneven illumination: brightness lost from the left edge to the right edge (0..1).
    palette
        ``paper`` (the kinds' own colours) or ``varied`` (grains recoloured, see :data:`VARIED`).
    touching
        Truth of touching grains: ``clump`` (one object, as a threshold sees them) or ``apart``
        (one object per grain, as a segmenter that splits touching grains should find them).

    Returns
    -------
    stack : numpy.ndarray
        ``(layer, height, width, 3)`` uint8 RGB.
    truth : pandas.DataFrame
        One row per object a perfect segmenter would find (touching grains form one ``clump``):
        ``position`` (-1 here; set by the caller), ``object_id``, ``kind`` (of its largest grain),
        ``y0, x0, y1, x1`` (box, end exclusive, clipped to the frame), ``chopped`` (cut by the
        frame edge), ``clump``, ``n_grains``, ``grain_id`` (its largest grain on the plate) and
        ``area_px``.
    """
    # plain floats: numpy scalars would change the precision of the arithmetic below (NEP 50),
    # and with it the rendered bytes
    x_mm, y_mm, z_um, pixel_size_um = float(x_mm), float(y_mm), float(z_um), float(pixel_size_um)
    offsets = np.asarray(list(focal_offsets_um), dtype=float)
    if offsets.ndim != 1 or offsets.size < 1:
        raise ValueError("focal_offsets_um needs at least one offset")
    if height < 1 or width < 1 or pixel_size_um <= 0:
        raise ValueError(f"bad frame geometry {height}x{width} at {pixel_size_um} µm/px")
    if rng is None:
        rng = np.random.default_rng(_position_seed(plate.seed, x_mm, y_mm, z_um, height, width, pixel_size_um))
    px_mm = pixel_size_um / 1000.0
    # plate coordinate of pixel (0, 0)
    ox, oy = x_mm - (width - 1) / 2 * px_mm, y_mm - (height - 1) / 2 * px_mm
    sigma_px = (0.5 + defocus_per_um * np.abs(plate.focus_um[:, None] - (z_um + offsets)[None, :]) / pixel_size_um
                if plate.n_grains else np.zeros((0, offsets.size)))

    if palette not in ("paper", "varied") or touching not in ("clump", "apart"):
        raise ValueError(f"palette {palette!r} / touching {touching!r} not known")
    background = _background(plate.seed, ox, oy, height, width, px_mm, tuple(float(v) for v in plate_rgb))
    layers = np.repeat(background[None], offsets.size, axis=0)
    footprint = np.zeros((height, width), np.int32)  # grain id + 1 of the visible footprint
    placed = []
    for g, sprite, top, left in _placements(plate, ox, oy, height, width, pixel_size_um):
        if palette == "varied":
            sprite = recolour(sprite, int(plate.grain_seed[g]))
        if truth and _mark(footprint, sprite, top, left, g):
            placed.append(g)
        premult = np.concatenate([sprite.rgb * sprite.alpha[..., None], sprite.alpha[..., None]], axis=2)
        for layer in range(offsets.size):
            _composite(layers[layer], premult, top, left, float(sigma_px[g, layer]))

    gain = _vignette(height, width, vignetting, light_gradient)
    lut = _noise_lut(float(noise_sd))
    stack = np.empty((offsets.size, height, width, 3), np.uint8)
    for layer in range(offsets.size):
        lit = cv2.convertScaleAbs(cv2.multiply(layers[layer], gain))
        # Gaussian sensor noise through a quantile table: uniform bytes are far cheaper than normals
        noise = cv2.LUT(np.frombuffer(rng.bytes(lit.size), np.uint8).reshape(lit.shape), lut)
        stack[layer] = cv2.add(lit, noise, dtype=cv2.CV_8U)
    if not truth:
        return stack, None
    return stack, frame_truth(footprint, plate, placed, min_area_px=min_area_px, touching=touching)


#: ``palette="varied"``: (share, RGB) of grains recoloured as real sands look; the rest keep their kind's colour.
VARIED = ((0.2, (55, 45, 40)), (0.15, (72, 82, 46)), (0.15, (215, 110, 35)), (0.1, (175, 45, 30)))


def recolour(sprite, seed: int):
    """The sprite recoloured (texture kept, made opaque) by :data:`VARIED`, chosen by the grain's seed."""
    from acquisition.sim.grains import Sprite

    u = (seed * 0.6180339887) % 1.0
    for share, rgb in VARIED:
        if u < share:
            mean = sprite.rgb[sprite.mask].mean(0) if sprite.mask.any() else np.ones(3, np.float32)
            scale = np.asarray(rgb, np.float32) / np.maximum(mean, 1.0)
            return Sprite(np.clip(sprite.rgb * scale, 0, 255).astype(np.float32),
                          np.where(sprite.mask, 1.0, sprite.alpha).astype(np.float32), sprite.mask)
        u -= share
    return sprite


def truth_at(plate: VirtualPlate, x_mm: float, y_mm: float, *, height: int = 1024, width: int = 1280,
             pixel_size_um: float = 1.5, min_area_px: int = 16) -> pd.DataFrame:
    """The ground truth of the frame at a stage position, without rendering it (same as ``render_stack``'s)."""
    x_mm, y_mm, pixel_size_um = float(x_mm), float(y_mm), float(pixel_size_um)
    px_mm = pixel_size_um / 1000.0
    ox, oy = x_mm - (width - 1) / 2 * px_mm, y_mm - (height - 1) / 2 * px_mm
    footprint = np.zeros((height, width), np.int32)
    placed = [g for g, sprite, top, left in _placements(plate, ox, oy, height, width, pixel_size_um)
              if _mark(footprint, sprite, top, left, g)]
    return frame_truth(footprint, plate, placed, min_area_px=min_area_px)


def _placements(plate: VirtualPlate, ox: float, oy: float, height: int, width: int, pixel_size_um: float):
    """(grain, sprite, top, left) of every grain whose sprite reaches into the frame, in plate order."""
    px_mm = pixel_size_um / 1000.0
    for g in plate.grains_near(ox, oy, ox + (width - 1) * px_mm, oy + (height - 1) * px_mm):
        sprite = plate.sprite(g, pixel_size_um)
        half = sprite.shape[0] // 2
        top = int(round((plate.y_mm[g] - oy) / px_mm)) - half
        left = int(round((plate.x_mm[g] - ox) / px_mm)) - half
        if _clip(top, left, sprite.shape[0], sprite.shape[1], height, width) is not None:
            yield int(g), sprite, top, left


def _mark(footprint: np.ndarray, sprite, top: int, left: int, grain: int) -> bool:
    """Paint the grain's footprint (id + 1) into the map; False when none of it is in the frame."""
    y0, x0, y1, x1 = _clip(top, left, sprite.shape[0], sprite.shape[1], *footprint.shape)
    region = sprite.mask[y0 - top:y1 - top, x0 - left:x1 - left]
    if not region.any():
        return False
    footprint[y0:y1, x0:x1][region] = grain + 1
    return True


def frame_truth(footprint: np.ndarray, plate: VirtualPlate, grains: Sequence[int], *, min_area_px: int = 16,
                touching: str = "clump") -> pd.DataFrame:
    """Objects of a frame from its footprint map (grain id + 1 per pixel, 0 = plate).

    Touching footprints (8-connected) form one object; its kind is that of its largest visible grain.
    With ``touching="apart"`` every grain is an object of its own (its visible footprint).
    """
    height, width = footprint.shape
    if touching == "apart":
        return _grain_truth(footprint, plate, min_area_px)
    n, labels, stats, _ = cv2.connectedComponentsWithStats((footprint > 0).astype(np.uint8), connectivity=8)
    rows = []
    for obj in range(1, n):
        x0, y0, w, h, area = (int(v) for v in stats[obj])
        if area < min_area_px:
            continue
        ids, counts = np.unique(footprint[y0:y0 + h, x0:x0 + w][labels[y0:y0 + h, x0:x0 + w] == obj], return_counts=True)
        largest = int(ids[np.argmax(counts)]) - 1
        rows.append({
            "position": -1,
            "object_id": len(rows),
            "kind": plate.kind_name(largest),
            "y0": y0, "x0": x0, "y1": y0 + h, "x1": x0 + w,
            "chopped": bool(y0 == 0 or x0 == 0 or y0 + h == height or x0 + w == width),
            "clump": bool(ids.size > 1),
            "n_grains": int(ids.size),
            "grain_id": largest,
            "area_px": area,
        })
    frame = pd.DataFrame(rows, columns=list(TRUTH_COLUMNS))
    return frame.astype({"position": int, "object_id": int, "y0": int, "x0": int, "y1": int, "x1": int,
                         "chopped": bool, "clump": bool, "n_grains": int, "grain_id": int, "area_px": int})


def _grain_truth(footprint: np.ndarray, plate: VirtualPlate, min_area_px: int) -> pd.DataFrame:
    """One truth row per visible grain (touching grains apart)."""
    from scipy import ndimage

    height, width = footprint.shape
    rows = []
    for index, sl in enumerate(ndimage.find_objects(footprint), start=1):
        if sl is None:
            continue
        area = int((footprint[sl] == index).sum())
        if area < min_area_px:
            continue
        y0, y1, x0, x1 = sl[0].start, sl[0].stop, sl[1].start, sl[1].stop
        rows.append({"position": -1, "object_id": len(rows), "kind": plate.kind_name(index - 1),
                     "y0": y0, "x0": x0, "y1": y1, "x1": x1,
                     "chopped": bool(y0 == 0 or x0 == 0 or y1 == height or x1 == width),
                     "clump": False, "n_grains": 1, "grain_id": index - 1, "area_px": area})
    rows.sort(key=lambda r: (r["y0"], r["x0"]))
    for i, r in enumerate(rows):
        r["object_id"] = i
    frame = pd.DataFrame(rows, columns=list(TRUTH_COLUMNS))
    return frame.astype({"position": int, "object_id": int, "y0": int, "x0": int, "y1": int, "x1": int,
                         "chopped": bool, "clump": bool, "n_grains": int, "grain_id": int, "area_px": int})


def _composite(frame: np.ndarray, premult: np.ndarray, top: int, left: int, sigma: float) -> None:
    """Blur a premultiplied RGBA sprite by ``sigma`` px and lay it over ``frame`` at (top, left)."""
    margin = int(np.ceil(3 * sigma))
    if margin:
        premult = cv2.copyMakeBorder(premult, margin, margin, margin, margin, cv2.BORDER_CONSTANT, value=0)
        premult = cv2.GaussianBlur(premult, (2 * margin + 1, 2 * margin + 1), sigma)
        top, left = top - margin, left - margin
    box = _clip(top, left, premult.shape[0], premult.shape[1], frame.shape[0], frame.shape[1])
    if box is None:
        return
    y0, x0, y1, x1 = box
    part = premult[y0 - top:y1 - top, x0 - left:x1 - left]
    roi = frame[y0:y1, x0:x1]
    roi *= 1.0 - part[..., 3:]
    roi += part[..., :3]


def _clip(top: int, left: int, h: int, w: int, height: int, width: int) -> tuple[int, int, int, int] | None:
    y0, x0, y1, x1 = max(top, 0), max(left, 0), min(top + h, height), min(left + w, width)
    return None if y0 >= y1 or x0 >= x1 else (y0, x0, y1, x1)


@lru_cache(maxsize=4)
def _background(seed: int, ox: float, oy: float, height: int, width: int, px_mm: float,
                plate_rgb: tuple[float, ...] = PLATE_GREEN) -> np.ndarray:
    """The plate (green by default) with a faint mottling fixed to plate coordinates (so overlaps agree).

    The mottling is a sum of separable waves (outer products of a row and a column), which keeps
    a full frame cheap; the result is cached, since every focal layer of a position shares it.
    """
    ys = (oy + np.arange(height, dtype=np.float32) * px_mm)[:, None]
    xs = (ox + np.arange(width, dtype=np.float32) * px_mm)[None, :]
    phase = (seed % 997) * 0.37
    a, b = 0.9 * xs + 2 * phase, 0.9 * ys  # sin(a + b) = sin a cos b + cos a sin b
    shade = (1.0 + 0.03 * np.cos(1.7 * ys - phase) * np.sin(2.1 * xs + phase)
             + 0.02 * (np.cos(b) * np.sin(a) + np.sin(b) * np.cos(a)))
    plate = (shade[..., None] * np.asarray(plate_rgb, np.float32)).astype(np.float32)
    plate.setflags(write=False)
    return plate


@lru_cache(maxsize=8)
def _vignette(height: int, width: int, strength: float, gradient: float = 0.0) -> np.ndarray:
    ys = np.linspace(-1, 1, height, dtype=np.float32)[:, None]
    xs = np.linspace(-1, 1, width, dtype=np.float32)[None, :]
    r2 = (xs**2 + ys**2) / 2
    light = (1.0 - strength * r2) * (1.0 - gradient * (xs + 1) / 2)
    gain = np.repeat(light.astype(np.float32)[..., None], 3, axis=2)
    gain.setflags(write=False)
    return gain


@lru_cache(maxsize=8)
def _noise_lut(sd: float) -> np.ndarray:
    """256 evenly spaced quantiles of N(0, sd), rounded: a byte indexes a Gaussian noise value."""
    quantiles = [NormalDist(0.0, sd).inv_cdf((i + 0.5) / 256) if sd > 0 else 0.0 for i in range(256)]
    return np.round(quantiles).astype(np.int16)


def _position_seed(*values: float) -> int:
    text = ",".join(f"{float(v):.6f}" for v in values).encode()
    return int.from_bytes(hashlib.blake2b(text, digest_size=8).digest(), "little")

