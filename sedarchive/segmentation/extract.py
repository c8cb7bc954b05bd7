"""A stack in, its grains out: images of every focal layer and one row of measures per grain.

:func:`extract_grains` is the whole in-memory segmentation of one stack position; the Dask stage
runs it position by position and writes what it returns. :class:`GrainTable` holds the per-grain
variables under their store names (``bbox``, ``area_px``, ``chopped``, ...).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from sedarchive.segmentation.crops import crop_grains, plate_colour
from sedarchive.segmentation.grains import check_stack, find_grains
from sedarchive.segmentation.measures import is_clump, mean_colour, shape_of, sharpness
from sedarchive.segmentation.settings import SegmentSettings

#: Per-grain variables: store name -> (dims after ``particle``, dtype).
VARIABLES: dict[str, tuple[tuple[str, ...], str]] = {
    "position": ((), "int32"),
    "bbox": (("corner",), "int32"),
    "box_height_px": ((), "int32"),
    "box_width_px": ((), "int32"),
    "area_px": ((), "int32"),
    "chopped": ((), "bool"),
    "clump": ((), "bool"),
    "sharpness": (("layer",), "float32"),
    "sharpest_layer": ((), "int8"),
    "equivalent_diameter_px": ((), "float32"),
    "aspect_ratio": ((), "float32"),
    "solidity": ((), "float32"),
    "mean_rgb": (("channel",), "float32"),
}
#: Only when the sample knows its pixel size (``pixel_size_um`` attribute).
VARIABLES_UM: dict[str, tuple[tuple[str, ...], str]] = {
    "equivalent_diameter_um": ((), "float32"),
    "area_um2": ((), "float32"),
}


def _trailing(dims: tuple[str, ...], n_layers: int) -> tuple[int, ...]:
    return tuple({"corner": 4, "layer": n_layers, "channel": 3}[d] for d in dims)


@dataclass
class GrainTable:
    """Per-grain variables (store names) of some grains; every array has the grains along axis 0."""

    columns: dict[str, np.ndarray]

    def __len__(self) -> int:
        return len(self.columns["position"])

    @classmethod
    def empty(cls, n_layers: int, with_um: bool = False) -> GrainTable:
        spec = {**VARIABLES, **(VARIABLES_UM if with_um else {})}
        return cls({name: np.zeros((0, *_trailing(dims, n_layers)), dtype)
                    for name, (dims, dtype) in spec.items()})

    @classmethod
    def concat(cls, tables: Sequence[GrainTable], n_layers: int, with_um: bool = False) -> GrainTable:
        if not tables:
            return cls.empty(n_layers, with_um)
        return cls({name: np.concatenate([t.columns[name] for t in tables]) for name in tables[0].columns})

    @staticmethod
    def dims(name: str) -> tuple[str, ...]:
        return ("particle", *{**VARIABLES, **VARIABLES_UM}[name][0])


def extract_grains(stack: np.ndarray, settings: SegmentSettings | None = None, *, position: int = 0,
                   pixel_size_um: float | None = None, what: str = "stack",
                   plate_lab: np.ndarray | None = None) -> tuple[np.ndarray, GrainTable]:
    """Find, crop and measure the grains of one stack.

    Returns the grain images ``(grain, layer, crop_size, crop_size, 3)`` uint8 and their
    :class:`GrainTable` (``position`` filled with ``position``). Area and diameter in µm are added
    when ``pixel_size_um`` is given (and specks smaller than ``settings.min_diameter_um`` dropped).
    ``plate_lab`` is the sample's plate colour (Lab), estimated from the stack when ``None``.

    Examples
    --------
    >>> stack = np.zeros((2, 64, 64, 3), np.uint8); stack[...] = (40, 170, 60)
    >>> stack[:, 10:30, 10:30] = (200, 200, 190); stack[:, 40:64, 5:25] = (30, 30, 30)
    >>> images, table = extract_grains(stack, SegmentSettings(method="fast", min_area_px=10, crop_size=32))
    >>> images.shape, table.columns["bbox"].tolist(), table.columns["chopped"].tolist()
    ((2, 2, 32, 32, 3), [[10, 10, 30, 30], [40, 5, 64, 25]], [False, True])
    """
    settings = settings or SegmentSettings()
    stack = check_stack(stack, what)
    n_layers = len(stack)
    with_um = pixel_size_um is not None
    grains = find_grains(stack, settings, what=what, plate_lab=plate_lab)
    # specks below the least grain size go; a grain cut by the frame edge may show only a part of
    # itself (half the least size is kept, in the median layer: less is mostly the blur of a grain
    # outside the frame, which reaches in only in the defocused layers)
    least = settings.min_area_at(pixel_size_um)
    grains = [g for g in grains if (float(np.median(g.masks.sum(axis=(1, 2)))) >= least // 2 if g.chopped
                                    else int(g.masks.any(0).sum()) >= least)]
    if not grains:
        return np.zeros((0, n_layers, settings.crop_size, settings.crop_size, 3), np.uint8), \
            GrainTable.empty(n_layers, with_um)
    boxes = [g.box for g in grains]
    fill = (0, 0, 0)  # unused without padding: the plate's colour is worked out only for ``pad``
    if settings.pad:
        occupied = np.zeros(stack.shape[1:3], bool)
        for g in grains:
            y0, x0, y1, x1 = g.box
            occupied[y0:y1, x0:x1] |= g.masks.any(0)
        fill = plate_colour(stack[0], occupied)
    images = crop_grains(stack, boxes, settings.crop_size, pad=settings.pad, fill=fill)
    rows: dict[str, list] = {name: [] for name in VARIABLES}
    for g in grains:
        sharp = sharpness(stack, g.box)
        # Measure the grain in its sharpest layer among those where it was found.
        found = g.layers
        layer = max(found, key=lambda i: (sharp[i], -i))
        shape = shape_of(g.masks[layer], settings.clump_core_fraction, settings.clump_neck_ratio)
        y0, x0, y1, x1 = g.box
        rows["position"].append(position)
        rows["bbox"].append(g.box)
        rows["box_height_px"].append(y1 - y0)
        rows["box_width_px"].append(x1 - x0)
        rows["area_px"].append(shape.area_px)
        rows["chopped"].append(g.chopped)
        rows["clump"].append(is_clump(shape, min_solidity=settings.clump_solidity))
        rows["sharpness"].append(sharp)
        rows["sharpest_layer"].append(int(np.argmax(sharp)))
        rows["equivalent_diameter_px"].append(shape.equivalent_diameter_px)
        rows["aspect_ratio"].append(shape.aspect_ratio)
        rows["solidity"].append(shape.solidity)
        rows["mean_rgb"].append(mean_colour(stack[layer], g.box, g.masks[layer]))
    columns = {name: np.asarray(values, dtype=VARIABLES[name][1]) for name, values in rows.items()}
    if with_um:
        columns["equivalent_diameter_um"] = (columns["equivalent_diameter_px"] * pixel_size_um).astype(np.float32)
        columns["area_um2"] = (columns["area_px"] * pixel_size_um**2).astype(np.float32)
    return images, GrainTable(columns)
