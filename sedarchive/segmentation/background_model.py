"""The plate's colour, learnt from the frames: any tray (green, black, white, grey, blue) works.

A grain is whatever differs from the plate. The plate colour is estimated per sample (or per
stack) as the colour cluster of the smoothed frames in CIE Lab that forms the largest connected region
(``auto``: grains are blobs, the plate between them is one network), or picked near a named
colour (``green``, ``black``, ``white``) or an ``R,G,B`` given by the user. Each frame then gets
a smooth *local* plate surface (the plate pixels' colour averaged over large cells, so uneven
illumination and vignetting are followed), and every pixel is scored by its Lab distance (ΔE) from
it. Noise is smoothed away in RGB first, where sensor noise is isotropic, so a dark grain whose hue
is noise still has a stable score: there is no hue gate.

The paper's rule (HSV saturation, :mod:`~sedarchive.segmentation.background`) stays available as
``background: paper``.
"""
from __future__ import annotations

import functools

import numpy as np

from sedarchive.errors import InputError

#: Named plate colours (RGB) that a ``--background`` name stands for; the plate is then looked for
#: near this colour and its real (lit) colour estimated from the frames.
NAMED = {"green": (38, 196, 72), "black": (15, 15, 15), "white": (235, 235, 235)}
CHOICES = ("auto", "paper", *NAMED)
#: A pixel within this ΔE of the plate colour counts as plate when the plate is looked for.
PLATE_TOLERANCE = 18.0
#: Size (pixels) of the cells over which the local plate colour is averaged.
CELL_PX = 48


def parse_background(text: str, source: str = "background") -> str | tuple[int, int, int]:
    """``auto``, ``paper``, a named colour, or an ``(r, g, b)`` tuple from ``"R,G,B"``.

    Examples
    --------
    >>> parse_background("Black"), parse_background("20, 30,200")
    ('black', (20, 30, 200))
    """
    value = str(text).strip().lower()
    if value in CHOICES:
        return value
    parts = value.split(",")
    try:
        rgb = tuple(int(p) for p in parts)
    except ValueError:
        rgb = ()
    if len(rgb) != 3 or not all(0 <= v <= 255 for v in rgb):
        raise InputError(f"{source}: {text!r} is not one of {', '.join(CHOICES)} or R,G,B (0..255)")
    return rgb  # type: ignore[return-value]


def smoothed_lab(frame: np.ndarray, sigma: float = 1.2) -> np.ndarray:
    """The frame smoothed in RGB (Gaussian ``sigma`` px) and converted to CIE Lab, float32 ``(y, x, 3)``."""
    import cv2

    rgb = np.ascontiguousarray(frame, dtype=np.float32) * np.float32(1 / 255)
    if sigma > 0:
        rgb = cv2.GaussianBlur(rgb, (0, 0), sigma)
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2LAB)


def rgb_to_lab(rgb) -> np.ndarray:
    """Lab of one RGB colour (0..255).

    Examples
    --------
    >>> [round(float(v)) for v in rgb_to_lab((255, 255, 255))]
    [100, 0, 0]
    """
    import cv2

    pixel = np.asarray(rgb, np.float32).reshape(1, 1, 3) / 255
    return cv2.cvtColor(pixel, cv2.COLOR_RGB2LAB).reshape(3)


def lab_to_rgb(lab) -> tuple[int, int, int]:
    """RGB (0..255 ints) of one Lab colour."""
    import cv2

    pixel = np.asarray(lab, np.float32).reshape(1, 1, 3)
    rgb = np.clip(cv2.cvtColor(pixel, cv2.COLOR_LAB2RGB).reshape(3) * 255, 0, 255)
    return tuple(int(round(float(v))) for v in rgb)  # type: ignore[return-value]


def _samples(frames, step: int = 4) -> np.ndarray:
    """Lab of every ``step``-th pixel of the smoothed frames, ``(n, 3)``."""
    return np.concatenate([smoothed_lab(f)[::step, ::step].reshape(-1, 3) for f in frames])


