"""Simulated samples: a virtual plate scanned straight into the archive, with its ground truth.

:func:`simulate_sample` is the fast synthetic-data factory of tests, benchmarks and the demo: it
renders each stage position with :func:`~acquisition.sim.render.render_stack` and writes it through
``catalog`` exactly as a scan would (no serial port). The ground truth goes beside the store:
``samples/<core>/<name>.truth.csv`` (objects per frame) and the plate truth
(:mod:`acquisition.sim.plate_truth`: ``<name>.grains.csv``, every grain on the plate, and
``<name>.appearances.csv``, every appearance of a grain in a frame).
"""
from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

import catalog
from catalog import Archive, SampleKey
from acquisition.errors import TruthError
from acquisition.sim.grains import GRAIN_KINDS
from acquisition.sim.plate import VirtualPlate
from acquisition.sim.plate_truth import scan_truth, write_plate_truth
from acquisition.sim.render import DEFAULT_FOCAL_OFFSETS_UM, TRUTH_COLUMNS, render_stack

TRUTH_SUFFIX = ".truth.csv"


def default_focal_offsets(n_layers: int) -> tuple[float, ...]:
    """The six default offsets (µm), or as many evenly spread over the same range.

    Examples
    --------
    >>> default_focal_offsets(3)
    (-50.0, 0.0, 50.0)
    """
    if n_layers == len(DEFAULT_FOCAL_OFFSETS_UM):
        return DEFAULT_FOCAL_OFFSETS_UM
    lo, hi = DEFAULT_FOCAL_OFFSETS_UM[0], DEFAULT_FOCAL_OFFSETS_UM[-1]
    return tuple(float(v) for v in np.linspace(lo, hi, n_layers)) if n_layers > 1 else (0.0,)


