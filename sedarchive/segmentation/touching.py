"""Touching grains split: watershed on the distance transform, necks judged relative to grain size.

A threshold joins grains that touch into one object. Inside such an object the distance to the
outline has one peak per grain and drops at the neck where they touch. Each object that is not
convex enough is flooded from its distance peaks (watershed); two neighbouring basins are merged
again unless the neck between them is narrow: the distance at the saddle is below ``neck_ratio``
of the smaller of the two peaks. A round or angular single grain has no such neck and stays whole;
grains that overlap so much that no neck is left stay merged (and are flagged ``clump`` by
:func:`~sedarchive.segmentation.measures.is_clump`).
"""
from __future__ import annotations

import numpy as np

from sedarchive.segmentation.mask import fill_each

#: How deep into an object (pixels) its blurred edge is trimmed at half its contrast.
EDGE_PX = 4.0
#: Two basins grown from cores stay apart only where the score along their border stays this far
#: (fraction of the way from the grain level to the core level) near the plate: a real gap.
GAP_FRACTION = 0.2
#: Two pieces are split apart only when the smaller has at least this fraction of the larger's area:
#: a small chamber of a foraminifer, or the broken end of a test, stays with its grain.
MIN_PIECE_RATIO = 0.4
#: ... but only through a neck at least this fraction of the smaller piece's inscribed radius: a
#: small grain touching a big one at a point stays apart (else a network of touching grains, each
#: smaller than the grains merged so far, snowballs into one object).
SMALL_PIECE_NECK = 0.2
#: Objects at least this convex (area / convex hull area) are single grains: not flooded at all.
CONVEX_ENOUGH = 0.93
#: Two pieces of nearly the same size (the smaller at least this fraction of the larger) are split a
#: little more readily (:data:`SIMILAR_NECK_BONUS` added to the neck ratio): two grains of one size
#: touching look like that, the chambers of a foraminifer grow in size and do not (measured on the
#: simulator's forams: their similar halves need a neck ratio above 0.44 to split).
SIMILAR_PIECE_RATIO = 0.7
#: A frame whose grains cover at least this fraction of it is densely packed: touching is the rule
#: there, so a neck narrower than :data:`DENSE_NECK_RATIO` is a contact between two grains, and a
#: small piece is a small grain (not a chamber). The simulator's plates, even dense, cover < 0.4;
#: a packed real sand (bench/real.py, 20230511_132710955) about 0.67.
DENSE_COVERAGE = 0.5
DENSE_NECK_RATIO = 0.8
SIMILAR_NECK_BONUS = 0.08
#: Colour split: inside one object, pixels darker than :data:`DARK_FRACTION` of the plate's lightness
#: (Lab L) are a dark grain's, pixels at least :data:`PALE_FRACTION` of it a pale grain's (the blurred
#: rim between them is neither). An object with a solid dark part and a solid pale part, each at
#: least :data:`MIN_COLOUR_PIECE` of the object, is a dark grain touching a pale one (quartz, a
#: foraminifer): split along the colour edge, whatever its shape. A dark grain alone, a pale grain
#: alone, and any grain on a plate too dark for grains to be darker than it, stay whole.
DARK_FRACTION = 0.6
PALE_FRACTION = 0.85
MIN_COLOUR_PIECE = 0.12
#: Side (px) of the opening that keeps only solid dark and pale parts (not rims, specks, pores).
COLOUR_OPEN_PX = 5
#: ... and the pale part must be this much lighter (Lab L, median of each part) than the dark part: on
#: a dark plate (blue, L 30) the two thresholds close up, and a dark grain's lit side is no pale grain.
MIN_LIGHT_GAP = 25.0


