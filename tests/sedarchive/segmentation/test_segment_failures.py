"""A failed segmentation changes nothing: failures injected at the start, middle and end of the stage.

The sample was segmented and encoded before; a forced re-segmentation that fails must leave its
grains, latents and status as they were.
"""
from __future__ import annotations

import numpy as np
import pytest

from acquisition.sim import simulate_sample
from catalog import SampleKey, create_variables, read_array, read_attrs, write_region
from catalog.store import array_names
from sedarchive.segmentation import SegmentSettings
from sedarchive.segmentation import stage as stage_module
from sedarchive.segmentation.chunks import scratch_dir
from sedarchive.segmentation.stage import run_stage

KEY = SampleKey("SEGF", 10, 12)
FAST = SegmentSettings(method="fast", crop_size=48, positions_per_task=1, min_area_px=16)
KEPT = ("bbox", "particle_images", "area_px", "latent")


@pytest.fixture
def segmented(archive, dask_client):
    path = simulate_sample(archive, KEY, n_positions=2, seed=3)
    assert run_stage(archive, [KEY], dask_client, FAST, quiet=True).ok
    n = len(read_array(path, "bbox"))
    create_variables(path, {"latent": (("particle", "feature"), (n, 2), np.float32, (max(n, 1), 2))})
    write_region(path, "latent", 0, np.ones((n, 2), np.float32))
    archive.set_status(KEY, "encoded", encoder_id="e1")
    before = {name: read_array(path, name) for name in KEPT}
    return archive, path, before


def assert_unchanged(path, before):
    for name, values in before.items():
        np.testing.assert_array_equal(read_array(path, name), values, err_msg=name)
    attrs = read_attrs(path)
    assert (attrs["status"], attrs["encoder_id"]) == ("encoded", "e1")
    assert not [n for n in array_names(path) if n.endswith(".next")]


def test_a_failure_in_the_first_pass_changes_nothing(segmented, dask_client):
    archive, path, before = segmented
    # a worker-side failure: the scratch folder cannot be written (a file where the folder goes)
    scratch = scratch_dir(archive.root, KEY)
    scratch.parent.mkdir(parents=True, exist_ok=True)
    scratch.write_text("in the way")
    try:
        report = run_stage(archive, [KEY], dask_client, FAST, quiet=True, force=True)
    except Exception:  # noqa: BLE001 - failing loudly is fine, changing the sample is not
        report = None
    assert report is None or not report.ok
    assert_unchanged(path, before)
    scratch.unlink()


def test_a_failure_in_the_second_pass_changes_nothing(segmented, dask_client, monkeypatch):
    archive, path, before = segmented
    real = stage_module._create_particle_arrays

    def then_lose_a_scratch_chunk(archive, key, *args):
        real(archive, key, *args)
        for chunk in sorted(scratch_dir(archive.root, key).glob("*.npz"))[:1]:
            chunk.unlink()  # the copy task of this chunk fails on its worker

    monkeypatch.setattr(stage_module, "_create_particle_arrays", then_lose_a_scratch_chunk)
    report = run_stage(archive, [KEY], dask_client, FAST.replace(crop_size=40), quiet=True, force=True)
    assert KEY in report.failures
    assert_unchanged(path, before)


def test_a_failure_at_the_end_changes_nothing(segmented, dask_client, monkeypatch):
    archive, path, before = segmented

    def swap_fails(path, name):
        raise OSError(28, "No space left on device (injected)")

    monkeypatch.setattr(stage_module, "swap_in", swap_fails)
    with pytest.raises(OSError, match="injected"):
        run_stage(archive, [KEY], dask_client, FAST.replace(crop_size=40), quiet=True, force=True)
    for name, values in before.items():
        np.testing.assert_array_equal(read_array(path, name), values, err_msg=name)


def test_a_lost_grain_chunk_is_segmented_again(segmented, dask_client):
    archive, path, before = segmented
    next(p for p in sorted((path / "bbox" / "c").rglob("*")) if p.is_file()).unlink()
    report = run_stage(archive, [KEY], dask_client, FAST, quiet=True)  # not skipped: bbox is not intact
    assert report.ok and report.results[KEY]["skipped"] is False
    np.testing.assert_array_equal(read_array(path, "bbox"), before["bbox"])
    assert read_attrs(path)["status"] == "segmented" and "latent" not in array_names(path)
