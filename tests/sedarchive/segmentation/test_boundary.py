"""The boundary method: a small U-Net (plate / interior / boundary) and watershed, trained on CPU."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from sedarchive.errors import InputError
from sedarchive.segmentation import SegmentSettings, segment_frame
from sedarchive.segmentation.boundary import BoundaryModel, instances, probabilities, segment_boundary
from sedarchive.segmentation.boundary_train import Photograph, TrainSettings, class_map, train_boundary

#: Floors for the shipped weights on the tests/data crop (measured there: see the last test).
FLOOR_RECALL, FLOOR_PRECISION = 0.25, 0.25  # measured 0.375 / 0.40 (shipped weights, 2026-12-01)


def discs(seed: int, size: int = 192, radius: int = 16) -> tuple[np.ndarray, np.ndarray]:
    """A plate of random colour with discs of random colours, about half of them in touching pairs."""
    rng = np.random.default_rng(seed)
    rgb = np.empty((size, size, 3), np.float32)
    rgb[...] = rng.uniform(0, 255, 3)
    labels = np.zeros((size, size), np.int32)
    k = 0
    for cy in range(radius + 4, size - radius - 4, 3 * radius):
        for cx in range(radius + 4, size - 3 * radius, 4 * radius + 4):
            centres = [(cx, cy), (cx + 2 * radius - 1, cy)] if rng.random() < 0.5 else [(cx + radius, cy)]
            for x, y in centres:
                k += 1
                mask = np.zeros((size, size), np.uint8)
                cv2.circle(mask, (x, y), radius - int(rng.integers(0, 3)), 1, -1)
                rgb[mask > 0] = rng.uniform(0, 255, 3)
                labels[(mask > 0) & (labels == 0)] = k
    rgb += rng.normal(0, 3, rgb.shape)
    return np.clip(rgb, 0, 255).astype(np.uint8), labels


def recall(found: np.ndarray, truth: np.ndarray) -> float:
    """Fraction of true objects with a found object of mask IoU >= 0.5."""
    hits = 0
    for t in range(1, truth.max() + 1):
        mask = truth == t
        ids, counts = np.unique(found[mask], return_counts=True)
        best = max((c / (mask.sum() + (found == i).sum() - c) for i, c in zip(ids, counts) if i), default=0)
        hits += best >= 0.5
    return hits / truth.max()


def test_class_map_marks_where_grains_meet():
    _, labels = discs(0)
    classes = class_map(labels, band=1)
    assert set(np.unique(classes)) == {0, 1, 2}
    assert ((classes == 0) == (labels == 0)).all()
    touching = (labels[:, 1:] != labels[:, :-1]) & (labels[:, 1:] > 0) & (labels[:, :-1] > 0)
    assert touching.any() and (classes[:, 1:][touching] == 2).all()


def test_untrained_network_shapes_and_a_saved_model_reads_back(tmp_path):
    rgb, _ = discs(1, size=100)
    model = BoundaryModel(widths=(8, 16, 32))
    prob = probabilities(model, rgb, scale=0.5)
    assert prob.shape == (3, 50, 50) and np.allclose(prob.sum(0), 1, atol=1e-5)
    path = model.save(tmp_path / "w.pt")
    assert path.stat().st_size < 200_000
    again = BoundaryModel.load(path)
    assert again.widths == (8, 16, 32)
    assert np.abs(probabilities(again, rgb) - probabilities(model, rgb)).max() < 0.02  # float16 on disk
    labels = segment_boundary(rgb, path, grain_px=30)
    assert labels.shape == rgb.shape[:2] and labels.dtype == np.int32


def test_bad_weights_and_settings_are_one_line_errors(tmp_path):
    (tmp_path / "junk.pt").write_bytes(b"not a model")
    for path, message in ((tmp_path / "junk.pt", "not a weights file"), (tmp_path / "none.pt", "no such file")):
        with pytest.raises(InputError, match=message) as err:
            BoundaryModel.load(path)
        assert "\n" not in str(err.value)
    with pytest.raises(InputError, match="needs a weights file"):
        SegmentSettings(method="boundary")
    with pytest.raises(InputError, match="grain_px must be positive"):
        SegmentSettings(method="boundary", weights="w.pt", grain_px=0)
    with pytest.raises(InputError, match="method 'unet' is not one of slic, fast, boundary"):
        SegmentSettings(method="unet")


def test_stores_segmented_before_the_boundary_method_stay_done():
    recorded = SegmentSettings().recorded()
    assert "weights" not in recorded and "grain_px" not in recorded
    assert SegmentSettings(method="boundary", weights="w.pt", grain_px=40).recorded()["grain_px"] == 40
    again = SegmentSettings.from_dict({"method": "boundary", "weights": "w.pt", "grain_px": "40"})
    assert again.grain_px == 40.0


def test_instances_split_touching_grains_by_the_boundary_class():
    _, labels = discs(2)
    onehot = np.eye(3, dtype=np.float32)[class_map(labels, band=1)].transpose(2, 0, 1)
    assert recall(instances(onehot), labels) == 1.0


@pytest.mark.slow
def test_a_trained_network_separates_touching_discs(tmp_path):
    photos = [Photograph(f"discs {i}", *discs(10 + i)) for i in range(4)]
    settings = TrainSettings(tile=96, batch=4, max_steps=150, seconds=120, widths=(8, 16, 32), scales=(0.8, 1.0, 1.25),
                             learning_rate=1e-2, band=1)
    model = train_boundary(photos, settings)
    path = model.save(tmp_path / "discs.pt")
    rgb, truth = discs(99)
    untrained = BoundaryModel(widths=(8, 16, 32)).save(tmp_path / "untrained.pt")
    frame_settings = SegmentSettings(method="boundary", weights=str(path), min_area_px=30)
    learned = recall(segment_frame(rgb, settings=frame_settings), truth)  # grain scale estimated
    chance = recall(segment_boundary(rgb, untrained, grain_px=30), truth)
    assert learned >= 0.8 and learned > chance + 0.4, (learned, chance)


@pytest.mark.slow
def test_shipped_weights_segment_a_real_photograph_through_the_segment_stage(tmp_path, capsys):
    """The crop under tests/data (a photograph the shipped weights were never trained on) ingested as a
    single-layer sample and segmented from the command line by the boundary method."""
    import shutil
    import sys
    from pathlib import Path

    from catalog import Archive, SampleKey, read_array, read_attrs
    from sedarchive.cli import main

    data = Path(__file__).resolve().parents[2] / "data" / "segmenteverygrain"
    weights = Path(__file__).resolve().parents[3] / "sedarchive" / "segmentation" / "weights" / "boundary.pt"
    sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "bench"))
    from real import label_boxes, read_rgb, scores

    photos = tmp_path / "photos"
    photos.mkdir()
    shutil.copy(data / "20230511_132710955_crop_image.png", photos / "tray 1.png")
    root = tmp_path / "archive"
    assert main(["ingest", str(root), str(photos), "--core", "TRAY", "--depth", "0-1", "--layers", "1",
                 "--workers", "1", "--quiet"]) == 0
    assert main(["segment", str(root), "--method", "boundary", "--boundary-weights", str(weights), "--workers", "1",
                 "--quiet"]) == 0
    assert "TRAY_0-1cm:" in capsys.readouterr().out
    path = Archive.open(root).sample_path(SampleKey("TRAY", 0, 1))
    recorded = read_attrs(path)["segment_settings"]
    assert recorded["method"] == "boundary" and recorded["weights"] == str(weights.resolve())
    found = scores(read_array(path, "bbox").astype(np.int64),
                   label_boxes(read_rgb(data / "20230511_132710955_crop_labels.png")))
    # a floor under the figure measured with the shipped weights (see the README's real-photograph
    # table): it catches a broken scale estimate, watershed or weights file
    assert found["recall"] >= FLOOR_RECALL and found["precision"] >= FLOOR_PRECISION, found


def test_docstring_examples_run():
    import doctest

    from sedarchive.segmentation import boundary, boundary_train

    for module in (boundary, boundary_train):
        result = doctest.testmod(module)
        assert result.failed == 0 and result.attempted > 0, module.__name__