def _pair_borders(basins: np.ndarray, value: np.ndarray, n: int, how: str = "max") -> dict[tuple[int, int], float]:
    """For each pair of touching basins, the max (or mean) of ``value`` along their shared border."""
    pairs: dict[tuple[int, int], list[float]] = {}
    for a, b, da, db in ((basins[:, :-1], basins[:, 1:], value[:, :-1], value[:, 1:]),
                         (basins[:-1, :], basins[1:, :], value[:-1, :], value[1:, :])):
        edge = (a != b) & (a > 0) & (b > 0)
        if not edge.any():
            continue
        lo, hi = np.minimum(a[edge], b[edge]), np.maximum(a[edge], b[edge])
        key = lo.astype(np.int64) * (n + 1) + hi
        v = np.minimum(da[edge], db[edge]).astype(np.float64)
        uniq, inverse = np.unique(key, return_inverse=True)
        if how == "max":
            agg = np.full(len(uniq), -np.inf)
            np.maximum.at(agg, inverse, v)
            cnt = np.ones(len(uniq))
        else:
            agg = np.bincount(inverse, weights=v)
            cnt = np.bincount(inverse).astype(np.float64)
        for k, total, c in zip(uniq, agg, cnt):
            pair = (int(k // (n + 1)), int(k % (n + 1)))
            old = pairs.get(pair)
            pairs[pair] = [total, c] if old is None else (
                [max(old[0], total), 1.0] if how == "max" else [old[0] + total, old[1] + c])
    return {pair: (t if how == "max" else t / c) for pair, (t, c) in pairs.items()}


def _merge(basins: np.ndarray, n: int, join) -> np.ndarray:
    """Relabel ``basins`` (1..n) after joining the pairs for which ``join(a, b)`` (union-find) says so."""
    parent = list(range(n + 1))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for a, b in join(root, parent):
        ra, rb = root(a), root(b)
        if ra != rb:
            parent[rb] = ra
    roots = np.array([root(i) for i in range(n + 1)])
    _, merged = np.unique(roots, return_inverse=True)  # root 0 (outside) stays 0
    return merged[basins].astype(np.int32)


def grow_from_cores(score: np.ndarray, low: float, high: float, min_area_px: int = 0) -> np.ndarray:
    """Grains of a score image (high on grains): the ``score >= low`` objects, filled, split along valleys.

    Cores are the parts at or above ``high``; each object is flooded from its cores (watershed on
    the score), and two neighbouring basins stay apart only where the score along their shared
    border stays near the plate (below :data:`GAP_FRACTION` of the way from ``low`` to ``high``: a
    dim gap or halo between two grains), else they are one grain (a suture, a cavity).
    Objects without a core are kept whole. Returns int32 labels.

    Examples
    --------
    >>> score = np.zeros((20, 40), np.float32); score[5:15, 5:18] = 50; score[5:15, 20:35] = 50
    >>> score[8:12, 18:20] = 12     # a dim halo joins the two grains
    >>> int(grow_from_cores(score, 10, 30).max())
    2
    """
    import cv2
    from scipy import ndimage
    from skimage.segmentation import watershed

    from sedarchive.segmentation.mask import label_grains

    objects = trim_edges(score, label_grains(score >= low, min_area_px, fill_holes=False), low, min_area_px)
    if high <= low or objects.max() == 0:
        return objects
    inside = objects > 0
    filled = cv2.GaussianBlur(np.where(inside & (score < low), low, score).astype(np.float32), (0, 0), 2.0)
    # cores: opened, and big enough to be (part of) a grain, not a bright facet
    core_mask = cv2.morphologyEx(((filled >= high) & inside).view(np.uint8), cv2.MORPH_OPEN,
                                 cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (5, 5)))
    cores, n = ndimage.label(core_mask, structure=np.ones((3, 3)))
    if n <= 1:
        return objects
    sizes = np.bincount(cores.ravel())
    small = sizes < max(min_area_px // 2, 8)
    small[0] = False
    cores[small[cores]] = 0
    basins = watershed(-filled, cores, mask=inside)
    borders = _pair_borders(basins, filled, n, how="mean")
    gap = low + GAP_FRACTION * (high - low)
    areas = np.bincount(basins.ravel(), minlength=n + 1)
    joined = _merge(basins, n, lambda root, parent: [
        (a, b) for (a, b), v in borders.items() if v >= gap or min(areas[a], areas[b]) < MIN_PIECE_RATIO * max(areas[a], areas[b])])
    # objects that had no core keep their own label after the grown ones
    loose = inside & (joined == 0)
    out = joined.copy()
    if loose.any():
        extra, m = ndimage.label(loose, structure=np.ones((3, 3)))
        out[loose] = extra[loose] + joined.max()
    return out


def trim_edges(score: np.ndarray, labels: np.ndarray, low: float, min_area_px: int = 0) -> np.ndarray:
    """Each object cut at half its own contrast: the outline where the blurred edge is half-way.

    A fixed threshold puts the outline of a strongly contrasted grain out on its blurred edge (the
    grain grows with defocus); cutting each object at half the median score of its pixels puts it
    in the middle of the edge, and drops dim halos that join grains. Holes stay (filled per grain
    after splitting, :func:`~sedarchive.segmentation.mask.fill_each`).
    Returns new int32 labels (objects that fall apart become several).
    """
    from scipy import ndimage

    from sedarchive.segmentation.mask import label_grains

    import cv2

    keep = np.zeros(labels.shape, bool)
    for index, sl in enumerate(ndimage.find_objects(labels), start=1):
        if sl is None:
            continue
        mask = labels[sl] == index
        level = max(low, 0.5 * float(np.median(score[sl][mask])))
        # only the rim is trimmed: sutures, cavities and dim patches inside a grain stay grain
        depth = cv2.distanceTransform(np.pad(mask, 1).view(np.uint8), cv2.DIST_L2, 3)[1:-1, 1:-1]
        keep[sl] |= mask & ((score[sl] >= level) | (depth > EDGE_PX))
    return label_grains(keep, min_area_px, fill_holes=False)


def split_object(mask: np.ndarray, neck_ratio: float = 0.5, min_peak_px: float = 3.0,
                 similar_bonus: float = SIMILAR_NECK_BONUS, min_piece_ratio: float = MIN_PIECE_RATIO) -> np.ndarray:
    """Labels (int32, ``1..k``) of the grains of one object's bool ``mask``; 0 outside it.

    ``similar_bonus`` is added to ``neck_ratio`` for two pieces of nearly one size
    (:data:`SIMILAR_PIECE_RATIO`); a piece smaller than ``min_piece_ratio`` of its neighbour joins it
    (through a neck of at least :data:`SMALL_PIECE_NECK`).

    Examples
    --------
    >>> import cv2
    >>> two = np.zeros((60, 100), np.uint8)
    >>> _ = cv2.circle(two, (30, 30), 20, 1, -1); _ = cv2.circle(two, (68, 30), 20, 1, -1)
    >>> int(split_object(two.astype(bool)).max())
    2
    >>> one = np.zeros((60, 100), np.uint8); _ = cv2.ellipse(one, (50, 30), (40, 15), 0, 0, 360, 1, -1)
    >>> int(split_object(one.astype(bool)).max())
    1
    """
    import cv2
    from scipy import ndimage
    from skimage.segmentation import watershed

    padded = np.pad(np.ascontiguousarray(mask, dtype=bool), 1)
    dist = cv2.distanceTransform(padded.view(np.uint8), cv2.DIST_L2, 5)
    smooth = cv2.GaussianBlur(dist, (0, 0), 1.0)
    size = max(3, int(2 * min_peak_px) | 1)
    peaks = (smooth == ndimage.maximum_filter(smooth, size=size)) & (smooth >= min_peak_px) & padded
    markers, n = ndimage.label(peaks, structure=np.ones((3, 3)))
    if n <= 1:
        return padded[1:-1, 1:-1].astype(np.int32)
    basins = watershed(-smooth, markers, mask=padded)
    # each basin's highest distance (as ndimage.maximum, several times faster)
    peak = np.zeros(n + 1, np.float64)
    np.maximum.at(peak, basins.ravel(), smooth.ravel().astype(np.float64))
    # saddles: the highest distance along the border of each pair of touching basins
    pairs = _pair_borders(basins, smooth, n, how="max")
    top = peak.copy()
    area = np.bincount(basins.ravel(), minlength=n + 1).astype(np.int64)

    def join(root, parent):
        # widest necks first: a basin joins its neighbour when the neck is not much narrower than the
        # grain, or when it is much smaller than its neighbour (a chamber, a broken end)
        changed = True
        while changed:
            changed = False
            for (a, b), saddle in sorted(pairs.items(), key=lambda item: -item[1]):
                ra, rb = root(a), root(b)
                if ra == rb:
                    continue
                small, large = min(area[ra], area[rb]), max(area[ra], area[rb])
                ratio = neck_ratio + (similar_bonus if small >= SIMILAR_PIECE_RATIO * large else 0.0)
                peak = min(top[ra], top[rb])
                if saddle >= ratio * peak or (small < min_piece_ratio * large and saddle >= SMALL_PIECE_NECK * peak):
                    top[ra] = max(top[ra], top[rb])
                    area[ra] += area[rb]
                    yield a, b
                    changed = True

    return _merge(basins, n, join)[1:-1, 1:-1]


def split_touching(labels: np.ndarray, neck_ratio: float = 0.5, min_area_px: int = 0,
                   dense: bool | None = None, frame: np.ndarray | None = None) -> np.ndarray:
    """Grain labels with every object that holds touching grains split into its grains.

    With the RGB ``frame`` the labels come from, an object made of a dark and a pale grain is first
    split by colour (:func:`split_by_colour`). Then only objects (or colour pieces) less convex than
    :data:`CONVEX_ENOUGH` are flooded; pieces smaller than ``min_area_px`` go back to the
    neighbouring piece they touch most (or are dropped if alone). Holes are filled last, each
    grain's own (a gap enclosed by several grains stays plate). In a densely packed frame
    (:data:`DENSE_COVERAGE`) necks up to :data:`DENSE_NECK_RATIO` are split; ``dense`` says so for a
    part of a frame (``None``: judged from ``labels``).

    Examples
    --------
    >>> import cv2
    >>> labels = np.zeros((60, 100), np.int32)
    >>> _ = cv2.circle(labels, (30, 30), 20, 1, -1); _ = cv2.circle(labels, (68, 30), 20, 1, -1)
    >>> int(split_touching(labels).max())
    2
    """
    from scipy import ndimage

    out = np.zeros_like(labels, dtype=np.int32)
    n = 0
    if dense is None:
        dense = labels.size > 0 and float(np.count_nonzero(labels)) / labels.size >= DENSE_COVERAGE
    split_kw = dict(neck_ratio=max(neck_ratio, DENSE_NECK_RATIO), min_piece_ratio=0.0) if dense else \
        dict(neck_ratio=neck_ratio)
    light, plate_light = _lightness(frame, labels)
    for index, sl in enumerate(ndimage.find_objects(labels), start=1):
        if sl is None:
            continue
        mask = labels[sl] == index
        colour = split_by_colour(mask, light[sl], plate_light, min_area_px) if light is not None else None
        parts = [mask] if colour is None else [colour == k for k in np.unique(colour[colour > 0])]
        for part in parts:
            pieces = _shape_pieces(part, split_kw, min_area_px)
            if pieces is None or pieces.max() <= 1:
                n += 1
                out[sl][part] = n
                continue
            pieces = _absorb_small(pieces, min_area_px)
            for k in range(1, int(pieces.max()) + 1):
                piece = pieces == k
                if piece.any():
                    n += 1
                    out[sl][piece] = n
    return fill_each(out)


def _shape_pieces(mask: np.ndarray, split_kw: dict, min_area_px: int) -> np.ndarray | None:
    """:func:`split_object` of ``mask`` when it is big and not convex enough, else None."""
    import cv2

    if mask.sum() < 2 * max(min_area_px, 16):
        return None
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    hull = cv2.contourArea(cv2.convexHull(np.concatenate(contours)))
    # convex enough with its own holes filled (a translucent grain showing the plate)
    whole = np.zeros(mask.shape, np.uint8)
    cv2.drawContours(whole, contours, -1, 1, thickness=cv2.FILLED)
    if hull > 0 and cv2.countNonZero(whole) / hull < CONVEX_ENOUGH:
        return split_object(mask, **split_kw)
    return None


def _lightness(frame: np.ndarray | None, labels: np.ndarray) -> tuple[np.ndarray | None, float]:
    """Lab lightness of ``frame`` (smoothed a little) and the plate's (median of the unlabelled pixels)."""
    if frame is None or frame.ndim != 3 or frame.shape[:2] != labels.shape or not (labels == 0).any():
        return None, 0.0
    from sedarchive.segmentation.background_model import smoothed_lab

    light = smoothed_lab(frame, 1.0)[..., 0]
    return light, float(np.median(light[labels == 0]))


def split_by_colour(mask: np.ndarray, light: np.ndarray, plate_light: float,
                    min_area_px: int = 0) -> np.ndarray | None:
    """Labels (int32, ``1..k``) of the dark and the pale grains of one object, or None if it is one colour.

    ``light`` is the lightness (Lab L) over the object's box and ``plate_light`` the plate's. Solid
    cores darker than :data:`DARK_FRACTION` of the plate and at least :data:`PALE_FRACTION` of it
    (opened by :data:`COLOUR_OPEN_PX`), :data:`MIN_LIGHT_GAP` apart, seed a watershed on the lightness
    gradient; the object is split only when its dark and its pale pieces each hold
    :data:`MIN_COLOUR_PIECE` of it (and ``min_area_px``). Pieces of one colour that touch stay apart
    here (the shape split judges them).

    Examples
    --------
    >>> light = np.full((40, 60), 60.0, np.float32); mask = np.zeros((40, 60), bool)
    >>> mask[10:30, 5:30] = True; mask[12:28, 30:55] = True          # one object, two grains
    >>> light[10:30, 5:30] = 15.0; light[12:28, 30:55] = 85.0          # a dark one and a pale one
    >>> int(split_by_colour(mask, light, 60.0).max())
    2
    >>> light[12:28, 30:55] = 15.0                                     # both dark: one colour
    >>> split_by_colour(mask, light, 60.0) is None
    True
    """
    import cv2
    from scipy import ndimage
    from skimage.segmentation import watershed

    if not plate_light > 0:
        return None
    area = int(np.count_nonzero(mask))
    need = max(float(min_area_px), MIN_COLOUR_PIECE * area)
    if area < 2 * need:
        return None
    light = np.asarray(light, np.float32)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (COLOUR_OPEN_PX, COLOUR_OPEN_PX))
    inner = cv2.erode(np.pad(mask, 1).astype(np.uint8), np.ones((3, 3), np.uint8))[1:-1, 1:-1].astype(bool)
    cores = []
    for part in (light < DARK_FRACTION * plate_light, light >= PALE_FRACTION * plate_light):
        core = cv2.morphologyEx((part & inner).astype(np.uint8), cv2.MORPH_OPEN, kernel)
        if int(core.sum()) < need / 3:
            return None
        cores.append(core.astype(bool))
    if float(np.median(light[cores[1]])) - float(np.median(light[cores[0]])) < MIN_LIGHT_GAP:
        return None
    labelled = [ndimage.label(core, structure=np.ones((3, 3))) for core in cores]
    markers = np.zeros(mask.shape, np.int32)
    kinds = [0]
    for kind, (lab, n) in enumerate(labelled, start=1):  # 1: dark, 2: pale
        sizes = np.bincount(lab.ravel(), minlength=n + 1)
        for k in range(1, n + 1):
            if sizes[k] >= need / 3:
                kinds.append(kind)
                markers[lab == k] = len(kinds) - 1
    kinds = np.asarray(kinds)
    if not ((kinds == 1).any() and (kinds == 2).any()):
        return None
    gradient = cv2.morphologyEx(light, cv2.MORPH_GRADIENT, np.ones((3, 3), np.uint8))
    basins = watershed(gradient, markers, mask=mask)
    sizes = np.bincount(basins.ravel(), minlength=len(kinds))
    if sizes[kinds == 1].sum() < need or sizes[kinds == 2].sum() < need:
        return None
    return _absorb_small(basins.astype(np.int32), int(min(need, max(min_area_px, 1))))


def _absorb_small(pieces: np.ndarray, min_area_px: int) -> np.ndarray:
    """Pieces below ``min_area_px`` merged into the neighbour they share most border with."""
    from scipy import ndimage

    sizes = np.bincount(pieces.ravel())
    for k in np.argsort(sizes):
        if k == 0 or sizes[k] == 0 or sizes[k] >= min_area_px:
            continue
        ring = ndimage.binary_dilation(pieces == k) & (pieces != k) & (pieces > 0)
        if ring.any():
            target = np.bincount(pieces[ring]).argmax()
            pieces[pieces == k] = target
            sizes[target] += sizes[k]
            sizes[k] = 0
    return pieces
