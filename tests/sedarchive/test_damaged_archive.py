"""Damaged files give one-line errors, and the documented recovery (catalog --rebuild) works."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from catalog import Archive, ArchiveError, SampleKey
from catalog.store import read_attrs, write_position

KEYS = [SampleKey("D", 0, 1), SampleKey("D", 1, 2), SampleKey("E", 0, 1)]


@pytest.fixture
def archive(tmp_path):
    archive = Archive.create(tmp_path / "arc")
    for key in KEYS:
        path = archive.create_sample(key, 1, 1, 4, 4)
        write_position(path, 0, np.full((1, 4, 4, 3), 9, np.uint8))
        archive.set_status(key, "acquired")
    return archive


def cli(*args, timeout=300):
    return subprocess.run([sys.executable, "-m", "sedarchive", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout)


def test_a_damaged_zarr_json_is_one_line(archive):
    path = archive.sample_path(KEYS[0])
    (path / "zarr.json").write_text('{"zarr_format": 3, "node_ty')
    with pytest.raises(ArchiveError, match=r"D_0-1cm.zarr: zarr.json is damaged") as err:
        read_attrs(path)
    assert "\n" not in str(err.value)
    proc = cli("run", archive.root, "--quiet")
    assert proc.returncode == 2 and proc.stderr.strip().count("\n") == 0, proc.stderr
    assert "zarr.json is damaged" in proc.stderr and "nothing was changed" in proc.stderr
    assert read_attrs(archive.sample_path(KEYS[1]))["status"] == "acquired"


def test_rebuild_reports_each_bad_store_and_keeps_the_good_ones_without_the_old_catalog(archive):
    (archive.sample_path(KEYS[0]) / "zarr.json").write_bytes(b"\xff\xfe garbage")
    no_core = archive.sample_path(KEYS[1])
    import json

    meta = json.loads((no_core / "zarr.json").read_text())
    del meta["attributes"]["core"]
    (no_core / "zarr.json").write_text(json.dumps(meta))
    archive.catalog_path.write_text(archive.catalog_path.read_text()[:37])  # truncated
    listing = cli("catalog", archive.root)
    assert listing.returncode == 2 and listing.stderr.strip().count("\n") == 0
    assert "catalog.yaml is damaged" in listing.stderr and "--rebuild" in listing.stderr
    proc = cli("catalog", archive.root, "--rebuild")
    assert proc.returncode == 1, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 2
    assert "D_0-1cm.zarr" in lines[0] and "zarr.json is damaged" in lines[0]
    assert "D_1-2cm.zarr" in lines[1] and "no core attribute" in lines[1]
    assert "E_0-1cm" in proc.stdout and "D_0-1cm" not in proc.stdout
    assert [row.name for row in archive.samples()] == ["E_0-1cm"]