def _densest(lab: np.ndarray, near: np.ndarray | None = None) -> np.ndarray:
    """The densest colour of ``lab`` samples (mode of a coarse histogram, refined by mean shift)."""
    if near is not None:
        d = np.linalg.norm(lab - near, axis=1)
        # the named colour says where to look, the frames say what the lit plate really looks like
        pool = lab[d < 2.5 * PLATE_TOLERANCE]
        if len(pool) < 0.005 * len(lab):
            return np.asarray(near, np.float32)  # not on these frames: the named colour itself
        lab = pool
    bins = np.floor(lab / np.float32([4, 6, 6])).astype(np.int64)
    bins -= bins.min(0)
    dims = bins.max(0) + 1
    flat = np.ravel_multi_index(bins.T, dims)
    counts = np.bincount(flat)
    mode = np.array(np.unravel_index(int(np.argmax(counts)), dims))
    centre = lab[flat == np.ravel_multi_index(mode, dims)].mean(0)
    for _ in range(5):  # mean shift towards the local density peak
        near_pts = lab[np.linalg.norm(lab - centre, axis=1) < PLATE_TOLERANCE / 2]
        if len(near_pts) == 0:
            break
        centre = near_pts.mean(0)
    return centre.astype(np.float32)


def _connected_cluster(frames, k: int = 5) -> np.ndarray:
    """Lab colour of the plate found as the colour cluster that forms the largest connected region.

    Grains are separate blobs; the plate between them is one connected network. The frames'
    colours (every 4th pixel) are clustered with k-means in Lab; the cluster whose largest
    8-connected region is biggest is the plate, and its densest colour is returned.
    """
    import cv2

    best, best_size, best_lab = -1, -1, None
    labs = [smoothed_lab(f)[::4, ::4] for f in frames]
    data = np.concatenate([lab.reshape(-1, 3) for lab in labs]).astype(np.float32)
    k = min(k, len(data))
    criteria = (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 20, 0.5)
    cv2.setRNGSeed(0)  # k-means++ seeding: the same frames always give the same plate
    _, assigned, _ = cv2.kmeans(data, k, None, criteria, 2, cv2.KMEANS_PP_CENTERS)
    assigned = assigned.ravel()
    for cluster in range(k):
        size, start = 0, 0
        for lab in labs:
            n = lab.shape[0] * lab.shape[1]
            mask = (assigned[start:start + n] == cluster).reshape(lab.shape[:2]).astype(np.uint8)
            start += n
            count, _, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
            if count > 1:
                size += int(stats[1:, cv2.CC_STAT_AREA].max())
        if size > best_size:
            best, best_size = cluster, size
    best_lab = data[assigned == best]
    return _densest(best_lab)


def plate_colour(frames, background: str | tuple[int, int, int] = "auto") -> np.ndarray:
    """Lab colour of the plate seen in ``frames`` (a sequence of RGB frames), by the ``background`` rule.

    Examples
    --------
    >>> frame = np.zeros((32, 32, 3), np.uint8); frame[...] = (20, 20, 25); frame[8:20, 8:20] = (200, 190, 150)
    >>> lab_to_rgb(plate_colour([frame]))
    (20, 20, 25)
    """
    if isinstance(background, tuple):
        return _densest(_samples(frames), rgb_to_lab(background))
    if background in NAMED:
        return _densest(_samples(frames), rgb_to_lab(NAMED[background]))
    return _connected_cluster(frames)


def check_blank(frame: np.ndarray, what: str) -> None:
    """Raise :class:`InputError` for a blank frame: every pixel black (no signal) or white (overexposed)."""
    small = frame[::4, ::4].reshape(-1, 3)
    level = float(small.mean())
    if int(np.ptp(small, axis=0).max()) <= 2 and (level <= 8 or level >= 247):
        raise InputError(f"{what}: blank frame (every pixel {tuple(int(v) for v in small[0])}): "
                         "no plate and no grains to find")


