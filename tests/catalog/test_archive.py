from __future__ import annotations

import multiprocessing
import shutil

import intake
import numpy as np
import pytest
import xarray as xr

from catalog import Archive, ArchiveError, SampleKey, positions_done, write_position

SHAPE = dict(n_positions=3, n_layers=6, height=16, width=20)


def _sample(archive: Archive, core: str, top: float, bottom: float, status: str = "acquired") -> SampleKey:
    key = SampleKey(core, top, bottom)
    archive.create_sample(key, **SHAPE, focal_offsets_um=[0, 10, 20, 30, 40, 50], pixel_size_um=1.5)
    rng = np.random.default_rng(int(top))
    for p in range(SHAPE["n_positions"]):
        write_position(archive.sample_path(key), p, rng.integers(0, 255, (6, 16, 20, 3), dtype=np.uint8), (p, 2 * p))
    archive.set_status(key, status)
    return key


def test_sample_store_has_the_contract_layout(archive):
    key = _sample(archive, "AI-3352", 120, 122)
    ds = xr.open_zarr(archive.sample_path(key))  # plain xarray, consolidated metadata
    assert ds["stacks"].dims == ("position", "layer", "y", "x", "channel")
    assert ds["stacks"].dtype == np.uint8
    assert ds["stacks"].encoding["chunks"] == (1, 6, 16, 20, 3)
    assert ds["stage_xy_mm"].dims == ("position", "axis")
    np.testing.assert_array_equal(ds["stage_xy_mm"].values, [[0, 0], [1, 2], [2, 4]])
    assert ds.attrs["core"] == "AI-3352"
    assert (ds.attrs["depth_top_cm"], ds.attrs["depth_bottom_cm"]) == (120.0, 122.0)
    assert ds.attrs["focal_offsets_um"] == [0, 10, 20, 30, 40, 50]
    assert ds.attrs["pixel_size_um"] == 1.5
    assert ds.attrs["status"] == "acquired"


def test_queries_by_core_and_depth_return_exactly_the_overlapping_samples(archive):
    for core, top, bottom in [("A", 0, 2), ("A", 100, 102), ("A", 148, 150), ("A", 150, 152), ("B", 120, 122)]:
        _sample(archive, core, top, bottom)
    names = lambda rows: [r.name for r in rows]  # noqa: E731
    assert names(archive.samples(core="A")) == ["A_0-2cm", "A_100-102cm", "A_148-150cm", "A_150-152cm"]
    assert names(archive.samples(core="A", depth="100-150")) == ["A_100-102cm", "A_148-150cm"]
    assert names(archive.samples(depth=(121, 149))) == ["A_148-150cm", "B_120-122cm"]
    assert names(archive.samples(core=["B"], depth="0-1")) == []
    assert archive.samples(core="A")[0].n_positions == 3


def test_plain_intake_opens_every_entry_lazily(archive):
    keys = [_sample(archive, "A", 10 * i, 10 * i + 2) for i in range(3)]
    cat = intake.open_catalog(str(archive.catalog_path))
    assert sorted(cat) == sorted(k.name for k in keys)
    for key in keys:
        ds = cat[key.name].read()
        assert isinstance(ds, xr.Dataset)
        assert hasattr(ds["stacks"].data, "dask")  # lazy
        expected = xr.open_zarr(archive.sample_path(key))["stacks"].values
        np.testing.assert_array_equal(ds["stacks"].values, expected)
        meta = cat.entries[key.name].metadata
        assert meta["core"] == "A" and meta["status"] == "acquired" and meta["n_positions"] == 3


def test_catalog_survives_a_move_of_the_archive(archive, tmp_path):
    key = _sample(archive, "A", 1, 2)
    moved = shutil.move(str(archive.root), str(tmp_path / "elsewhere"))
    cat = intake.open_catalog(f"{moved}/catalog.yaml")
    assert cat[key.name].read()["stacks"].shape == (3, 6, 16, 20, 3)


def test_rebuild_from_stores_alone(archive):
    keys = {_sample(archive, "A", 1, 2), _sample(archive, "B", 3, 4, status="segmented")}
    before = {r.name: r.status for r in archive.samples()}
    archive.catalog_path.unlink()
    assert set(archive.rebuild_catalog()) == keys
    assert {r.name: r.status for r in archive.samples()} == before


def test_status_is_validated_and_reaches_the_catalog(archive):
    key = _sample(archive, "A", 1, 2)
    with pytest.raises(ArchiveError, match="unknown status"):
        archive.set_status(key, "done")
    archive.set_status(key, "segmented")
    assert archive.samples(status="segmented")[0].key == key
    assert archive.samples(status="encoded") == []


def test_existing_sample_and_bad_frames_are_refused(archive):
    key = _sample(archive, "A", 1, 2)
    with pytest.raises(ArchiveError, match="already exists"):
        archive.create_sample(key, **SHAPE)
    with pytest.raises(ArchiveError, match="expects"):
        write_position(archive.sample_path(key), 0, np.zeros((5, 16, 20, 3), np.uint8))
    with pytest.raises(ArchiveError, match="no archive"):
        Archive.open(archive.root / "nope")


def test_unfinished_positions_are_not_marked_done(archive):
    key = SampleKey("A", 1, 2)
    path = archive.create_sample(key, **SHAPE)
    write_position(path, 1, np.ones((6, 16, 20, 3), np.uint8))
    assert positions_done(path).tolist() == [False, True, False]


def _register_many(root: str, core: str, n: int, barrier) -> None:
    archive = Archive(root)
    barrier.wait()
    for i in range(n):
        archive.create_sample(SampleKey(core, i, i + 1), n_positions=1, n_layers=1, height=2, width=2)


def test_two_processes_registering_at_once_lose_no_entry(archive):
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(2)
    procs = [ctx.Process(target=_register_many, args=(str(archive.root), core, 20, barrier)) for core in "XY"]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    assert len(archive.samples()) == 40
    assert len(intake.open_catalog(str(archive.catalog_path))) == 40
