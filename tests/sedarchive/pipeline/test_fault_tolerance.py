"""The real pipeline survives a lost worker, a killed client and a corrupt sample.

Every run here is `sedarchive run` in its own process, on the same small simulated archive (two
samples of three 256x320 positions, the cpu encoder for one epoch, K=4, no UMAP map), compared with
one clean run on the embedded local cluster. Training is seeded and runs on the CPU in the client process,
so a clean run and a disturbed one train the same model (no model is shared between the runs).
"""
from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest

from catalog import Archive
from small_pipeline import (
    KEYS,
    SMALL,
    THREE,
    DaskProcesses,
    assert_same_results,
    env,
    make_archive,
    results,
    run_and_kill_when,
    sedarchive_cmd,
)

pytestmark = pytest.mark.slow


def run_cli(root, *options, timeout=300) -> subprocess.CompletedProcess:
    return subprocess.run(sedarchive_cmd("run", str(root), *SMALL, *options), capture_output=True, text=True,
                          env=env(), timeout=timeout)


@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    """The simulated archive before any stage ran (copied by every test)."""
    return make_archive(tmp_path_factory.mktemp("pristine") / "archive").root


@pytest.fixture(scope="module")
def clean(pristine, tmp_path_factory):
    """Results of an undisturbed run on the embedded local cluster (2 workers)."""
    root = tmp_path_factory.mktemp("clean") / "archive"
    shutil.copytree(pristine, root)
    done = run_cli(root, "--workers", "2")
    assert done.returncode == 0, done.stderr
    got = results(root)
    assert all(got[key.name]["status"] == "clustered" for key in KEYS)
    assert all(len(got[key.name]["bbox"]) > 0 for key in KEYS)
    assert (root / "report" / "index.html").is_file()
    return got


def test_worker_killed_mid_run_on_external_scheduler(pristine, clean, tmp_path):
    root = tmp_path / "archive"
    shutil.copytree(pristine, root)
    cluster = DaskProcesses(tmp_path / "dask", n_workers=2)
    try:
        watcher = cluster.kill_worker_when_busy("segment")
        done = run_cli(root, "--scheduler", cluster.address)
        watcher.join(timeout=5)
        assert cluster.killed, "no worker was killed: the watcher never saw a segment task running"
        assert len(cluster.client.scheduler_info()["workers"]) == 1
    finally:
        cluster.close()
    assert done.returncode == 0, done.stderr
    assert_same_results(results(root), clean)


def test_client_killed_mid_run_then_resumed(pristine, clean, tmp_path):
    """The whole `sedarchive run` process group (client and its local cluster) dies while encoding."""
    root = tmp_path / "archive"
    shutil.copytree(pristine, root)
    moment = r"^encode: \d+ sample"
    killed, seen = run_and_kill_when(sedarchive_cmd("run", str(root), *SMALL, "--workers", "2"), moment)
    assert killed, f"the run ended before {moment!r} was seen:\n{seen}"
    assert {row.status for row in Archive.open(root).samples()} != {"clustered"}
    again = run_cli(root, "--workers", "2")
    assert again.returncode == 0, again.stderr
    assert "reusing it" in again.stderr  # the model trained before the kill
    assert_same_results(results(root), clean)


def test_bad_samples_are_reported_and_skipped(tmp_path):
    """A truncated chunk file and a one-colour stack: both samples listed with a reason, the third completes."""
    import catalog

    archive = make_archive(tmp_path / "archive", keys=THREE)
    root = archive.root
    truncated, blank, good = THREE
    chunk = next(p for p in sorted((archive.sample_path(truncated) / "stacks").rglob("*"))
                 if p.is_file() and p.name != "zarr.json")
    chunk.write_bytes(chunk.read_bytes()[:100])  # as a full disk or a killed copy would leave it
    stack = catalog.read_array(archive.sample_path(blank), "stacks", 1)
    catalog.write_position(archive.sample_path(blank), 1, np.full_like(stack, 128))  # no plate, no grain

    done = run_cli(root, "--workers", "2")
    assert done.returncode == 1, done.stderr
    assert "2 sample(s) failed and were skipped" in done.stderr
    for key in (truncated, blank):
        line = next(l for l in done.stderr.splitlines() if l.strip().startswith(f"{key.name} [segment]:"))
        assert len(line.split("]:", 1)[1].strip()) > 10, line  # a reason, not just a name
    got = results(root)
    assert got[good.name]["status"] == "clustered" and (got[good.name]["cluster"] >= 0).all()
    assert got[truncated.name]["status"] == got[blank.name]["status"] == "acquired"
    assert (root / "report" / "index.html").is_file()