def distance_map(frame: np.ndarray, plate_lab: np.ndarray, *, min_plate_fraction: float = 0.02,
                 cell_px: int = CELL_PX, smooth_sigma: float = 0.8, what: str = "frame") -> np.ndarray:
    """Per-pixel ΔE (float32) from the local plate colour: about 0 on the plate, high on grains.

    The local plate colour is a quadratic surface (the light's trend) through the plate pixels plus
    their mean residual over cells of ``cell_px``, filled in smoothly where grains cover a cell;
    plate pixels are first those within 1.5x :data:`PLATE_TOLERANCE` of the plate colour, then
    (twice) those within 3x the plate's own median spread of the local colour. Raises :class:`InputError` when less than ``min_plate_fraction`` of the
    frame is plate: a grain fills the frame, or it is not a photograph of this plate.

    Examples
    --------
    >>> frame = np.zeros((64, 64, 3), np.uint8); frame[...] = (10, 10, 12)
    >>> frame[:, 32:] = (30, 30, 34)     # uneven light: the right half of the plate is brighter
    >>> frame[20:40, 20:30] = (180, 170, 140)
    >>> d = distance_map(frame, rgb_to_lab((10, 10, 12)), cell_px=16)
    >>> bool(d[30, 25] > 40), bool(d[5, 60] < 10)
    (True, True)
    """
    check_blank(frame, what)
    lab = smoothed_lab(frame, smooth_sigma)
    height, width = lab.shape[:2]
    plate_lab = np.asarray(plate_lab, np.float32)
    from_plate = _delta_e(lab, plate_lab)  # also the first pass's distance (its local colour is the plate's)
    near = from_plate < PLATE_TOLERANCE * 1.5
    fraction = float(near[::4, ::4].mean())
    if fraction < min_plate_fraction:
        rgb = lab_to_rgb(plate_lab)
        raise InputError(f"{what}: no background found ({100 * fraction:.1f}% of pixels look like the plate "
                         f"colour {rgb[0]},{rgb[1]},{rgb[2]}, need {100 * min_plate_fraction:.0f}%): "
                         "a grain fills the frame, or it shows another plate")
    local = local_plate(lab, plate_lab, (max(1, round(width / cell_px)), max(1, round(height / cell_px))),
                        from_plate)
    return _delta_e(lab, local).astype(np.float32)


def local_plate(lab: np.ndarray, plate_lab: np.ndarray, cells: tuple[int, int],
                from_plate: np.ndarray | None = None, fast_fit: bool = False) -> np.ndarray:
    """The local plate colour (Lab, float32, the shape of ``lab``) of a smoothed Lab image.

    A quadratic surface through the plate pixels plus their mean residual over ``cells`` (columns,
    rows) cells, in three passes (:func:`distance_map`); ``from_plate`` is ``lab``'s ΔE from
    ``plate_lab`` when already known; ``fast_fit``: see :func:`_quadratic_surface`.
    """
    import cv2

    height, width = lab.shape[:2]
    tolerance = PLATE_TOLERANCE * 1.5
    for i in range(3):
        distance = (from_plate if from_plate is not None else _delta_e(lab, plate_lab)) if i == 0 \
            else _delta_e(lab, local)
        weight = (distance < tolerance).astype(np.float32)
        # later passes: plate is what lies within 3x the plate's own spread (faint grains are not plate)
        tolerance = float(np.clip(3.0 * np.median(distance[::2, ::2][weight[::2, ::2] > 0]), 3.0, PLATE_TOLERANCE)) \
            if weight.any() else PLATE_TOLERANCE
        # the light's slow trend (vignetting, a gradient): a quadratic surface through the plate pixels
        trend = _quadratic_surface(lab, weight, plate_lab, fast_fit)
        residual = (lab - trend) * weight[..., None]
        sums = cv2.resize(residual, cells, interpolation=cv2.INTER_AREA)
        counts = cv2.resize(weight, cells, interpolation=cv2.INTER_AREA)
        # what the surface misses, cell by cell; cells without plate borrow from their neighbours
        sums = cv2.GaussianBlur(sums, (0, 0), 1.0)
        counts = cv2.GaussianBlur(counts, (0, 0), 1.0)
        cell = sums / (counts + 0.05)[..., None]
        local = trend + cv2.resize(cell, (width, height), interpolation=cv2.INTER_LINEAR)
    return local


def _delta_e(lab: np.ndarray, other: np.ndarray) -> np.ndarray:
    """Per-pixel Euclidean distance of two Lab images (or an image and a colour): the same numbers as
    ``np.linalg.norm(lab - other, axis=2)`` (channels summed in the same order), at half its cost."""
    d = lab - other
    total = d[..., 0] * d[..., 0]
    total += d[..., 1] * d[..., 1]
    total += d[..., 2] * d[..., 2]
    return np.sqrt(total)


