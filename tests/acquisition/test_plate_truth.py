"""Plate-level ground truth: every grain on the plate, every appearance in a frame, class sizes."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from catalog import SampleKey, read_array
from acquisition.errors import TruthError
from acquisition.sim import (
    GRAIN_KINDS,
    VirtualPlate,
    plate_fractions,
    read_plate_truth,
    read_truth,
    scan_truth,
    simulate_sample,
    tile_positions,
)

FRAME = dict(height=256, width=320, pixel_size_um=8.0)


def test_size_distributions_differ_by_class_and_are_settable():
    plate = VirtualPlate.generate(seed=1, width_mm=20, height_mm=20, grains_per_mm2=1.5)
    median = {k: np.median(plate.diameter_mm[plate.kind == i]) for i, k in enumerate(GRAIN_KINDS)}
    assert median["foram_intact"] > median["quartz"] > median["dark"]
    small = VirtualPlate.generate(seed=1, width_mm=8, height_mm=8, diameter_mm={"quartz": (0.1, 0.11)},
                                  kind_fractions={"quartz": 1})
    assert small.diameter_mm.max() <= 0.11 and small.diameter_mm.min() >= 0.1
    with pytest.raises(ValueError, match="unknown grain kind"):
        VirtualPlate.generate(seed=1, diameter_mm={"mica": (0.1, 0.2)})
    with pytest.raises(ValueError, match="0 < low <= high"):
        VirtualPlate.generate(seed=1, diameter_mm={"dark": (0.3, 0.2)})


def test_overlapping_frames_show_the_same_grain_with_plate_consistent_boxes():
    plate = VirtualPlate.generate(seed=5, width_mm=8, height_mm=6, grains_per_mm2=2.0)
    centres = tile_positions(4, 2.56, 2.048, overlap=0.3)
    grains, appearances = scan_truth([plate], [(0, x, y) for x, y in centres], **FRAME)
    assert len(grains) == plate.n_grains
    repeated = appearances.groupby("grain_id").position.nunique()
    assert (repeated > 1).sum() >= 3  # the 30 % strips hold grains seen twice or more
    px = FRAME["pixel_size_um"] / 1000
    for gid, rows in appearances[~appearances.chopped].groupby("grain_id"):
        if len(rows) < 2:
            continue
        # a whole grain has the same plate box in every frame that shows it whole
        plate_x0 = [np.array(centres[p])[0] + (r.x0 - FRAME["width"] / 2) * px for p, r in zip(rows.position, rows.itertuples())]
        assert np.ptp(plate_x0) <= 1.01 * px
        assert len(set(zip(rows.x1 - rows.x0, rows.y1 - rows.y0))) == 1
    # every grain whose centre lies in the scan shows somewhere, most of them whole somewhere
    inside = grains[grains.in_scan]
    assert inside.n_appearances.ge(1).all()
    assert inside.seen_whole.mean() > 0.8
    assert not grains[~grains.in_scan & (grains.n_appearances == 0)].empty


def test_simulate_sample_writes_plate_truth_consistent_with_frame_truth(archive):
    path = simulate_sample(archive, SampleKey("SIM-P", 0, 2), n_positions=4, seed=9, overlap=0.3,
                           kind_fractions={"quartz": 0.5, "foram_intact": 0.5}, **FRAME)
    grains, appearances = read_plate_truth(path)
    truth = read_truth(path)
    assert set(grains.kind) == {"quartz", "foram_intact"}
    # every object of the frame truth is made of the appearances that point to it
    for row in truth.itertuples():
        parts = appearances[(appearances.position == row.position) & (appearances.object_id == row.object_id)]
        assert row.grain_id in set(parts.grain_id)
        assert 1 <= len(parts) <= row.n_grains
        assert parts.y0.min() <= row.y0 and parts.x1.max() >= row.x1 and parts.area_px.sum() >= row.area_px
    assert set(appearances.position) == set(range(4))
    assert np.allclose(read_array(path, "stage_xy_mm"), tile_positions(4, 2.56, 2.048, overlap=0.3))
    fractions = plate_fractions(grains, GRAIN_KINDS)
    assert abs(sum(fractions.values()) - 1) < 1e-9 and fractions["dark"] == 0


def test_plate_truth_missing_or_malformed_is_a_clear_error(archive, tmp_path):
    with pytest.raises(TruthError, match="no plate truth"):
        read_plate_truth(tmp_path / "nothing.zarr")
    path = simulate_sample(archive, SampleKey("SIM-Q", 0, 2), n_positions=1, seed=2, **FRAME)
    grains_csv = path.with_name(path.name.removesuffix(".zarr") + ".grains.csv")
    pd.read_csv(grains_csv).drop(columns="in_scan").to_csv(grains_csv, index=False)
    with pytest.raises(TruthError, match="missing columns in_scan"):
        read_plate_truth(path)
