"""The simulated microscope: a virtual plate of grains, its optics, and simulated samples.

This is sedarchive's one synthetic-data factory (tests, benchmarks, the demo), and the simulated
camera of a scan renders through it too.

Examples
--------
>>> plate = VirtualPlate.generate(seed=0, width_mm=4, height_mm=4)
>>> stack, truth = render_stack(plate, 2.0, 2.0, height=256, width=320, pixel_size_um=8.0)
>>> stack.shape, stack.dtype.name
((6, 256, 320, 3), 'uint8')
>>> set(truth.kind) <= set(GRAIN_KINDS)
True
"""
from __future__ import annotations

from acquisition.sim.grains import DIAMETER_MM, GRAIN_KINDS, Sprite, draw_grain
from acquisition.sim.plate import VirtualPlate
from acquisition.sim.plate_truth import plate_fractions, read_plate_truth, scan_truth, write_plate_truth
from acquisition.sim.render import DEFAULT_FOCAL_OFFSETS_UM, PLATE_GREEN, TRUTH_COLUMNS, frame_truth, render_stack, truth_at
from acquisition.sim.sample import (
    default_focal_offsets,
    read_truth,
    simulate_sample,
    tile_positions,
    truth_path,
    write_truth,
)

__all__ = [
    "DEFAULT_FOCAL_OFFSETS_UM",
    "DIAMETER_MM",
    "GRAIN_KINDS",
    "PLATE_GREEN",
    "Sprite",
    "TRUTH_COLUMNS",
    "VirtualPlate",
    "default_focal_offsets",
    "draw_grain",
    "frame_truth",
    "plate_fractions",
    "read_plate_truth",
    "read_truth",
    "render_stack",
    "scan_truth",
    "simulate_sample",
    "tile_positions",
    "truth_at",
    "truth_path",
    "write_plate_truth",
    "write_truth",
]
