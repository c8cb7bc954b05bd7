from __future__ import annotations

import subprocess
import sys

import numpy as np

from catalog import SampleKey, write_position
from sedarchive.cli import main


def _add(archive, core, top, bottom):
    key = SampleKey(core, top, bottom)
    path = archive.create_sample(key, n_positions=2, n_layers=6, height=8, width=8)
    for p in range(2):
        write_position(path, p, np.zeros((6, 8, 8, 3), np.uint8))
    archive.set_status(key, "acquired")


def test_catalog_lists_one_row_per_matching_sample(archive, capsys):
    for core, top, bottom in [("AI-3352", 100, 102), ("AI-3352", 160, 162), ("B-1", 120, 122)]:
        _add(archive, core, top, bottom)
    assert main(["catalog", str(archive.root), "--core", "AI-3352", "--depth", "100-150"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].split() == ["sample", "core", "depth_cm", "positions", "particles", "status"]
    assert [line.split() for line in lines[1:]] == [["AI-3352_100-102cm", "AI-3352", "100-102", "2", "0", "acquired"]]


def test_catalog_rebuild_restores_a_lost_yaml(archive, capsys):
    _add(archive, "C", 1, 2)
    archive.catalog_path.unlink()
    assert main(["catalog", str(archive.root), "--rebuild"]) == 0
    assert "C_1-2cm" in capsys.readouterr().out


def test_bad_archive_and_bad_depth_exit_2_with_one_line(tmp_path):
    for args in (["catalog", str(tmp_path / "none")], ["catalog", str(tmp_path), "--depth", "9-3"]):
        proc = subprocess.run([sys.executable, "-m", "sedarchive", *args], capture_output=True, text=True, timeout=60)
        assert proc.returncode == 2
        assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
