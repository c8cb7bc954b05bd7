"""Grains of a stack: each focal layer segmented, the objects matched across layers, the widest box kept.

A grain seen in several focal layers gives slightly different objects in each (sharp in one,
blurred in another). Objects of different layers that overlap belong to the same grain: the grains
of a stack are the connected components of the union of the layers' grain masks, split again where
several layers agree that blur has bridged separate grains. As in the paper,
the grain's box is the widest of its per-layer boxes (non-rotated, ``y0, x0, y1, x1``, end
exclusive), so that one box crops the grain from every layer.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sedarchive.errors import InputError
from sedarchive.segmentation.frame import segment_frame
from sedarchive.segmentation.settings import SegmentSettings


@dataclass(frozen=True, eq=False)
class Grain:
    """One grain of a stack.

    ``box`` is the widest per-layer box, found in layer ``box_layer``; ``masks`` is ``(layer, h, w)``
    bool over that box: the grain's pixels in each focal layer (empty where a layer missed it).
    ``chopped`` is true when the grain touches the frame edge in some layer.
    """

    box: tuple[int, int, int, int]
    box_layer: int
    chopped: bool
    masks: np.ndarray

    @property
    def layers(self) -> tuple[int, ...]:
        """Focal layers in which the grain was found."""
        return tuple(int(i) for i in np.flatnonzero(self.masks.reshape(len(self.masks), -1).any(1)))


def check_stack(stack: np.ndarray, what: str = "stack") -> np.ndarray:
    """Return ``stack`` if it is ``(layer, y, x, 3)`` uint8 with at least one layer, else raise :class:`InputError`."""
    stack = np.asarray(stack)
    if stack.ndim != 4 or stack.shape[-1] != 3 or stack.dtype != np.uint8 or stack.shape[0] < 1:
        raise InputError(f"{what}: expected a stack of RGB frames (layer, y, x, 3) uint8, got {stack.shape} {stack.dtype}")
    return stack


def segment_stack(stack: np.ndarray, settings: SegmentSettings | None = None, *, method: str | None = None,
                  what: str = "stack", plate_lab: np.ndarray | None = None,
                  min_area_px: int | None = None) -> np.ndarray:
    """Grain labels of every focal layer: ``(layer, y, x)`` int32.

    ``plate_lab`` is the sample's plate colour (Lab); when ``None`` it is estimated from the stack's
    middle layer by the settings' ``background`` rule (unless that is ``paper``). The fast method
    learns the plate's local colour and its spread (the grain level) once, on the middle layer: the
    plate and its light are the same in every focal layer.
    """
    from sedarchive.segmentation.background import check_frame
    from sedarchive.segmentation.background_model import check_blank, parse_background, plate_colour

    settings = settings or SegmentSettings()
    stack = check_stack(stack, what)
    background = parse_background(settings.background)
    middle_what = f"{what} layer {len(stack) // 2}"
    if (method or settings.method) == "boundary":  # no plate colour; the grain scale once per stack
        from sedarchive.segmentation.boundary import estimate_grain_px, load_weights

        grain_px = settings.grain_px
        if grain_px is None:
            if not settings.weights:
                raise InputError(f"{what}: the boundary method needs weights (segment setting `weights`)")
            grain_px = estimate_grain_px(load_weights(settings.weights), check_frame(stack[len(stack) // 2], middle_what))
        return np.stack([segment_frame(frame, method, settings, what=f"{what} layer {i}", min_area_px=min_area_px,
                                       grain_px=grain_px) for i, frame in enumerate(stack)])
    if plate_lab is None and background != "paper":
        middle = check_frame(stack[len(stack) // 2], middle_what)
        check_blank(middle, middle_what)
        plate_lab = plate_colour([middle], background)
    like = None
    if (method or settings.method) == "fast" and background != "paper":
        from sedarchive.segmentation.regions import plate_model, spread_level

        middle = check_frame(stack[len(stack) // 2], middle_what)
        like = plate_model(middle, plate_lab, min_plate_fraction=settings.min_plate_fraction, what=middle_what)
        if settings.min_delta_e is None:
            like.level = spread_level(middle, like)
    return np.stack([segment_frame(frame, method, settings, what=f"{what} layer {i}", plate_lab=plate_lab,
                                   min_area_px=min_area_px, like=like) for i, frame in enumerate(stack)])


def match_layers(labels: np.ndarray) -> list[Grain]:
    """Grains from per-layer labels ``(layer, y, x)``: objects joined across layers by overlap.

    Objects of different layers that overlap are one grain, unless the layers disagree: defocus
    blur can bridge the gap between two grains lying close, but never parts one grain in two. So
    where at least two layers see ``k >= 2`` separate objects in a group that other layers join,
    the group is split into ``k`` grains, every pixel going to the nearest of those objects.

    Examples
    --------
    >>> labels = np.zeros((2, 20, 30), np.int32)
    >>> labels[0, 5:10, 5:10] = 1; labels[1, 4:11, 6:12] = 1   # one grain, wider in layer 1
    >>> labels[1, 12:20, 20:25] = 2                             # a second grain, cut by the edge
    >>> [(g.box, g.box_layer, g.chopped) for g in match_layers(labels)]
    [((4, 6, 11, 12), 1, False), ((12, 20, 20, 25), 1, True)]
    """
    import cv2
    from scipy import ndimage

    labels = np.asarray(labels)
    frame_shape = labels.shape[1:]
    found = labels > 0
    n_groups, groups = cv2.connectedComponents(found.any(0).view(np.uint8), connectivity=8, ltype=cv2.CV_32S)
    n_groups -= 1
    if n_groups == 0:
        return []
    counts = _objects_per_group(labels, groups, n_groups)
    grains = []
    for g, (ys, xs) in enumerate(ndimage.find_objects(groups, max_label=n_groups), start=1):
        layer_masks = found[:, ys, xs] & (groups[ys, xs] == g)
        for masks in _split_bridged(labels[:, ys, xs], layer_masks, counts[:, g].tolist()):
            grains.append(_grain(masks, (ys.start, xs.start), frame_shape))
    # Raster order of the boxes: the same grains always come out in the same order.
    grains.sort(key=lambda grain: (grain.box[0], grain.box[1], grain.box[2], grain.box[3]))
    return grains


def _objects_per_group(labels: np.ndarray, groups: np.ndarray, n_groups: int) -> np.ndarray:
    """``(layer, group)``: how many objects of each layer lie in each group (one count per frame,
    not one ``np.unique`` per group and layer)."""
    out = np.zeros((len(labels), n_groups + 1), np.int64)
    flat_groups = groups.ravel()
    for i, layer in enumerate(labels):
        flat = layer.ravel()
        inside = np.flatnonzero(flat)
        if not inside.size:
            continue
        width = int(flat[inside].max()) + 1
        keys = flat_groups[inside].astype(np.int64) * width + flat[inside]
        if (n_groups + 1) * width <= 1 << 22:
            pairs = np.flatnonzero(np.bincount(keys, minlength=(n_groups + 1) * width))
        else:  # very many objects: a table of every group and label would be too big
            pairs = np.unique(keys)
        out[i] = np.bincount(pairs // width, minlength=n_groups + 1)
    return out


def _split_bridged(labels: np.ndarray, masks: np.ndarray, counts: list[int] | None = None) -> list[np.ndarray]:
    """The group's per-layer masks ``(layer, h, w)``, split where two or more layers see it in pieces.
    ``counts``: the objects of each layer in the group, when known."""
    from scipy import ndimage

    if counts is None:
        counts = [len(np.unique(labels[i][masks[i]])) for i in range(len(masks))]
    k = sorted(counts)[-2] if len(counts) >= 2 else counts[0]
    if k <= 1:
        return [masks]
    seed_layer = counts.index(k)
    seeds = np.where(masks[seed_layer], labels[seed_layer], 0)
    ids = np.unique(seeds[seeds > 0])
    _, (iy, ix) = ndimage.distance_transform_edt(seeds == 0, return_indices=True)
    nearest = seeds[iy, ix]
    return [masks & (nearest == i) for i in ids]


def _grain(masks: np.ndarray, origin: tuple[int, int], frame_shape: tuple[int, int]) -> Grain:
    """A grain from its per-layer masks over a region at ``origin`` of the frame: widest box, chopped."""
    best, best_area = None, -1
    for i, mask in enumerate(masks):
        rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
        if rows.size:
            box = (rows[0], cols[0], rows[-1] + 1, cols[-1] + 1)
            area = (box[2] - box[0]) * (box[3] - box[1])
            if area > best_area:
                best, best_area = (i, box), area
    layer, (y0, x0, y1, x1) = best
    union = masks.any(0)
    rows, cols = np.flatnonzero(union.any(1)), np.flatnonzero(union.any(0))
    oy, ox = origin
    chopped = oy + rows[0] == 0 or ox + cols[0] == 0 or oy + rows[-1] + 1 == frame_shape[0] or \
        ox + cols[-1] + 1 == frame_shape[1]
    box = (int(oy + y0), int(ox + x0), int(oy + y1), int(ox + x1))
    return Grain(box, layer, bool(chopped), np.ascontiguousarray(masks[:, y0:y1, x0:x1]))


def find_grains(stack: np.ndarray, settings: SegmentSettings | None = None, *, method: str | None = None,
                what: str = "stack", plate_lab: np.ndarray | None = None,
                min_area_px: int | None = None) -> list[Grain]:
    """Segment every focal layer of ``stack`` and match the objects into grains (widest boxes).

    Examples
    --------
    >>> stack = np.zeros((2, 64, 64, 3), np.uint8); stack[...] = (40, 170, 60)
    >>> stack[0, 10:30, 10:30] = (200, 200, 190); stack[1, 9:31, 10:30] = (200, 200, 190)
    >>> [g.box for g in find_grains(stack, SegmentSettings(method="fast", min_area_px=10))]
    [(9, 10, 31, 30)]
    """
    return match_layers(segment_stack(stack, settings, method=method, what=what, plate_lab=plate_lab,
                                      min_area_px=min_area_px))
