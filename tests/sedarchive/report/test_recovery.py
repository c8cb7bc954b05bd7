"""The recoveries that the README's reliability table names, run on damaged archives."""
from __future__ import annotations

import shutil
import subprocess
import sys

import numpy as np
import pytest

from catalog import read_array
from catalog.errors import ArchiveError, SedarchiveError
from sedarchive.pipeline import check_stores


def cli(*args):
    return subprocess.run([sys.executable, "-m", "sedarchive", *map(str, args)], capture_output=True, text=True,
                          timeout=600)


def test_a_lost_cluster_chunk_is_repaired_by_assign_only(clustered_archive):
    row = clustered_archive.samples()[0]
    before = read_array(row.path, "cluster")
    next(p for p in sorted((row.path / "cluster" / "c").rglob("*")) if p.is_file()).unlink()
    with pytest.raises(ArchiveError, match="of 'cluster'"):
        read_array(row.path, "cluster")
    proc = cli("cluster", clustered_archive.root, "--assign-only", "--workers", "1", "--quiet")
    assert proc.returncode == 0, proc.stderr
    np.testing.assert_array_equal(read_array(row.path, "cluster"), before)


def test_a_stale_catalog_entry_is_refused_by_run_and_dropped_by_rebuild(clustered_archive):
    rows = clustered_archive.samples()
    shutil.rmtree(rows[0].path)
    with pytest.raises(SedarchiveError, match=f"1 catalogued sample.*{rows[0].name}.*catalog ARCHIVE --rebuild"):
        check_stores(clustered_archive, [r.key for r in rows[1:]])
    proc = cli("run", clustered_archive.root, "--quiet")  # refused before any stage changes anything
    assert proc.returncode == 2 and "nothing was changed" in proc.stderr, proc.stderr
    proc = cli("catalog", clustered_archive.root, "--rebuild")
    assert proc.returncode == 0, proc.stderr
    assert [r.name for r in clustered_archive.samples()] == [r.name for r in rows[1:]]
    check_stores(clustered_archive, [r.key for r in rows[1:]])
