"""Counting kernels against known answers: repeats over overlaps, edge weights, position checks."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from acquisition.sim import VirtualPlate, scan_truth, tile_positions, truth_at
from sedarchive.counting import count_weights, frame_layout, join_appearances, whole_view_probability
from sedarchive.counting.class_estimates import corrected_estimates
from sedarchive.counting.frames import per_frame_layout

FRAME = dict(height=256, width=320, pixel_size_um=8.0)
FW, FH = 2.56, 2.048


def perfect_segmentation(plate: VirtualPlate, centres: list[tuple[float, float]]) -> pd.DataFrame:
    """What a perfect segmenter finds in each frame (the simulator's per-frame truth)."""
    tables = []
    for i, (x, y) in enumerate(centres):
        t = truth_at(plate, x, y, **FRAME)
        t["position"] = i
        tables.append(t)
    return pd.concat(tables, ignore_index=True)


def counted(found: pd.DataFrame, centres, *, per_frame: bool = False):
    xy = np.array(centres)
    layout = (per_frame_layout(len(xy), FRAME["height"], FRAME["width"], "test") if per_frame
              else frame_layout(xy, FRAME["pixel_size_um"], FRAME["height"], FRAME["width"]))
    bbox = found[["y0", "x0", "y1", "x1"]].to_numpy()
    dup = join_appearances(found.position.to_numpy(), bbox, layout, chopped=found.chopped.to_numpy(),
                           sharpness=found.area_px.to_numpy(float))
    p = whole_view_probability(bbox[:, 3] - bbox[:, 1], bbox[:, 2] - bbox[:, 0], layout)
    return dup, count_weights(found.chopped.to_numpy(), dup, p, excluded=found.clump.to_numpy()), p


@pytest.fixture(scope="module")
def two_sizes():
    """Two kinds of very different sizes at 50/50 on the plate, apart (no clumps)."""
    sizes = {"dark": (0.10, 0.12), "foram_intact": (0.62, 0.70)}
    centres = tile_positions(36, FW, FH, overlap=0.0)
    plate = VirtualPlate.generate(seed=4, width_mm=6 * FW + 1, height_mm=6 * FH + 1, grains_per_mm2=2.5,
                                  kind_fractions={"dark": 0.5, "foram_intact": 0.5}, clump_fraction=0.0,
                                  diameter_mm=sizes)
    return plate, centres


def test_edge_weights_recover_the_plate_fraction_of_two_very_different_sizes(two_sizes):
    plate, centres = two_sizes
    found = perfect_segmentation(plate, centres)
    grains, _ = scan_truth([plate], [(0, x, y) for x, y in centres], **FRAME)
    inside = grains[grains.in_scan]
    truth = float((inside.kind == "foram_intact").mean())
    assert 0.38 < truth < 0.55 and len(inside) > 400  # crowding turns some large grains away
    dup, weight, _ = counted(found, centres)
    big = (found.kind == "foram_intact").to_numpy()
    plain = ~found.chopped.to_numpy() & ~found.clump.to_numpy()
    raw = big[plain].mean()
    corrected = weight[big].sum() / weight.sum()
    assert raw < truth - 0.06  # large grains are cut by frame edges far more often
    assert abs(corrected - truth) < 0.04
    # the corrected total estimates the number of grains in the scanned area
    assert abs(weight.sum() / len(inside) - 1) < 0.06
    assert (dup == -1).all()  # no overlap: nothing to join


def test_without_overlap_counts_equal_per_frame_counts(two_sizes):
    plate, centres = two_sizes
    found = perfect_segmentation(plate, centres[:9])
    dup, weight, p = counted(found, centres[:9])
    dup_f, weight_f, p_f = counted(found, centres[:9], per_frame=True)
    assert (dup == -1).all() and (dup_f == -1).all()
    plain = ~found.chopped.to_numpy() & ~found.clump.to_numpy()
    assert ((weight > 0) == plain).all()
    np.testing.assert_allclose(weight, weight_f)
    np.testing.assert_allclose(p, p_f)


def test_thirty_percent_overlap_counts_no_grain_twice():
    centres = tile_positions(16, FW, FH, overlap=0.3)
    plate = VirtualPlate.generate(seed=8, width_mm=8, height_mm=7, grains_per_mm2=2.0, clump_fraction=0.0)
    found = perfect_segmentation(plate, centres)
    dup, weight, p = counted(found, centres)
    kept = found[(dup < 0) & ~found.chopped.to_numpy() & ~found.clump.to_numpy()]
    seen_twice = found[~found.chopped].groupby("grain_id").size()
    assert (seen_twice > 1).sum() > 20  # the overlaps hold many repeats
    assert kept.grain_id.is_unique  # ... and each grain is counted once
    assert (dup >= 0).sum() >= (seen_twice - 1).clip(lower=0).sum()
    # every repeat points at a view of the same grain, and the kept view is whole where one is
    same = found.grain_id.to_numpy()
    assert (same[dup >= 0] == same[dup[dup >= 0]]).all()
    whole_somewhere = set(found.loc[~found.chopped, "grain_id"])
    kept_ids = set(found.loc[dup < 0].loc[lambda t: ~t.chopped, "grain_id"])
    assert whole_somewhere == kept_ids
    # the overlap is wider than the grains: only the border of the scanned area loses any
    assert p.min() > 0.8 and weight.max() < 1.25


def test_whole_view_probability_of_a_grid_and_of_an_irregular_layout_agree():
    xy = np.array([[1.0, 1.0], [2.8, 1.0], [1.0, 2.4], [2.8, 2.4]])
    grid = frame_layout(xy, 10.0, 200, 250)
    w, h = np.array([10, 30, 120]), np.array([12, 25, 60])
    exact = whole_view_probability(w, h, grid)
    # the same frames, one nudged by 0.02 pixel: the general (coordinate compression) path
    nudged = frame_layout(xy + np.array([[0, 0], [0, 0], [0, 0], [2e-4, 0]]), 10.0, 200, 250)
    assert len(np.unique(np.round(nudged.origin_mm[:, 0] / nudged.pixel_mm, 2))) == 3
    np.testing.assert_allclose(whole_view_probability(w, h, nudged), exact, rtol=1e-3)
    # by hand: x frames at 0 and 180 px (250 wide), y at 0 and 140 px (200 high)
    lx = (250 - 1 - w) + np.minimum(180, 250 - 1 - w)
    ly = (200 - 1 - h) + np.minimum(140, 200 - 1 - h)
    np.testing.assert_allclose(exact, lx * ly / ((250 + 180) * (200 + 140)))


@pytest.mark.parametrize("xy, why", [
    (np.array([[1.0, 1.0], [np.nan, np.nan], [3.0, 1.0]]), "stage positions missing for 1 of 3 positions"),
    (np.array([[1.0, 1.0], [3.0, 1.0], [1.0, 1.0]]), "positions 0 and 2 repeat the same stage position"),
    (np.array([[1.0, 3.0], [3.0, 1.0], [1.0, 1.0], [3.0, 3.0]]), "stage positions out of scan order"),
])
def test_untrusted_positions_fall_back_to_per_frame_counting(xy, why):
    layout = frame_layout(xy, 10.0, 100, 150)
    assert layout.mode == "per frame" and why in layout.note and layout.note.endswith("counted per frame")
    assert list(layout.group) == list(range(len(xy)))
    assert "\n" not in layout.note


def test_serpentine_and_column_scans_are_in_order():
    serpentine = np.array([[1.0, 1.0], [2.0, 1.0], [3.0, 1.0], [3.0, 2.0], [2.0, 2.0], [1.0, 2.0]])
    assert frame_layout(serpentine, 10.0, 80, 80).mode == "plate"
    assert frame_layout(serpentine[:, ::-1], 10.0, 80, 80).mode == "plate"
    assert frame_layout(serpentine, None, 80, 80).note == "no pixel size: counted per frame"


@pytest.mark.slow
def test_clumped_grains_of_a_simulated_plate_are_counted():
    """Two kinds of very different sizes at 50/50, a third of the grains placed touching another."""
    sizes = {"dark": (0.10, 0.14), "foram_intact": (0.40, 0.50)}
    centres = tile_positions(36, FW, FH, overlap=0.0)
    plate = VirtualPlate.generate(seed=5, width_mm=6 * FW + 1, height_mm=6 * FH + 1, grains_per_mm2=3.0,
                                  kind_fractions={"dark": 0.5, "foram_intact": 0.5}, clump_fraction=0.35,
                                  diameter_mm=sizes)
    found = perfect_segmentation(plate, centres)
    grains, _ = scan_truth([plate], [(0, x, y) for x, y in centres], **FRAME)
    inside = grains[grains.in_scan]
    truth = float((inside.kind == "dark").mean())
    _, weight, _ = counted(found, centres)  # clumps left out
    clump = found.clump.to_numpy()
    assert clump.sum() > 40
    _, with_clumps, _ = counted(found.assign(clump=False), centres)
    cls = (found.kind == "dark").to_numpy().astype(np.int64)  # 0 foram, 1 dark
    as_one = with_clumps[cls == 1].sum() / with_clumps.sum()
    out = corrected_estimates([(cls, with_clumps, found.area_px.to_numpy(float), clump)], np.eye(2), n_boot=200)
    corrected = out["class_fraction"][0, 1]
    assert as_one < truth - 0.02  # a clump counted as one grain loses its small grains
    # most of that bias is gone (touching grains overlap a little on the simulated plate, so a
    # clump's area holds somewhat less than its grains')
    assert abs(corrected - truth) < 0.4 * abs(as_one - truth)
    assert out["class_fraction_lower"][0, 1] <= truth <= out["class_fraction_upper"][0, 1]
    assert weight.sum() < with_clumps.sum()
