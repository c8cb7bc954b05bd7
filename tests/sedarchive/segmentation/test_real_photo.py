"""A real photograph (a crop shipped under tests/data, Apache-2.0, see its SOURCE.txt) ingested as a
single-layer sample and segmented from the command line, scored against its human labels."""
from __future__ import annotations

import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from catalog import SampleKey, read_array, read_attrs

DATA = Path(__file__).resolve().parents[2] / "data" / "segmenteverygrain"
NAME = "20230511_132710955_crop"
sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "bench"))


def test_shipped_crop_keeps_its_licence_and_attribution():
    assert "Apache License" in (DATA / "LICENSE.txt").read_text()
    assert "segmenteverygrain" in (DATA / "SOURCE.txt").read_text()


def test_single_layer_photo_ingested_and_segmented_from_the_command_line(tmp_path, capsys):
    from real import label_boxes, read_rgb, scores

    from sedarchive.cli import main

    photos = tmp_path / "photos"
    photos.mkdir()
    shutil.copy(DATA / f"{NAME}_image.png", photos / "tray photo 1.png")  # any name: a plain camera's
    rgba = np.dstack([read_rgb(DATA / f"{NAME}_image.png"), np.full((256, 320), 255, np.uint8)])
    Image.fromarray(rgba).save(photos / "tray photo 2.png")  # RGBA: the alpha channel is dropped
    root = tmp_path / "archive"
    assert main(["ingest", str(root), str(photos), "--core", "TRAY", "--depth", "0-1", "--layers", "1",
                 "--workers", "1", "--quiet"]) == 0
    assert main(["segment", str(root), "--method", "fast", "--workers", "1", "--quiet"]) == 0
    assert "TRAY_0-1cm:" in capsys.readouterr().out
    from catalog import Archive

    path = Archive.open(root).sample_path(SampleKey("TRAY", 0, 1))
    assert read_attrs(path)["segment_settings"]["background"] == "auto"
    stacks = read_array(path, "stacks")
    assert stacks.shape == (2, 1, 256, 320, 3)
    position, bbox = read_array(path, "position"), read_array(path, "bbox")
    truth = label_boxes(read_rgb(DATA / f"{NAME}_labels.png"))
    for p in (0, 1):
        found = scores(bbox[position == p].astype(np.int64), truth)
        # a floor that catches a broken background model (black tray); the targets and the
        # measured figures of the full photographs are in the README (bench/real.py)
        assert found["recall"] >= 0.35 and found["precision"] >= 0.5, found
        assert found["median_iou"] >= 0.7, found
    assert np.array_equal(bbox[position == 0], bbox[position == 1])


def test_layers_must_match_the_names(tmp_path):
    from sedarchive.errors import InputError
    from sedarchive.ingest import plan_ingest

    folder = tmp_path / "stack"
    folder.mkdir()
    for z in range(2):
        Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(folder / f"s_p0_z{z}.png")
    assert plan_ingest(folder).n_layers == 2
    with pytest.raises(InputError, match="2 focal layer.*--layers 1"):
        plan_ingest(folder, layers=1)
    with pytest.raises(InputError, match="at least one focal layer"):
        plan_ingest(folder, layers=0)
