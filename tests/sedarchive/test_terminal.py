"""The command line as a new user meets it: exact options, hints on typos, clear units, fast --help, progress."""
from __future__ import annotations

import io
import subprocess
import sys
import time

import numpy as np
import pytest

from catalog import SampleKey, write_position
from sedarchive.cli import main
from sedarchive.progress import ProgressBar, heartbeat


def _add(archive, core, top, bottom):
    key = SampleKey(core, top, bottom)
    path = archive.create_sample(key, n_positions=1, n_layers=6, height=8, width=8)
    write_position(path, 0, np.zeros((6, 8, 8, 3), np.uint8))
    archive.set_status(key, "acquired")


def test_catalog_says_when_no_sample_matched(archive, capsys):
    _add(archive, "AI-3352", 100, 102)
    assert main(["catalog", str(archive.root), "--core", "NOPE"]) == 1
    assert "no sample matched core NOPE" in capsys.readouterr().err
    assert main(["catalog", str(archive.root), "--depth", "100-150cm"]) == 0  # the unit may be written
    assert "AI-3352_100-102cm" in capsys.readouterr().out


@pytest.mark.parametrize("args, hint", [
    (["--cor", "AI-3352"], "did you mean --core?"),          # no abbreviations: --cor is a typo, not --core
    (["--dpeth", "1-2"], "did you mean --depth?"),
    (["--depth", "100-150mm"], "centimetres"),               # another unit is refused, not misread
])
def test_option_typos_are_refused_with_a_hint(archive, capsys, args, hint):
    with pytest.raises(SystemExit) as exit_:
        main(["catalog", str(archive.root), *args])
    assert exit_.value.code == 2
    assert hint in capsys.readouterr().err


def test_verb_typo_gets_a_hint(capsys):
    with pytest.raises(SystemExit):
        main(["catalgo", "x"])
    assert "did you mean catalog?" in capsys.readouterr().err


def test_help_does_not_load_the_heavy_stacks():
    code = ("import sys; from sedarchive.cli import build_parser; build_parser(); import sedarchive; "
            "heavy = [m for m in ('xarray', 'dask', 'zarr', 'pandas', 'torch', 'intake') if m in sys.modules]; "
            "print(heavy); sys.exit(1 if heavy else 0)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    proc = subprocess.run([sys.executable, "-m", "sedarchive", "export", "--help"], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0 and "--categories" in proc.stdout


def test_progress_bar_on_a_terminal_and_lines_in_a_log():
    out = io.StringIO()
    with ProgressBar(10, "encode", unit="sample", stream=out, bars=True) as bar:
        for _ in range(10):
            bar.update(1, postfix="loss 0.1")
    assert "100%" in out.getvalue() and "10/10" in out.getvalue()
    log = io.StringIO()
    with ProgressBar(3, "train", unit="grain", stream=log, bars=False, every_s=0) as bar:
        bar.update(2)
    lines = log.getvalue().splitlines()
    assert lines[0].startswith("train: 2/3 grain") and lines[-1].startswith("train: 2/3 grain")


def test_heartbeat_speaks_during_a_silent_step():
    log = io.StringIO()
    with heartbeat("umap: fitting", stream=log, bars=False, every_s=0.5):
        time.sleep(2.5)
    lines = log.getvalue().splitlines()
    assert len(lines) >= 3 and all(line.startswith("umap: fitting") for line in lines)
    assert "still running" in lines[0] and "done" in lines[-1]
