"""The segment stage on a real LocalCluster against the in-memory kernels, on simulated samples."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from acquisition.sim import simulate_sample
from catalog import SampleKey, read_array, read_attrs
from catalog.store import array_names, write_position
from sedarchive.segmentation import GrainTable, SegmentSettings, extract_grains
from sedarchive.segmentation.chunks import chunk_file, prepare_scratch, scratch_dir, segment_chunk
from sedarchive.segmentation.stage import EmptyPlateWarning, run_stage

KEY = SampleKey("SIM", 120, 122)
FAST = SegmentSettings(method="fast", crop_size=48, positions_per_task=2, min_area_px=16)
PER_GRAIN = ("position", "bbox", "area_px", "chopped", "clump", "sharpness", "sharpest_layer",
             "box_height_px", "box_width_px", "mean_rgb", "solidity", "aspect_ratio", "equivalent_diameter_um")


def in_memory(path: Path, settings: SegmentSettings) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """The reference: every position through extract_grains (with the sample's plate colour), concatenated."""
    from sedarchive.segmentation.chunks import learn_plate

    pixel = read_attrs(path).get("pixel_size_um")
    plate_lab = learn_plate(str(path), settings)
    stacks = read_array(path, "stacks")
    images, tables = [], []
    for p, stack in enumerate(stacks):
        crops, table = extract_grains(stack, settings, position=p, pixel_size_um=pixel, plate_lab=plate_lab)
        images.append(crops)
        tables.append(table)
    return np.concatenate(images), GrainTable.concat(tables, stacks.shape[1], pixel is not None).columns


def assert_store_equals(path: Path, images: np.ndarray, columns: dict[str, np.ndarray]) -> None:
    assert np.array_equal(read_array(path, "particle_images"), images)
    for name in PER_GRAIN:
        np.testing.assert_array_equal(read_array(path, name), columns[name], err_msg=name)


def sample_with_frames(archive, key: SampleKey, frames: list[np.ndarray]) -> Path:
    n_layers, height, width, _ = frames[0].shape
    path = archive.create_sample(key, len(frames), n_layers, height, width, pixel_size_um=8.0)
    for i, stack in enumerate(frames):
        write_position(path, i, stack)
    archive.set_status(key, "acquired")
    return path


@pytest.mark.parametrize("method", ["fast", "slic"])
def test_dask_stage_equals_in_memory(archive, dask_client, method):
    settings = FAST.replace(method=method, superpixel_px=6)
    path = simulate_sample(archive, KEY, n_positions=3, seed=1)
    report = run_stage(archive, [KEY], dask_client, settings, quiet=True)
    assert report.ok, report.failures
    images, columns = in_memory(path, settings)
    assert len(images) > 10
    assert report.results[KEY] == {"n_particles": len(images), "skipped": False}
    assert_store_equals(path, images, columns)
    attrs = read_attrs(path)
    assert attrs["status"] == "segmented"
    assert attrs["segment_settings"]["method"] == method and "segment_version" in attrs
    assert archive.samples()[0].n_particles == len(images)
    assert not scratch_dir(archive.root, KEY).exists()
    ds = xr.open_zarr(path)  # consolidated metadata is current
    assert ds["particle_images"].dims == ("particle", "layer", "py", "px", "channel")
    assert ds["bbox"].dims == ("particle", "corner") and ds["sharpness"].dims == ("particle", "layer")
    assert ds.sizes["particle"] == len(images)
    meta = json.loads((path / "particle_images" / "zarr.json").read_text())  # the grain codec (bench/codec.py)
    assert [c["configuration"]["cname"] for c in meta["codecs"] if c["name"] == "blosc"] == ["lz4"]


def test_rerun_skips_and_new_settings_or_force_redo(archive, dask_client):
    path = simulate_sample(archive, KEY, n_positions=2, seed=2)
    run_stage(archive, [KEY], dask_client, FAST, quiet=True)
    first = read_array(path, "bbox")
    # A different chunking is not a different result: still skipped.
    again = run_stage(archive, [KEY], dask_client, FAST.replace(positions_per_task=1), quiet=True)
    assert again.results[KEY]["skipped"] is True
    forced = run_stage(archive, [KEY], dask_client, FAST, quiet=True, force=True)
    assert forced.results[KEY]["skipped"] is False
    np.testing.assert_array_equal(read_array(path, "bbox"), first)
    bigger = FAST.replace(crop_size=32)
    redone = run_stage(archive, [KEY], dask_client, bigger, quiet=True)
    assert redone.results[KEY]["skipped"] is False
    assert read_array(path, "particle_images").shape[2:4] == (32, 32)
    assert read_attrs(path)["segment_settings"]["crop_size"] == 32


def test_resume_reuses_done_chunks_and_ignores_half_written_ones(archive, dask_client):
    path = simulate_sample(archive, KEY, n_positions=4, seed=3)
    images, columns = in_memory(path, FAST)
    scratch = scratch_dir(archive.root, KEY)
    prepare_scratch(scratch, FAST)
    # A killed run: chunk 0:2 finished, chunk 2:4 died while writing its file.
    segment_chunk(str(path), str(scratch), 0, 2, FAST.to_dict(), KEY.name)
    done = chunk_file(scratch, 0, 2)
    (scratch / f"{chunk_file(scratch, 2, 4).stem}.tmp999.npz").write_bytes(b"half a file")
    # Mark the finished chunk, to see that the resumed run takes it as it is.
    with np.load(done) as data:
        content = {name: data[name] for name in data.files}
    content["area_px"] = content["area_px"] + 100000
    np.savez(done, **content)
    report = run_stage(archive, [KEY], dask_client, FAST, quiet=True)
    assert report.ok, report.failures
    n0 = len(content["area_px"])
    area = read_array(path, "area_px")
    assert (area[:n0] == columns["area_px"][:n0] + 100000).all()
    assert (area[n0:] == columns["area_px"][n0:]).all()
    assert not scratch.exists()
    # Chunks left by other settings are not reused.
    prepare_scratch(scratch, FAST)
    segment_chunk(str(path), str(scratch), 0, 2, FAST.replace(min_area_px=1000).to_dict(), KEY.name)
    run_stage(archive, [KEY], dask_client, FAST.replace(crop_size=40), quiet=True)
    run_stage(archive, [KEY], dask_client, FAST, quiet=True)
    assert_store_equals(path, images, columns)


def test_bad_frame_fails_its_sample_only_and_writes_nothing(archive, dask_client, tmp_path):
    good = simulate_sample(archive, KEY, n_positions=2, seed=4)
    rng = np.random.default_rng(0)
    green = np.empty((6, 64, 80, 3), np.uint8)
    green[...] = (38, 196, 72)
    grey = rng.integers(100, 140, (6, 64, 80, 3), dtype=np.uint8)
    bad_key = SampleKey("BAD", 1, 2)
    bad = sample_with_frames(archive, bad_key, [green, grey, green])
    report = run_stage(archive, [KEY, bad_key], dask_client, FAST, quiet=True)
    assert KEY in report.results and read_attrs(good)["status"] == "segmented"
    reason = report.failures[bad_key]
    # (before issue 14 the reason was the green rule's "no green background")
    assert "BAD_1-2cm position 1" in reason and "no background found" in reason and "\n" not in reason
    assert read_attrs(bad)["status"] == "acquired"
    assert "bbox" not in array_names(bad) and "particle_images" not in array_names(bad)


def test_samples_in_several_batches(archive, dask_client, monkeypatch):
    from sedarchive.segmentation import stage

    monkeypatch.setattr(stage, "BATCH_POSITIONS", 2)
    keys = [SampleKey("SIM", 10 * i, 10 * i + 2) for i in range(3)]
    paths = [simulate_sample(archive, key, n_positions=2, seed=10 + i) for i, key in enumerate(keys)]
    assert len(stage._batches(archive, keys)) == 3
    report = run_stage(archive, keys, dask_client, FAST, quiet=True)
    assert report.ok and sorted(report.results) == keys
    for path in paths:
        images, columns = in_memory(path, FAST)
        assert_store_equals(path, images, columns)


def test_empty_plate_gives_zero_grains_and_a_warning(archive, dask_client):
    green = np.empty((2, 64, 80, 3), np.uint8)
    green[...] = (38, 196, 72)
    green[1, ::2] += 3
    key = SampleKey("EMPTY", 0, 1)
    path = sample_with_frames(archive, key, [green, green])
    with pytest.warns(EmptyPlateWarning, match="EMPTY_0-1cm: no grains"):
        report = run_stage(archive, [key], dask_client, FAST, quiet=True)
    assert report.results[key]["n_particles"] == 0
    assert read_attrs(path)["status"] == "segmented"
    ds = xr.open_zarr(path)
    assert ds.sizes["particle"] == 0 and ds["particle_images"].shape == (0, 2, 48, 48, 3)


def test_sample_still_acquiring_is_refused(archive, dask_client):
    key = SampleKey("NEW", 0, 1)
    archive.create_sample(key, 1, 1, 32, 32)
    report = run_stage(archive, [key], dask_client, FAST, quiet=True)
    assert report.failures[key] == "NEW_0-1cm is not acquired yet (status acquiring)"


def test_command_line_segments_and_reports(archive, tmp_path, capsys):
    from sedarchive.cli import main

    path = simulate_sample(archive, KEY, n_positions=2, seed=5)
    settings = tmp_path / "seg.yaml"
    settings.write_text("crop_size: 40\nmin_area_px: 16\n")
    assert main(["segment", str(archive.root), "--method", "fast", "--segment-settings", str(settings),
                 "--workers", "1", "--quiet"]) == 0
    out = capsys.readouterr().out
    n = read_array(path, "bbox").shape[0]
    assert f"SIM_120-122cm: {n} grains (segmented)" in out
    assert read_attrs(path)["segment_settings"]["crop_size"] == 40
    settings.write_text("method: watershed\n")
    assert main(["segment", str(archive.root), "--segment-settings", str(settings)]) == 2
    assert "method 'watershed'" in capsys.readouterr().err


@pytest.mark.slow
def test_killed_run_resumes_to_the_clean_result(archive, dask_client, tmp_path):
    path = simulate_sample(archive, KEY, n_positions=6, seed=6)
    settings_file = tmp_path / "seg.yaml"
    settings = FAST.replace(method="slic", superpixel_px=6, positions_per_task=1)
    settings_file.write_text("\n".join(f"{k}: {json.dumps(v)}" for k, v in settings.to_dict().items()))
    scratch = scratch_dir(archive.root, KEY)
    proc = subprocess.Popen([sys.executable, "-m", "sedarchive", "segment", str(archive.root), "--workers", "1",
                             "--segment-settings", str(settings_file), "--quiet"],
                            start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 300
        while not list(scratch.glob("positions-*.npz")) and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the command and its worker processes, mid-run
        proc.wait()
    done = list(scratch.glob("positions-*.npz"))
    assert 1 <= len(done) < 6, "the run was not killed half-way"
    assert read_attrs(path)["status"] == "acquired"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        report = run_stage(archive, [KEY], dask_client, settings, quiet=True)
    assert report.ok, report.failures
    images, columns = in_memory(path, settings)
    assert_store_equals(path, images, columns)


def test_grains_are_compressed_once_and_old_scratch_files_still_copy(archive, dask_client):
    from catalog.rawchunks import chunk_codec
    from catalog.store import create_variables, staged_name
    from sedarchive.segmentation.chunks import copy_chunk, grains_codec_config, grains_dir

    path = simulate_sample(archive, KEY, n_positions=2, seed=8)
    images, columns = in_memory(path, FAST)
    scratch = scratch_dir(archive.root, KEY)
    prepare_scratch(scratch, FAST)
    n = segment_chunk(str(path), str(scratch), 0, 2, FAST.to_dict(), KEY.name)
    assert n == len(images) > 3
    with np.load(chunk_file(scratch, 0, 2)) as data:
        assert "images" not in data.files  # no uncompressed copy of the grains
    files = sorted(grains_dir(chunk_file(scratch, 0, 2)).iterdir())
    blosc = chunk_codec(grains_codec_config())
    assert len(files) == n
    for file, image in zip(files, images):
        np.testing.assert_array_equal(np.frombuffer(blosc.decode(file.read_bytes()), np.uint8).reshape(image.shape),
                                      image)
    dims = ("particle", "layer", "py", "px", "channel")
    shape, chunks = images.shape, (1, *images.shape[1:])
    # an array of another codec (zstd) gets the grains decoded and written through zarr, not linked
    create_variables(path, {staged_name("particle_images"): (dims, shape, "uint8", chunks)},
                     compressed=[staged_name("particle_images")])
    assert copy_chunk(str(path), str(chunk_file(scratch, 0, 2)), 0, staged_name("particle_images")) == n
    np.testing.assert_array_equal(read_array(path, staged_name("particle_images")), images)
    # a scratch file of the version before (the images themselves) is still written in
    old = chunk_file(scratch, 2, 4)
    np.savez(old, images=images, **columns)
    create_variables(path, {"again": (dims, shape, "uint8", chunks)}, compressed=["again"], codec="grains")
    assert copy_chunk(str(path), str(old), 0, "again") == n
    np.testing.assert_array_equal(read_array(path, "again"), images)