def tile_positions(n_positions: int, frame_w_mm: float, frame_h_mm: float, overlap: float = 0.0,
                   margin_mm: float = 0.5) -> list[tuple[float, float]]:
    """Frame centres (mm) of a row-major grid of ``n_positions`` frames starting ``margin_mm`` in.

    Examples
    --------
    >>> tile_positions(3, 2.0, 1.0, margin_mm=0.0)
    [(1.0, 0.5), (3.0, 0.5), (1.0, 1.5)]
    """
    cols = math.ceil(math.sqrt(n_positions))
    step_x, step_y = frame_w_mm * (1 - overlap), frame_h_mm * (1 - overlap)
    return [
        (margin_mm + frame_w_mm / 2 + (i % cols) * step_x, margin_mm + frame_h_mm / 2 + (i // cols) * step_y)
        for i in range(n_positions)
    ]


def truth_path(store_path: str | Path) -> Path:
    """``<name>.truth.csv`` beside the store ``<name>.zarr``."""
    store_path = Path(store_path)
    return store_path.with_name(store_path.name.removesuffix(".zarr") + TRUTH_SUFFIX)


def simulate_sample(
    archive: Archive | str | Path,
    key: SampleKey | str,
    *,
    n_positions: int = 4,
    height: int = 256,
    width: int = 320,
    n_layers: int = 6,
    seed: int = 0,
    kind_fractions: Mapping[str, float] | None = None,
    pixel_size_um: float = 8.0,
    grains_per_mm2: float = 1.8,
    clump_fraction: float = 0.1,
    overlap: float = 0.0,
    focal_offsets_um: Sequence[float] | None = None,
    plate: VirtualPlate | None = None,
    diameter_mm: Mapping[str, tuple[float, float]] | None = None,
) -> Path:
    """Scan a virtual plate into a new sample of ``archive`` (status ``acquired``); return its store path.

    With the defaults a 256x320 frame holds about 5-15 grains, 15-60 px across. Positions form a
    row-major grid of frames (``overlap`` is the shared fraction of neighbouring frames); the plate
    is generated from ``seed`` to fit the grid unless one is given; ``diameter_mm`` sets the size
    range of each kind (:meth:`VirtualPlate.generate`).

    Examples
    --------
    >>> import tempfile
    >>> archive = Archive.create(tempfile.mkdtemp())
    >>> path = simulate_sample(archive, SampleKey("SIM-1", 10, 12), n_positions=2, seed=1)
    >>> truth = read_truth(path)
    >>> sorted(set(truth.position))
    [0, 1]
    """
    if not isinstance(archive, Archive):
        archive = Archive.create(archive)
    if isinstance(key, str):
        key = SampleKey.from_name(key)
    if n_positions < 1 or n_layers < 1:
        raise ValueError("a simulated sample needs at least one position and one layer")
    offsets = tuple(float(v) for v in (focal_offsets_um if focal_offsets_um is not None else default_focal_offsets(n_layers)))
    if len(offsets) != n_layers:
        raise ValueError(f"{len(offsets)} focal offsets for {n_layers} layers")
    frame_w, frame_h = width * pixel_size_um / 1000, height * pixel_size_um / 1000
    centres = tile_positions(n_positions, frame_w, frame_h, overlap)
    if plate is None:
        plate = VirtualPlate.generate(
            seed=seed,
            width_mm=max(x for x, _ in centres) + frame_w / 2 + 0.5,
            height_mm=max(y for _, y in centres) + frame_h / 2 + 0.5,
            grains_per_mm2=grains_per_mm2,
            kind_fractions=kind_fractions,
            clump_fraction=clump_fraction,
            diameter_mm=diameter_mm,
        )
    settings = {
        "microscope": "simulated", "seed": int(seed), "plate_seed": plate.seed,
        "plate_width_mm": plate.width_mm, "plate_height_mm": plate.height_mm, "n_grains_on_plate": plate.n_grains, "pixel_size_um": float(pixel_size_um),
        "grains_per_mm2": float(grains_per_mm2), "clump_fraction": float(clump_fraction), "overlap": float(overlap),
        "kind_fractions": dict(kind_fractions) if kind_fractions else {k: 1 / len(GRAIN_KINDS) for k in GRAIN_KINDS},
    }
    path = archive.create_sample(key, n_positions, n_layers, height, width, focal_offsets_um=offsets,
                                 pixel_size_um=pixel_size_um)
    tables = []
    for index, (x, y) in enumerate(centres):
        stack, truth = render_stack(plate, x, y, focal_offsets_um=offsets, height=height, width=width,
                                    pixel_size_um=pixel_size_um)
        catalog.write_position(path, index, stack, (x, y))
        truth["position"] = index
        tables.append(truth)
    write_truth(path, pd.concat(tables, ignore_index=True))
    grains, appearances = scan_truth([plate], [(0, x, y) for x, y in centres], height=height, width=width,
                                     pixel_size_um=pixel_size_um)
    write_plate_truth(path, grains, appearances)
    catalog.record_stage(path, "acquire", settings)
    archive.set_status(key, "acquired")
    return path


def write_truth(store_path: str | Path, truth: pd.DataFrame) -> Path:
    """Write the ground truth beside the store (atomically: a temporary file, then a rename)."""
    target = truth_path(store_path)
    missing = [c for c in TRUTH_COLUMNS if c not in truth.columns]
    if missing:
        raise TruthError(f"{target.name}: truth lacks columns {', '.join(missing)}")
    tmp = target.with_name(target.name + ".tmp")
    truth.loc[:, list(TRUTH_COLUMNS)].to_csv(tmp, index=False)
    os.replace(tmp, target)
    return target


def read_truth(store_path: str | Path) -> pd.DataFrame:
    """The ground truth of a simulated sample, given its store path (columns ``TRUTH_COLUMNS``)."""
    path = truth_path(store_path)
    if not path.exists():
        raise TruthError(f"no ground truth {path.name} beside {Path(store_path).name} (is it a simulated sample?)")
    truth = pd.read_csv(path)
    missing = [c for c in TRUTH_COLUMNS[:10] if c not in truth.columns]
    if missing:
        raise TruthError(f"{path}: missing columns {', '.join(missing)}")
    return truth.astype({"chopped": bool, "clump": bool})
