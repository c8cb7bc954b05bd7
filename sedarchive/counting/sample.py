"""Count the grains of one sample store on its plate: repeats marked, whole grains weighted.

I/O and wiring only: reads ``position``, ``bbox``, ``chopped``, ``clump``, ``sharpness`` and
``stage_xy_mm`` through ``catalog``, calls the kernels of this package, and writes two per-grain
variables back into the store, so that anyone can see what was counted:

- ``duplicate_of (particle)`` int: -1 for a grain's kept view, else the index of the kept view of
  the same grain in a neighbouring frame;
- ``count_weight (particle)`` float: the grain's weight in the corrected counts (0 for repeats and
  chopped views; ``1 / P(seen whole)`` otherwise).

Grains flagged ``clump`` keep their weight: the flag is a shape hint that mostly fires on single
irregular grains (broken foraminifera above all), so leaving them out biases the class mix; clumps
are left to the expert, who excludes the clusters they form (``exclude_cluster(..., "clump")``), and
the class counts add the grains hidden in the clumps still counted (:mod:`~sedarchive.counting.clumps`).
``count_sample(..., exclude_clumps=True)`` leaves them out instead.

The store attribute ``counting`` records how (``mode``: ``plate`` or ``per frame``, and ``note``).
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from catalog import create_variables, read_array, read_attrs, update_attrs, write_region
from catalog.store import array_names, array_shape
from sedarchive.counting.edge_correction import count_weights, whole_view_probability
from sedarchive.counting.frames import FrameLayout, frame_layout, per_frame_layout
from sedarchive.counting.repeats import join_appearances


class CountingWarning(UserWarning):
    """A sample is counted per frame (its stage positions are missing, repeated or out of order)."""


@dataclass
class SampleCount:
    """Per found grain: ``duplicate_of`` and ``weight``; and how the sample was counted."""

    duplicate_of: np.ndarray
    weight: np.ndarray
    mode: str
    note: str

    @property
    def n_repeats(self) -> int:
        return int((self.duplicate_of >= 0).sum())


def plate_of_positions(attrs: dict[str, Any], n_positions: int) -> np.ndarray | None:
    """Plate of each position where the store records it (``plate_of_position``), else None (one plate)."""
    plates = attrs.get("plate_of_position")
    if plates is None or len(plates) != n_positions:
        return None
    return np.asarray(plates, np.int64)


def layout_of(path: str | Path) -> FrameLayout:
    """The frames of a store placed on the plate (or per frame, with the reason in ``note``)."""
    attrs = read_attrs(path)
    names = array_names(path)
    shape = _stack_shape(path)
    n_positions, height, width = shape[0], shape[2], shape[3]
    if "stage_xy_mm" not in names:
        return per_frame_layout(n_positions, height, width, "no stage positions: counted per frame")
    xy = np.asarray(read_array(path, "stage_xy_mm"), float)
    return frame_layout(xy, attrs.get("pixel_size_um"), height, width, plate=plate_of_positions(attrs, n_positions))


def count_sample(path: str | Path, *, write: bool = True, warn: bool = True, exclude_clumps: bool = False) -> SampleCount:
    """Join repeats and weight whole grains of one store; write ``duplicate_of`` and ``count_weight``.

    A store counted per frame gets one :class:`CountingWarning` naming the sample and the reason.
    """
    names = array_names(path)
    n = next((_shape(path, v)[0] for v in ("position", "bbox", "cluster", "chopped") if v in names), 0)
    chopped = np.asarray(read_array(path, "chopped"), bool) if "chopped" in names and n else np.zeros(n, bool)
    clump = np.asarray(read_array(path, "clump"), bool) if "clump" in names and n else np.zeros(n, bool)
    if n and not {"position", "bbox"} <= set(names):
        # grains without frame boxes (e.g. written by another tool): each counted as found, unweighted
        note = "grains have no position or box: counted as found, without edge correction"
        if warn:
            warnings.warn(f"{Path(path).name.removesuffix('.zarr')}: {note}", CountingWarning, stacklevel=2)
        counted = ~chopped & ~clump if exclude_clumps else ~chopped
        return SampleCount(np.full(n, -1, np.int64), counted.astype(float), "per frame", note)
    layout = layout_of(path)
    if warn and layout.note:
        warnings.warn(f"{Path(path).name.removesuffix('.zarr')}: {layout.note}", CountingWarning, stacklevel=2)
    if n == 0:
        return SampleCount(np.empty(0, np.int64), np.empty(0), layout.mode, layout.note)
    position = np.asarray(read_array(path, "position"), np.int64)
    bbox = np.asarray(read_array(path, "bbox"), np.int64).reshape(n, 4)
    sharp = np.asarray(read_array(path, "sharpness"), float).reshape(n, -1) if "sharpness" in names else None
    duplicate_of = join_appearances(position, bbox, layout, chopped=chopped, sharpness=sharp)
    p = whole_view_probability(bbox[:, 3] - bbox[:, 1], bbox[:, 2] - bbox[:, 0], layout)
    weight = count_weights(chopped, duplicate_of, p, excluded=clump if exclude_clumps else None)
    if write:
        _write(path, duplicate_of, weight, layout)
    return SampleCount(duplicate_of, weight, layout.mode, layout.note)


def _write(path: str | Path, duplicate_of: np.ndarray, weight: np.ndarray, layout: FrameLayout) -> None:
    names = array_names(path)
    if "duplicate_of" in names and "count_weight" in names:
        old_dup, old_w = read_array(path, "duplicate_of"), read_array(path, "count_weight")
        if old_dup.shape == duplicate_of.shape and np.array_equal(old_dup, duplicate_of) and np.allclose(old_w, weight):
            return
    n = len(duplicate_of)
    create_variables(path, {"duplicate_of": (("particle",), (n,), np.int64, (max(n, 1),)),
                            "count_weight": (("particle",), (n,), np.float32, (max(n, 1),))},
                     fill_values={"duplicate_of": -1, "count_weight": 0.0})
    write_region(path, "duplicate_of", 0, duplicate_of)
    write_region(path, "count_weight", 0, weight.astype(np.float32))
    update_attrs(path, counting={"mode": layout.mode, "note": layout.note})


def _shape(path: str | Path, name: str) -> tuple[int, ...]:
    """Shape of one array of the store (reads metadata only)."""
    return tuple(int(v) for v in array_shape(path, name))


def _stack_shape(path: str | Path) -> tuple[int, ...]:
    """(position, layer, y, x, channel) of ``stacks``."""
    return _shape(path, "stacks")
