"""Segmentation on the simulator's harder plates (issue 14): other plate colours, sensor noise, dark and
saturated grains, dense touching grains, uneven light; dark grains and broken forams kept whole; few
single grains flagged as clumps; frames without a findable background refused with a reason."""
from __future__ import annotations

import numpy as np
import pytest
from harder_plates import CONDITIONS, render, score
from synthetic_plates import draw_ellipse, plate

from acquisition.sim.grains import GRAIN_KINDS, draw_grain
from sedarchive.errors import InputError
from sedarchive.segmentation import SegmentSettings, extract_grains, segment_frame
from sedarchive.segmentation.background_model import plate_colour, rgb_to_lab

#: Measured floors (README, "Segmentation on the simulator's harder plates", bench/harder.py): fast
#: reaches the issue's 0.97 on every condition here; slic falls short on the grey plate (precision 0.951).
FLOOR = {"fast": 0.97, "slic": 0.94}


@pytest.mark.slow
@pytest.mark.parametrize("method", ["fast", "slic"])
@pytest.mark.parametrize("condition", list(CONDITIONS))
def test_harder_plate_condition(condition, method):
    stacks, truth = render(condition)
    found = score(stacks, truth, SegmentSettings(method=method, crop_size=16))
    assert found["recall"] >= FLOOR[method] and found["precision"] >= FLOOR[method], found
    assert found["median_iou"] >= 0.85, found


def _sprite_frame(sprite, rng, plate_rgb=(38, 196, 72), noise=3.0, size=200) -> np.ndarray:
    frame = np.empty((size, size, 3), np.float32)
    frame[...] = plate_rgb
    h, w = sprite.shape
    top, left = (size - h) // 2, (size - w) // 2
    alpha = sprite.alpha[..., None]
    frame[top:top + h, left:left + w] = frame[top:top + h, left:left + w] * (1 - alpha) + sprite.rgb * alpha
    frame += rng.normal(0, noise, frame.shape)
    return np.clip(frame, 0, 255).astype(np.uint8)


@pytest.mark.parametrize("method", ["fast", "slic"])
def test_dark_grain_on_green_plate_is_never_split_or_missed(method):
    # the grain: RGB about 55, 45, 40 with sensor noise of 3 grey levels (fast once gave 22 pieces)
    rng = np.random.default_rng(14)
    for seed in range(12):
        frame = plate(200, 240, seed=seed, noise=3.0)
        cy, cx = rng.integers(70, 130), rng.integers(80, 160)
        ry, rx = rng.integers(20, 45), rng.integers(20, 45)
        draw_ellipse(frame, int(cy), int(cx), int(ry), int(rx), (55, 45, 40))
        noisy = np.clip(frame.astype(np.int16) + rng.normal(0, 3, frame.shape).round().astype(np.int16), 0, 255)
        labels = segment_frame(noisy.astype(np.uint8), method, SegmentSettings(min_area_px=30))
        assert labels.max() == 1, (seed, labels.max())
        assert labels[cy, cx] == 1


@pytest.mark.slow
@pytest.mark.parametrize("method", ["fast", "slic"])
def test_single_grains_stay_whole_and_almost_never_clumps(method):
    # 25 grains of each kind, alone on the plate: each one grain, fewer than 1 % flagged clump
    rng = np.random.default_rng(0)
    n_grains = n_clumps = 0
    for kind in GRAIN_KINDS:
        for seed in range(25):
            frame = _sprite_frame(draw_grain(kind, rng.uniform(70, 130), seed), rng)
            _, table = extract_grains(frame[None], SegmentSettings(method=method, crop_size=8), pixel_size_um=1.5)
            assert len(table) == 1, (kind, seed, len(table))
            n_grains += 1
            n_clumps += int(table.columns["clump"].sum())
    assert n_clumps < 0.01 * n_grains


@pytest.mark.parametrize("plate_rgb", [(38, 196, 72), (110, 110, 110), (18, 18, 20)])
def test_broken_foraminifer_stays_one_grain(plate_rgb):
    rng = np.random.default_rng(1)
    for seed in range(8):
        frame = _sprite_frame(draw_grain("foram_broken", 110, seed), rng, plate_rgb)
        for method in ("fast", "slic"):
            _, table = extract_grains(np.stack([frame, frame]), SegmentSettings(method=method, crop_size=8),
                                      pixel_size_um=1.5)
            assert len(table) == 1 and not table.columns["clump"][0], (seed, method, len(table))


@pytest.mark.parametrize("background", ["auto", "black", "white", "200,40,40"])
def test_any_plate_colour(background):
    colours = {"auto": (40, 70, 170), "black": (15, 15, 18), "white": (235, 235, 230), "200,40,40": (200, 40, 40)}
    frame = plate(seed=2)
    frame[...] = colours[background]
    frame = np.clip(frame + np.random.default_rng(2).normal(0, 2, frame.shape), 0, 255).astype(np.uint8)
    draw_ellipse(frame, 60, 60, 25, 30, (120, 120, 60))
    draw_ellipse(frame, 170, 220, 30, 25, (60, 150, 200) if background == "white" else (230, 225, 215))
    for method in ("fast", "slic"):
        assert segment_frame(frame, method, SegmentSettings(background=background, min_area_px=30)).max() == 2


def test_frame_without_findable_background_gets_a_reason_naming_the_position():
    blank = np.zeros((64, 80, 3), np.uint8)
    with pytest.raises(InputError, match=r"^S_1-2cm position 3 layer 0: blank frame"):
        segment_frame(blank, "fast", what="S_1-2cm position 3 layer 0")
    # a grain fills the frame: measured against the sample's plate colour, it is not an empty plate
    grain = np.full((64, 80, 3), (200, 190, 170), np.uint8)
    with pytest.raises(InputError, match=r"^S_1-2cm position 4 layer 1: no background found") as err:
        segment_frame(grain, "slic", what="S_1-2cm position 4 layer 1", plate_lab=rgb_to_lab((38, 196, 72)))
    assert "\n" not in str(err.value)
    with pytest.raises(InputError, match="background"):
        SegmentSettings(background="purple")


def test_plate_colour_learnt_from_frames():
    frame = plate(seed=3)
    frame[...] = (20, 20, 24)
    for i in range(6):
        draw_ellipse(frame, 40 + 35 * (i % 3), 60 + 90 * (i // 3), 15, 20, (210, 200, 170))
    lab = plate_colour([frame])
    assert np.linalg.norm(lab - rgb_to_lab((20, 20, 24))) < 3
