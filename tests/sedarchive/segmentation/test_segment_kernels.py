"""Segmentation kernels on small synthetic plates with known grain boxes."""
from __future__ import annotations

import doctest

import numpy as np
import pytest
from synthetic_plates import DARK, QUARTZ, draw_ellipse, plate, scene, stack_of

from sedarchive.errors import InputError
from sedarchive.segmentation import (
    SegmentSettings,
    crop_grains,
    extract_grains,
    find_grains,
    match_layers,
    segment_frame,
    shape_of,
)

SMALL = SegmentSettings(superpixel_px=8, min_area_px=30)


def boxes_of(labels: np.ndarray) -> list[tuple[int, int, int, int]]:
    out = []
    for i in range(1, labels.max() + 1):
        ys, xs = np.nonzero(labels == i)
        out.append((int(ys.min()), int(xs.min()), int(ys.max()) + 1, int(xs.max()) + 1))
    return sorted(out)


def iou(a, b) -> float:
    ih = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    iw = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ih * iw
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


@pytest.mark.parametrize("method", ["slic", "fast"])
def test_frame_grains_have_the_known_boxes(method):
    frame, objects = scene(seed=1)
    labels = segment_frame(frame, method, SMALL)
    assert labels.dtype == np.int32
    found = boxes_of(labels)
    assert len(found) == len(objects)
    for box, (true_box, _, _) in zip(found, objects):
        assert iou(box, true_box) > 0.9, (box, true_box)


def test_methods_agree_on_the_mask():
    frame, _ = scene(seed=2)
    a = segment_frame(frame, "slic", SMALL) > 0
    b = segment_frame(frame, "fast", SMALL) > 0
    assert (a & b).sum() / (a | b).sum() > 0.95


def test_dark_and_pale_grains_both_found_with_given_threshold():
    frame = plate(seed=3)
    draw_ellipse(frame, 60, 60, 20, 20, DARK)
    draw_ellipse(frame, 150, 200, 25, 30, QUARTZ)
    for method in ("slic", "fast"):
        labels = segment_frame(frame, method, SMALL.replace(saturation_threshold=0.5))
        assert labels.max() == 2


def test_saturated_red_grain_kept_by_the_model_and_by_the_papers_hue_gate():
    frame = plate(seed=7)
    draw_ellipse(frame, 80, 80, 25, 25, (200, 45, 30))    # iron-stained: as saturated as the plate
    draw_ellipse(frame, 170, 220, 25, 25, QUARTZ)
    paper = SMALL.replace(background="paper")
    for method in ("slic", "fast"):
        assert segment_frame(frame, method, SMALL).max() == 2
        assert segment_frame(frame, method, paper).max() == 2
        assert segment_frame(frame, method, paper.replace(hue_gate=False)).max() == 1  # saturation only


def test_empty_plate_gives_no_grains():
    frame = plate(seed=4)
    for method in ("slic", "fast"):
        assert segment_frame(frame, method, SMALL).max() == 0


def test_frame_without_green_background_is_refused():
    grey = np.full((64, 80, 3), 128, np.uint8)
    with pytest.raises(InputError, match="no green background"):
        segment_frame(grey, "fast", SMALL.replace(background="paper"), what="S_1-2cm position 3 layer 0")
    with pytest.raises(InputError, match="S_1-2cm position 3.*no background found"):
        segment_frame(grey, "slic", SMALL.replace(background="green"), what="S_1-2cm position 3 layer 0")
    # auto: a plain grey frame is an empty grey plate
    assert segment_frame(grey, "fast", SMALL).max() == 0


@pytest.mark.parametrize("bad", [np.zeros((64, 80), np.uint8), np.zeros((64, 80, 4), np.uint8),
                                 np.zeros((64, 80, 3), np.float32)])
def test_frame_of_wrong_shape_or_type_is_refused(bad):
    with pytest.raises(InputError, match="expected an RGB image"):
        segment_frame(bad)


def test_stack_of_wrong_shape_is_refused():
    with pytest.raises(InputError, match="expected a stack"):
        find_grains(np.zeros((64, 80, 3), np.uint8))


def test_unknown_method_is_refused():
    with pytest.raises(InputError, match="method 'watershed'"):
        segment_frame(plate(), "watershed")


def test_layers_matched_and_widest_box_kept():
    labels = np.zeros((3, 40, 50), np.int32)
    labels[0, 10:20, 10:20] = 1
    labels[1, 9:22, 11:19] = 1   # taller, narrower: 13x8 = 104 < 10x10? no: 104 > 100 -> widest
    labels[2, 11:19, 11:19] = 1
    labels[2, 30:40, 40:50] = 2  # only in layer 2, cut by two edges
    grains = match_layers(labels)
    assert [g.box for g in grains] == [(9, 11, 22, 19), (30, 40, 40, 50)]
    assert [g.box_layer for g in grains] == [1, 2]
    assert [g.chopped for g in grains] == [False, True]
    assert grains[0].layers == (0, 1, 2) and grains[1].layers == (2,)
    assert grains[0].masks.shape == (3, 13, 8)


