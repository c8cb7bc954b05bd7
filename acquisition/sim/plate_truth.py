"""Plate-level ground truth of a scan: every grain on the plate, and every appearance of it in a frame.

The per-frame truth (``<name>.truth.csv``, one row per object a perfect segmenter would find) says
what each frame shows; it cannot say how many grains the plate holds, because overlapping frames
show the same grain twice and frame edges cut grains. Two more tables, written beside it, can:

- ``<name>.grains.csv``: one row per grain of every plate scanned: ``plate, grain_id, kind, x_mm,
  y_mm, diameter_mm, in_scan`` (its centre lies inside the union of the frames of its plate: the
  grains a perfect count of the scanned area finds), ``n_appearances`` and ``seen_whole``;
- ``<name>.appearances.csv``: one row per (position, grain) where the grain shows in the frame:
  ``position, plate, grain_id, object_id`` (the truth row of the object holding its largest
  visible piece, -1 where that object is too small to count), its own visible box ``y0, x0, y1, x1`` (frame pixels, end
  exclusive), ``chopped`` (its footprint touches the frame edge) and ``area_px``.

The *plate truth* of a sample is the class mix of the grains ``in_scan``.

Examples
--------
>>> from acquisition.sim.plate import VirtualPlate
>>> plate = VirtualPlate.generate(seed=2, width_mm=6, height_mm=4)
>>> grains, appearances = scan_truth([plate], [(0, 2.0, 2.0), (0, 3.6, 2.0)], height=200, width=250,
...                                  pixel_size_um=10.0)
>>> bool((appearances.groupby("grain_id").position.nunique() > 1).any())  # the 0.9 mm strip shows twice
True
>>> bool(grains.loc[grains.in_scan, "n_appearances"].ge(1).all())
True
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from acquisition.errors import TruthError
from acquisition.sim.plate import VirtualPlate
from acquisition.sim.render import _mark, _placements

GRAINS_SUFFIX = ".grains.csv"
APPEARANCES_SUFFIX = ".appearances.csv"
GRAIN_COLUMNS = ("plate", "grain_id", "kind", "x_mm", "y_mm", "diameter_mm", "in_scan", "n_appearances",
                 "seen_whole")
APPEARANCE_COLUMNS = ("position", "plate", "grain_id", "object_id", "y0", "x0", "y1", "x1", "chopped", "area_px")


def frame_appearances(plate: VirtualPlate, x_mm: float, y_mm: float, *, height: int, width: int,
                      pixel_size_um: float, min_area_px: int = 16) -> pd.DataFrame:
    """Every grain visible in the frame centred at ``(x_mm, y_mm)``: its own box, chopped, object.

    ``object_id`` numbers objects exactly as :func:`~acquisition.sim.render.frame_truth` does for
    the same frame (8-connected footprints, objects under ``min_area_px`` left out and given -1).
    """
    x_mm, y_mm, pixel_size_um = float(x_mm), float(y_mm), float(pixel_size_um)
    px_mm = pixel_size_um / 1000.0
    ox, oy = x_mm - (width - 1) / 2 * px_mm, y_mm - (height - 1) / 2 * px_mm
    footprint = np.zeros((height, width), np.int32)
    for g, sprite, top, left in _placements(plate, ox, oy, height, width, pixel_size_um):
        _mark(footprint, sprite, top, left, g)
    n, labels, stats, _ = cv2.connectedComponentsWithStats((footprint > 0).astype(np.uint8), connectivity=8)
    object_of = np.full(n, -1, np.int64)
    kept = [obj for obj in range(1, n) if stats[obj, cv2.CC_STAT_AREA] >= min_area_px]
    object_of[kept] = np.arange(len(kept))
    rows = []
    ids = np.unique(footprint)
    for value in ids[ids > 0]:
        ys, xs = np.nonzero(footprint == value)
        y0, x0, y1, x1 = int(ys.min()), int(xs.min()), int(ys.max()) + 1, int(xs.max()) + 1
        rows.append({
            "position": -1, "plate": -1, "grain_id": int(value) - 1,
            # a grain cut by the edge may show as several pieces: it belongs to the object of its largest
            "object_id": int(object_of[np.bincount(labels[ys, xs]).argmax()]),
            "y0": y0, "x0": x0, "y1": y1, "x1": x1,
            "chopped": bool(y0 == 0 or x0 == 0 or y1 == height or x1 == width),
            "area_px": int(ys.size),
        })
    return pd.DataFrame(rows, columns=list(APPEARANCE_COLUMNS)).astype(
        {"position": int, "plate": int, "grain_id": int, "object_id": int, "y0": int, "x0": int, "y1": int,
         "x1": int, "chopped": bool, "area_px": int})


def scan_truth(plates: Sequence[VirtualPlate], frames: Sequence[tuple[int, float, float]], *, height: int,
               width: int, pixel_size_um: float, min_area_px: int = 16) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The plate truth of a scan: (grains of every plate, appearances per frame).

    Parameters
    ----------
    plates
        The virtual plates of the scan.
    frames
        ``(plate index, x_mm, y_mm)`` of each stored position, in position order.
    height, width, pixel_size_um
        Frame geometry.
    """
    tables = []
    for position, (p, x, y) in enumerate(frames):
        table = frame_appearances(plates[p], x, y, height=height, width=width, pixel_size_um=pixel_size_um,
                                  min_area_px=min_area_px)
        table["position"], table["plate"] = position, int(p)
        tables.append(table)
    appearances = (pd.concat(tables, ignore_index=True) if tables
                   else pd.DataFrame(columns=list(APPEARANCE_COLUMNS)))
    fw, fh = width * pixel_size_um / 1000.0, height * pixel_size_um / 1000.0
    grains = []
    for p, plate in enumerate(plates):
        centres = np.array([(x, y) for q, x, y in frames if q == p], float).reshape(-1, 2)
        # the frame spans (width - 1) pixel pitches between its outer pixel centres, plus half a pixel each side
        inside = ((np.abs(plate.x_mm[:, None] - centres[None, :, 0]) <= fw / 2)
                  & (np.abs(plate.y_mm[:, None] - centres[None, :, 1]) <= fh / 2)).any(axis=1)
        mine = appearances[appearances["plate"] == p]
        seen = mine.groupby("grain_id").size()
        whole = mine[~mine["chopped"].astype(bool)].groupby("grain_id").size()
        ids = np.arange(plate.n_grains)
        grains.append(pd.DataFrame({
            "plate": p, "grain_id": ids, "kind": [plate.kind_name(g) for g in ids],
            "x_mm": plate.x_mm, "y_mm": plate.y_mm, "diameter_mm": plate.diameter_mm, "in_scan": inside,
            "n_appearances": seen.reindex(ids, fill_value=0).to_numpy(int),
            "seen_whole": whole.reindex(ids, fill_value=0).to_numpy(int) > 0,
        }))
    grain_table = pd.concat(grains, ignore_index=True) if grains else pd.DataFrame(columns=list(GRAIN_COLUMNS))
    return grain_table, appearances


