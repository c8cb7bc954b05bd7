"""Touching grains of different lightness split by colour (issue 12: dark grains hidden in clumps)."""
from __future__ import annotations

import numpy as np
import pytest
from synthetic_plates import DARK, FORAM, QUARTZ, draw_ellipse, plate

from sedarchive.segmentation import SegmentSettings, segment_frame
from sedarchive.segmentation.touching import split_by_colour, split_touching

SMALL = SegmentSettings(superpixel_px=8, min_area_px=30)


def overlapping_pair(first, second, r1: int = 24, r2: int = 14, seed: int = 1) -> np.ndarray:
    """Two discs overlapping as the simulator's clumps do (centres 0.62 of the mean diameter apart):
    no neck for the shape split to find."""
    frame = plate(seed=seed)
    draw_ellipse(frame, 120, 140, r1, r1, first)
    draw_ellipse(frame, 120, 140 + int(0.62 * (r1 + r2)), r2, r2, second)
    return frame


@pytest.mark.parametrize("method", ["slic", "fast"])
@pytest.mark.parametrize("pale", [QUARTZ, FORAM])
def test_dark_grain_touching_a_pale_one_is_split(method, pale):
    for big, small in ((pale, DARK), (DARK, pale)):
        frame = overlapping_pair(big, small)
        assert segment_frame(frame, method, SMALL).max() == 2
        # without the colours (the same shapes in one colour) the shape split leaves them merged
        assert segment_frame(overlapping_pair(big, big), method, SMALL).max() == 1


@pytest.mark.parametrize("method", ["slic", "fast"])
def test_dark_grain_with_pale_specks_and_pale_grain_with_a_dark_spot_stay_whole(method):
    frame = plate(seed=2)
    draw_ellipse(frame, 80, 80, 30, 30, DARK)
    for cy, cx in ((70, 70), (90, 85), (75, 95)):      # small pale specks on the dark grain
        draw_ellipse(frame, cy, cx, 2, 2, QUARTZ)
    draw_ellipse(frame, 170, 220, 30, 36, FORAM)
    draw_ellipse(frame, 170, 225, 5, 5, DARK)          # a dark pore on the foraminifer
    assert segment_frame(frame, method, SMALL).max() == 2


def test_no_split_on_a_plate_darker_than_the_grains():
    light = np.full((40, 60), 8.0, np.float32)           # a black plate
    mask = np.zeros((40, 60), bool)
    mask[10:30, 5:30] = True
    mask[12:28, 30:55] = True
    light[10:30, 5:30] = 20.0                            # a dark grain is lighter than this plate
    light[12:28, 30:55] = 85.0
    assert split_by_colour(mask, light, 8.0) is None


def test_small_colour_piece_stays_with_its_grain():
    light = np.full((60, 60), 60.0, np.float32)
    mask = np.zeros((60, 60), bool)
    mask[5:55, 5:55] = True
    light[5:55, 5:55] = 85.0
    light[8:14, 8:14] = 15.0                             # 36 px dark: under a tenth of the object
    assert split_by_colour(mask, light, 60.0) is None


def test_split_touching_without_frame_is_unchanged():
    frame = overlapping_pair(QUARTZ, DARK)
    labels = (segment_frame(frame, "slic", SMALL.replace(split_touching=False)) > 0).astype(np.int32)
    assert split_touching(labels, 0.35, 30).max() == 1
    assert split_touching(labels, 0.35, 30, frame=frame).max() == 2


def test_dark_grain_with_a_lit_side_on_a_dark_blue_plate_stays_whole():
    # measured on bench/harder.py's blue plate (L 30): dark grains L 17, their lit side L 30-33
    light = np.full((60, 80), 30.0, np.float32)
    mask = np.zeros((60, 80), bool)
    mask[5:55, 5:75] = True
    light[5:55, 5:50] = 17.0
    light[5:55, 50:75] = 32.0
    assert split_by_colour(mask, light, 30.0) is None
    light[5:55, 50:75] = 80.0                             # a pale grain against it: two grains
    assert split_by_colour(mask, light, 30.0).max() == 2


@pytest.mark.parametrize("method", ["slic", "fast"])
def test_colour_split_is_a_recorded_setting_that_can_be_turned_off(method):
    frame = overlapping_pair(QUARTZ, DARK)
    assert segment_frame(frame, method, SMALL.replace(split_by_colour=False)).max() == 1
    assert SMALL.recorded()["split_by_colour"] is True