def test_grains_bridged_by_blur_in_one_layer_stay_apart():
    labels = np.zeros((3, 40, 60), np.int32)
    for layer in (0, 1):                  # sharp layers: two grains 4 pixels apart
        labels[layer, 10:20, 10:25] = 1
        labels[layer, 10:20, 29:45] = 2
    labels[2, 9:21, 9:46] = 1             # a blurred layer joins them
    grains = match_layers(labels)
    assert [g.box[1::2] for g in grains] == [(9, 27), (27, 46)]  # x0, x1 of each: split halfway
    assert all(g.box_layer == 2 for g in grains)
    # One layer alone seeing two pieces is not enough to split a grain.
    labels[1] = 0
    labels[1, 10:20, 10:45] = 1
    assert len(match_layers(labels)) == 1


def test_find_grains_over_a_blurred_stack_flags_chopped():
    frame, objects = scene(seed=5)
    grains = find_grains(stack_of(frame, 3), SMALL.replace(method="fast"))
    assert len(grains) == len(objects)
    for grain, (box, chopped, _) in zip(grains, objects):
        assert iou(grain.box, box) > 0.9
        assert grain.chopped == chopped


def test_crops_stretch_or_pad():
    stack = np.zeros((2, 60, 80, 3), np.uint8)
    stack[:, 10:20, 10:50] = 200
    stretched = crop_grains(stack, [(10, 10, 20, 50)], size=40)
    assert stretched.shape == (1, 2, 40, 40, 3) and (stretched == 200).all()
    padded = crop_grains(stack, [(10, 10, 20, 50)], size=40, pad=True, fill=(1, 2, 3))
    assert (padded[0, 0, 0, 0] == (1, 2, 3)).all()      # padding above the box
    assert (padded[0, 0, 20, 20] == 200).all()          # the grain in the middle
    with pytest.raises(InputError, match="outside"):
        crop_grains(stack, [(10, 10, 70, 50)], size=40)


def test_clump_and_single_grain_shapes():
    _, objects = scene()
    frame, _ = scene()
    images, table = extract_grains(stack_of(frame, 3), SMALL.replace(method="fast", crop_size=64))
    cols = table.columns
    assert images.shape == (len(objects), 3, 64, 64, 3)
    assert cols["clump"].tolist() == [c for _, _, c in objects]
    assert cols["chopped"].tolist() == [c for _, c, _ in objects]
    # The stack is sharp in layer 0 and blurred after: layer 0 is the sharpest for every grain.
    assert (cols["sharpest_layer"] == 0).all()
    assert (cols["sharpness"][:, 0] > cols["sharpness"][:, 2]).all()
    assert ((cols["box_height_px"] == cols["bbox"][:, 2] - cols["bbox"][:, 0])).all()
    assert "equivalent_diameter_um" not in cols


def test_morphometrics_in_micrometres():
    frame = plate(seed=6)
    draw_ellipse(frame, 100, 100, 30, 30, DARK)
    _, table = extract_grains(stack_of(frame, 2), SMALL.replace(method="fast"), pixel_size_um=2.0, position=7)
    cols = table.columns
    assert cols["position"].tolist() == [7]
    assert abs(cols["equivalent_diameter_um"][0] - 61 * 2.0) < 4
    assert abs(cols["area_um2"][0] - cols["area_px"][0] * 4.0) < 1e-3
    assert cols["aspect_ratio"][0] < 1.1 and cols["solidity"][0] > 0.95
    assert np.allclose(cols["mean_rgb"][0], DARK, atol=6)


def test_shape_of_two_touching_discs_has_two_cores():
    mask = np.zeros((60, 100), bool)
    yy, xx = np.mgrid[:60, :100]
    mask |= (yy - 30) ** 2 + (xx - 30) ** 2 <= 400
    assert shape_of(mask).n_cores == 1
    mask |= (yy - 30) ** 2 + (xx - 69) ** 2 <= 400
    assert shape_of(mask).n_cores == 2


def test_settings_from_yaml(tmp_path):
    path = tmp_path / "seg.yaml"
    path.write_text("method: fast\ncrop_size: 128\nsaturation_threshold: 0.4\npad: true\n")
    s = SegmentSettings.from_yaml(path)
    assert (s.method, s.crop_size, s.saturation_threshold, s.pad) == ("fast", 128, 0.4, True)
    assert "positions_per_task" not in s.recorded()
    path.write_text("method: fast\ncrop_sise: 128\n")
    with pytest.raises(InputError, match="unknown setting.*crop_sise"):
        SegmentSettings.from_yaml(path)
    path.write_text("saturation_threshold: 3\n")
    with pytest.raises(InputError, match="saturation_threshold"):
        SegmentSettings.from_yaml(path)


def test_docstring_examples_run():
    import sedarchive.segmentation as package
    from sedarchive.segmentation import background, crops, extract, fast, frame, grains, mask, measures, settings, slic

    for module in (package, background, crops, extract, fast, frame, grains, mask, measures, settings, slic):
        result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
        assert result.failed == 0, module.__name__