def plate_truth_paths(store_path: str | Path) -> tuple[Path, Path]:
    """``<name>.grains.csv`` and ``<name>.appearances.csv`` beside the store ``<name>.zarr``."""
    store_path = Path(store_path)
    stem = store_path.name.removesuffix(".zarr")
    return store_path.with_name(stem + GRAINS_SUFFIX), store_path.with_name(stem + APPEARANCES_SUFFIX)


def write_plate_truth(store_path: str | Path, grains: pd.DataFrame, appearances: pd.DataFrame) -> tuple[Path, Path]:
    """Write both tables beside the store (each atomically: a temporary file, then a rename)."""
    targets = plate_truth_paths(store_path)
    for table, columns, target in ((grains, GRAIN_COLUMNS, targets[0]), (appearances, APPEARANCE_COLUMNS, targets[1])):
        missing = [c for c in columns if c not in table.columns]
        if missing:
            raise TruthError(f"{target.name}: plate truth lacks columns {', '.join(missing)}")
        tmp = target.with_name(target.name + ".tmp")
        table.loc[:, list(columns)].to_csv(tmp, index=False)
        os.replace(tmp, target)
    return targets


def read_plate_truth(store_path: str | Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(grains, appearances) of a simulated sample, given its store path."""
    out = []
    for path, columns in zip(plate_truth_paths(store_path), (GRAIN_COLUMNS, APPEARANCE_COLUMNS)):
        if not path.exists():
            raise TruthError(f"no plate truth {path.name} beside {Path(store_path).name} (is it a simulated sample?)")
        table = pd.read_csv(path)
        missing = [c for c in columns if c not in table.columns]
        if missing:
            raise TruthError(f"{path}: missing columns {', '.join(missing)}")
        out.append(table)
    grains, appearances = out
    return (grains.astype({"in_scan": bool, "seen_whole": bool}),
            appearances.astype({"chopped": bool}))


def plate_fractions(grains: pd.DataFrame, kinds: Sequence[str]) -> dict[str, float]:
    """The plate truth: share of each kind among the grains in the scanned area.

    Examples
    --------
    >>> plate_fractions(pd.DataFrame({"kind": ["a", "b", "b", "a"], "in_scan": [True, True, True, False]}), ["a", "b"])
    {'a': 0.3333333333333333, 'b': 0.6666666666666666}
    """
    inside = grains.loc[grains["in_scan"].astype(bool), "kind"]
    n = max(len(inside), 1)
    return {k: float((inside == k).sum() / n) for k in kinds}
