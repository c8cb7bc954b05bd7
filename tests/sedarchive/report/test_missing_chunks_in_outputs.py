"""A chunk deleted from a sample store stops the export and the thumbnails with a one-line error
(before: bbox 0,0,0,0 for every grain of the sample, a black thumbnail, exit 0)."""
from __future__ import annotations

import subprocess
import sys

import pytest

from catalog.errors import ArchiveError
from sedarchive.export import export_table
from sedarchive.gallery.grains import read_grain_images


def _first_chunk(path, name):
    files = sorted(p for p in (path / name / "c").rglob("*") if p.is_file())
    assert files, f"{name} has no chunk files"
    return files[0]


def test_export_refuses_a_sample_with_a_lost_bbox_chunk(clustered_archive, tmp_path):
    row = clustered_archive.samples()[0]
    _first_chunk(row.path, "bbox").unlink()
    with pytest.raises(ArchiveError, match=rf"sample {row.name}.zarr: chunk 0\.0 of 'bbox'"):
        export_table(clustered_archive, tmp_path / "table")
    proc = subprocess.run([sys.executable, "-m", "sedarchive", "export", str(clustered_archive.root),
                           "--out", str(tmp_path / "x")], capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0 and "of 'bbox'" in proc.stderr, proc.stderr
    assert proc.stderr.strip().count("\n") == 0


def test_thumbnails_refuse_a_lost_image_chunk(clustered_archive):
    row = clustered_archive.samples()[0]
    _first_chunk(row.path, "particle_images").unlink()
    with pytest.raises(ArchiveError, match="of 'particle_images'"):
        read_grain_images(clustered_archive, row.name, [0])