def _quadratic_surface(lab: np.ndarray, weight: np.ndarray, fallback: np.ndarray,
                       fast_fit: bool = False) -> np.ndarray:
    """Least-squares quadratic surface (per Lab channel) through the pixels of weight 1, full size.

    ``fast_fit`` solves the normal equations (in float64) instead of ``lstsq``'s SVD: the same
    surface to float32 rounding, several times cheaper.
    """
    height, width = lab.shape[:2]
    step = max(1, int(np.sqrt(height * width / 20000)))
    w = weight[::step, ::step].ravel() > 0
    if w.sum() < 50:
        return np.broadcast_to(fallback, lab.shape).astype(np.float32)

    values = lab[::step, ::step].reshape(-1, 3)[w]
    if fast_fit:
        a = _full_design(height, width)[::step, ::step].reshape(-1, 6)[w].astype(np.float64)
        coef = np.linalg.solve(a.T @ a, a.T @ values.astype(np.float64))
    else:
        ys, xs = np.mgrid[0:height:step, 0:width:step]
        a = _design(ys.ravel()[w], xs.ravel()[w], height, width)
        coef, *_ = np.linalg.lstsq(a, values, rcond=None)
    return (_full_design(height, width) @ coef.astype(np.float32)).astype(np.float32)


def _design(yy: np.ndarray, xx: np.ndarray, height: int, width: int) -> np.ndarray:
    """The quadratic terms ``1, u, v, u², uv, v²`` (float32) of pixels ``yy, xx`` in [-1, 1] coordinates."""
    u, v = (xx / width - 0.5) * 2, (yy / height - 0.5) * 2
    return np.stack([np.ones_like(u), u, v, u * u, u * v, v * v], axis=-1).astype(np.float32)


@functools.lru_cache(maxsize=4)
def _full_design(height: int, width: int) -> np.ndarray:
    """:func:`_design` of every pixel of a frame, read-only: the same for every frame of a size (kept,
    it cost a third of the fast kernel when built for each of its 3 passes per frame)."""
    full_y, full_x = np.mgrid[0:height, 0:width]
    design = _design(full_y, full_x, height, width)
    design.setflags(write=False)
    return design


def core_level(distance: np.ndarray, low: float) -> float:
    """ΔE above which a pixel is surely grain (a grain's core): Otsu's split of the distances.

    Returns ``low`` when Otsu's split is not clearly above it (no separate grain mode).

    Examples
    --------
    >>> d = np.r_[np.full(500, 3.0), np.full(300, 25.0), np.full(200, 60.0)].astype(np.float32)
    >>> round(core_level(d, 15.0))
    43
    """
    from sedarchive.segmentation.background import threshold_from_histogram

    values = np.asarray(distance, np.float32)[::2, ::2] if np.ndim(distance) == 2 else np.asarray(distance)
    values = values[values >= low]
    if values.size == 0:
        return float(low)
    hist = np.bincount(np.minimum((values * (256 / 100)).astype(np.int64), 255), minlength=256)
    split = threshold_from_histogram(hist, min_contrast=0.05)
    level = 100.0 * split if split is not None else low
    return float(level) if level > 1.3 * low else float(low)


#: The automatic grain level is never below this ΔE (a just noticeable colour difference is ~2).
MIN_GRAIN_LEVEL = 6.0


def grain_level(distance: np.ndarray) -> float:
    """ΔE from the plate at which a pixel is grain: 4x the plate's own median spread, at least 6.

    A smooth plate (low noise) lets faint grains (dark on black, pale on white) through; a textured
    plate (real trays, dust) raises the level so its texture is not taken for grains.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> plate = np.abs(rng.normal(0, 3, 10000)).astype(np.float32)
    >>> round(grain_level(plate), 1), grain_level(plate / 10)
    (8.1, 6.0)
    """
    values = np.asarray(distance, np.float32)
    values = values[::2, ::2] if values.ndim == 2 else values
    plate = values[values < PLATE_TOLERANCE]
    if plate.size == 0:
        return PLATE_TOLERANCE
    return float(max(MIN_GRAIN_LEVEL, 4.0 * float(np.median(plate))))
