"""Same archive, same settings, same numbers on every engine (issue 19).

The embedded local cluster runs training in the command's own process, where distributed's nanny
has set ``OMP_NUM_THREADS=1`` before torch starts; a run against a separate scheduler trains in a
plain process that would use every core. Both run here with a user's environment (no thread
variables set by the test) and must give byte-identical models, clusters and counts, because the
training thread count is a setting applied wherever training runs.
"""
from __future__ import annotations

import json
import shutil
import subprocess

import numpy as np
import pytest

from catalog import Archive
from small_pipeline import SMALL, DaskProcesses, make_archive, results, sedarchive_cmd, user_env

pytestmark = pytest.mark.slow


def run_cli(root, *options, timeout=600) -> subprocess.CompletedProcess:
    return subprocess.run(sedarchive_cmd("run", str(root), *SMALL, *options), capture_output=True, text=True,
                          env=user_env(), timeout=timeout)


def assert_identical(got: dict, want: dict) -> None:
    """Models (ids are digests of the weights), grains, latents, clusters and counts: byte for byte."""
    assert sorted(got) == sorted(want)
    for sample in want:
        assert sorted(got[sample]) == sorted(want[sample]), sample
        for name, value in want[sample].items():
            np.testing.assert_array_equal(got[sample][name], value, err_msg=f"{sample}/{name}")


def test_local_run_equals_separate_scheduler_run(tmp_path):
    pristine = make_archive(tmp_path / "pristine").root
    local, remote = tmp_path / "local", tmp_path / "remote"
    shutil.copytree(pristine, local)
    shutil.copytree(pristine, remote)
    done = run_cli(local)  # the default: the embedded local cluster
    assert done.returncode == 0, done.stderr
    assert "dask: local cluster" in done.stderr
    cluster = DaskProcesses(tmp_path / "dask", n_workers=2, nanny=True, environ=user_env())
    try:
        other = run_cli(remote, "--scheduler", cluster.address)
    finally:
        cluster.close()
    assert other.returncode == 0, other.stderr
    assert f"dask: scheduler {cluster.address}" in other.stderr
    want, got = results(local), results(remote)
    assert "encoder" in want["models"] and "proportions" in want
    assert_identical(got, want)
    archive = Archive.open(local)
    info = json.loads((archive.models_dir / f"encoder-{want['models']['encoder']}" / "settings.json").read_text())
    assert info["train"]["threads"] == 1 and info["torch_threads"] == 1
