"""The simulated microscope: plate, optics, ground truth, simulated samples."""
from __future__ import annotations

import cv2
import numpy as np
import pandas as pd
import pytest

import catalog
from catalog import Archive, ArchiveError, SampleKey
from acquisition.errors import TruthError
from acquisition.sim import (
    GRAIN_KINDS,
    TRUTH_COLUMNS,
    VirtualPlate,
    read_truth,
    render_stack,
    simulate_sample,
    truth_path,
)

FRAME = dict(height=256, width=320, pixel_size_um=8.0)


@pytest.fixture(scope="module")
def plate() -> VirtualPlate:
    return VirtualPlate.generate(seed=3, width_mm=8, height_mm=8, grains_per_mm2=2.0, clump_fraction=0.3)


def saturation(frame: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(frame, cv2.COLOR_RGB2HSV)[..., 1] / 255.0


def test_grain_kinds_are_the_papers():
    assert GRAIN_KINDS == ("quartz", "dark", "foram_intact", "foram_broken")


def test_render_is_deterministic_and_seeded(plate):
    a, ta = render_stack(plate, 4.0, 4.0, **FRAME)
    b, tb = render_stack(plate, 4.0, 4.0, **FRAME)
    assert a.shape == (6, 256, 320, 3) and a.dtype == np.uint8
    assert np.array_equal(a, b)
    pd.testing.assert_frame_equal(ta, tb)
    other = VirtualPlate.generate(seed=4, width_mm=8, height_mm=8, grains_per_mm2=2.0)
    c, _ = render_stack(other, 4.0, 4.0, **FRAME)
    assert not np.array_equal(a, c)
    again = VirtualPlate.generate(seed=3, width_mm=8, height_mm=8, grains_per_mm2=2.0, clump_fraction=0.3)
    d, _ = render_stack(again, 4.0, 4.0, **FRAME)
    assert np.array_equal(a, d)


def test_background_is_saturated_green_and_grains_are_not(plate):
    stack, truth = render_stack(plate, 4.0, 4.0, **FRAME)
    assert 5 <= len(truth) <= 20
    outside = np.ones(stack.shape[1:3], bool)
    for row in truth.itertuples():
        outside[max(row.y0 - 6, 0):row.y1 + 6, max(row.x0 - 6, 0):row.x1 + 6] = False
    for layer in stack:
        sat = saturation(layer)
        assert np.median(sat[outside]) > 0.7
        assert np.mean(sat[outside] < 0.45) < 0.002  # nothing but plate outside the truth boxes
        green = layer[outside].astype(int)
        assert (green[:, 1] > green[:, 0] + 80).mean() > 0.99
    sharp = stack[3]
    for row in truth.itertuples():
        box = saturation(sharp[row.y0:row.y1, row.x0:row.x1])
        assert (box < 0.45).sum() >= 0.5 * row.area_px, row


def test_truth_boxes_are_in_the_frame_and_flag_chopped(plate):
    _, truth = render_stack(plate, 2.5, 3.0, **FRAME)
    assert list(truth.columns) == list(TRUTH_COLUMNS)
    assert ((truth.y0 >= 0) & (truth.x0 >= 0) & (truth.y1 <= 256) & (truth.x1 <= 320)).all()
    assert ((truth.y1 > truth.y0) & (truth.x1 > truth.x0)).all()
    touches = (truth.y0 == 0) | (truth.x0 == 0) | (truth.y1 == 256) | (truth.x1 == 320)
    assert (truth.chopped == touches).all()
    assert set(truth.kind) <= set(GRAIN_KINDS)
    assert (truth.clump == (truth.n_grains > 1)).all()


def test_chopped_and_clumps_occur_over_a_plate(plate):
    rows = pd.concat([render_stack(plate, x, y, **FRAME)[1] for x in (1.5, 4.0, 6.5) for y in (1.5, 4.0, 6.5)])
    assert rows.chopped.any() and (~rows.chopped).any()
    assert rows.clump.any()
    clumps = rows[rows.clump]
    assert (clumps.n_grains >= 2).all()
    assert set(rows.kind) == set(GRAIN_KINDS)


def test_overlapping_positions_see_the_same_grains(plate):
    shift_px = 80
    step_mm = shift_px * FRAME["pixel_size_um"] / 1000
    quiet = dict(FRAME, noise_sd=0.0, vignetting=0.0)
    a, ta = render_stack(plate, 4.0, 4.0, **quiet)
    b, tb = render_stack(plate, 4.0 + step_mm, 4.0, **quiet)
    overlap = np.abs(a[:, :, shift_px:].astype(int) - b[:, :, :-shift_px].astype(int))
    assert overlap.max() <= 2
    inner_a = ta[(ta.x0 > shift_px) & ~ta.chopped]
    inner_b = tb[(tb.x1 < 320 - shift_px) & ~tb.chopped]
    assert set(inner_a.grain_id) <= set(tb.grain_id)
    assert set(inner_b.grain_id) <= set(ta.grain_id)


def test_each_grain_is_sharpest_in_the_layer_nearest_its_focus():
    plate = VirtualPlate.generate(seed=11, width_mm=6, height_mm=6, grains_per_mm2=5.0, clump_fraction=0.0)
    offsets = (-50.0, -30.0, -10.0, 10.0, 30.0, 50.0)
    stack, truth = render_stack(plate, 3.0, 3.0, height=512, width=640, pixel_size_um=4.0, noise_sd=0.0,
                                focal_offsets_um=offsets)
    whole = truth[~truth.chopped & ~truth.clump]
    assert len(whole) >= 8
    hits, sharpest_layers = 0, set()
    for row in whole.itertuples():
        crops = stack[:, row.y0:row.y1, row.x0:row.x1].astype(np.float32)
        sharpness = [cv2.Laplacian(cv2.cvtColor(c, cv2.COLOR_RGB2GRAY), cv2.CV_32F).var() for c in crops]
        expected = int(np.argmin(np.abs(plate.focus_um[row.grain_id] - np.asarray(offsets))))
        sharpest_layers.add(int(np.argmax(sharpness)))
        hits += abs(int(np.argmax(sharpness)) - expected) <= 1
    assert hits >= 0.8 * len(whole)
    assert len(sharpest_layers) >= 3


def test_kinds_differ_in_colour_and_shape():
    plate = VirtualPlate.generate(seed=5, width_mm=12, height_mm=12, grains_per_mm2=2.0, clump_fraction=0.0)
    features, kinds = [], []
    for x in (2.0, 6.0, 10.0):
        for y in (2.0, 6.0, 10.0):
            stack, truth = render_stack(plate, x, y, **FRAME)
            frame = stack[3]
            for row in truth[~truth.chopped & (truth.area_px > 150)].itertuples():
                crop = frame[row.y0:row.y1, row.x0:row.x1]
                grain = saturation(crop) < 0.45
                pixels = crop[grain].astype(float)
                hsv = cv2.cvtColor(crop, cv2.COLOR_RGB2HSV)[grain].astype(float)
                features.append([*pixels.mean(0) / 255, hsv[:, 1].mean() / 255, pixels.std() / 64,
                                 grain.sum() / grain.size])
                kinds.append(row.kind)
    x, y = np.asarray(features), np.asarray(kinds)
    assert set(y) == set(GRAIN_KINDS)
    mean = {k: x[y == k].mean(0) for k in GRAIN_KINDS}
    # dark grains are dark, forams are the brightest, quartz the most tinted by the plate
    assert mean["dark"][:3].mean() < 0.35 < mean["quartz"][:3].mean()
    assert mean["foram_intact"][:3].mean() > mean["quartz"][:3].mean()
    assert mean["quartz"][3] > mean["foram_intact"][3]
    # leave-one-out nearest centroid on these few numbers already tells most grains apart
    scale = x.std(0) + 1e-9
    right = 0
    for i in range(len(x)):
        rest = np.ones(len(x), bool)
        rest[i] = False
        centres = {k: x[rest & (y == k)].mean(0) for k in GRAIN_KINDS}
        guess = min(centres, key=lambda k: np.sum(((x[i] - centres[k]) / scale) ** 2))
        right += guess == y[i]
    assert right / len(x) >= 0.75


def test_kind_fractions_pick_the_kinds():
    plate = VirtualPlate.generate(seed=2, width_mm=6, height_mm=6, kind_fractions={"dark": 1.0})
    assert plate.n_grains > 20
    assert {plate.kind_name(g) for g in range(plate.n_grains)} == {"dark"}
    with pytest.raises(ValueError, match="unknown grain kinds"):
        VirtualPlate.generate(seed=2, kind_fractions={"mica": 1.0})


def test_simulate_sample_writes_a_catalogued_sample_with_truth(tmp_path):
    archive = Archive.create(tmp_path / "arch")
    key = SampleKey("SIM-1", 120, 122)
    path = simulate_sample(archive, key, n_positions=3, seed=7)
    assert path == archive.sample_path(key)
    attrs = catalog.read_attrs(path)
    assert attrs["status"] == "acquired"
    assert attrs["pixel_size_um"] == 8.0
    assert len(attrs["focal_offsets_um"]) == 6
    assert attrs["acquire_settings"]["microscope"] == "simulated"
    assert catalog.positions_done(path).all()
    assert [row.status for row in archive.samples()] == ["acquired"]
    ds = archive.open_sample(key)
    assert ds.stacks.shape == (3, 6, 256, 320, 3)
    truth = read_truth(path)
    assert truth_path(path).name == "SIM-1_120-122cm.truth.csv"
    assert sorted(set(truth.position)) == [0, 1, 2]
    assert truth.groupby("position").size().between(3, 25).all()
    # the stored frames are what the simulated camera renders at the stored stage positions
    xy = ds.stage_xy_mm.values
    plate = VirtualPlate.generate(seed=7, width_mm=float(xy[:, 0].max() + 1.28 + 0.5),
                                  height_mm=float(xy[:, 1].max() + 1.024 + 0.5), grains_per_mm2=1.8)
    stack, frame_truth = render_stack(plate, *xy[2], height=256, width=320, pixel_size_um=8.0)
    assert np.array_equal(ds.stacks[2].values, stack)
    stored = truth[truth.position == 2].reset_index(drop=True)
    assert stored[["kind", "y0", "x0", "y1", "x1"]].equals(frame_truth[["kind", "y0", "x0", "y1", "x1"]])


def test_simulate_sample_refuses_an_existing_sample(tmp_path):
    archive = Archive.create(tmp_path)
    simulate_sample(archive, "SIM-2_1-2cm", n_positions=1)
    with pytest.raises(ArchiveError, match="already exists"):
        simulate_sample(archive, "SIM-2_1-2cm", n_positions=1)


def test_read_truth_without_truth_names_the_store(tmp_path):
    with pytest.raises(TruthError, match="X_1-2cm.truth.csv"):
        read_truth(tmp_path / "X_1-2cm.zarr")


# -- harder plates (issue 14): appearance only; the default rendering is unchanged -----------------

def test_other_plate_colours_noise_and_uneven_light(plate):
    base, truth = render_stack(plate, 4.0, 4.0, **FRAME, vignetting=0.0)
    black, _ = render_stack(plate, 4.0, 4.0, **FRAME, vignetting=0.0, plate_rgb=(18, 18, 20))
    free = np.ones(FRAME["height"] * FRAME["width"], bool)
    for r in truth.itertuples():
        mask = np.zeros((FRAME["height"], FRAME["width"]), bool)
        mask[max(r.y0 - 12, 0):r.y1 + 12, max(r.x0 - 12, 0):r.x1 + 12] = True
        free &= ~mask.ravel()
    assert free.mean() > 0.3
    plate_px = black[0].reshape(-1, 3)[free]
    assert np.abs(plate_px.mean(0) - 18).max() < 4                      # the black tray
    assert np.abs(base[0].reshape(-1, 3)[free].mean(0) - (38, 196, 72)).max() < 12
    noisy, _ = render_stack(plate, 4.0, 4.0, **FRAME, vignetting=0.0, noise_sd=6.0)
    assert noisy[0].reshape(-1, 3)[free].astype(float).std(0).min() > base[0].reshape(-1, 3)[free].astype(float).std(0).max()
    lit, _ = render_stack(plate, 4.0, 4.0, **FRAME, vignetting=0.0, light_gradient=0.4)
    left = lit[0][:, :40].reshape(-1, 3)[free.reshape(FRAME["height"], FRAME["width"])[:, :40].ravel()]
    right = lit[0][:, -40:].reshape(-1, 3)[free.reshape(FRAME["height"], FRAME["width"])[:, -40:].ravel()]
    assert right[:, 1].mean() < 0.75 * left[:, 1].mean()                # 40 % less light on the right


def test_varied_palette_recolours_some_grains_as_real_sands():
    from acquisition.sim.render import VARIED, recolour
    from acquisition.sim.grains import draw_grain

    colours = []
    for seed in range(200):
        sprite = recolour(draw_grain("quartz", 60, seed), seed)
        colours.append(sprite.rgb[sprite.mask].mean(0))
    colours = np.asarray(colours)
    for share, rgb in VARIED:
        near = (np.abs(colours - rgb).max(1) < 12).mean()
        assert abs(near - share) < 0.1, (rgb, near)


def test_touching_truth_apart_lists_every_grain():
    # grains' outlines are star-shaped inside their circles: circles overlapping by 12 µm hardly ever
    # make outlines touch (no touching pair in this view); 50 µm does
    dense = VirtualPlate.generate(seed=9, width_mm=3, height_mm=3, grains_per_mm2=40.0, clump_fraction=0.0,
                                  min_gap_mm=-0.05)
    frame = dict(height=384, width=480, pixel_size_um=1.5)
    _, clumped = render_stack(dense, 1.5, 1.5, **frame)
    _, apart = render_stack(dense, 1.5, 1.5, **frame, touching="apart")
    assert clumped.clump.any()                              # dense grains touch
    assert not apart.clump.any() and (apart.n_grains == 1).all()
    assert len(apart) > len(clumped)
    assert apart.grain_id.is_unique
    with pytest.raises(ValueError, match="palette"):
        render_stack(dense, 1.5, 1.5, **frame, palette="sepia")
