"""`sedarchive run --cluster` on real engines of this host: SLURM (slurmctld and slurmd on loopback)
and SSH (sshd on 127.0.0.1), each compared with the default local run, byte for byte.

The daemons are Debian's (``slurm-wlm`` and ``munge``, ``openssh-server``), installed by `.ci/run`;
each test starts its own (own key, ports, config and state folder) and stops only those. Runs use
a user's environment (no thread variables set by the test), so the comparison also holds the
training thread count to its setting.
"""
from __future__ import annotations

import getpass
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest
import yaml

from real_engines import MISSING, SlurmOnLoopback, SshdOnLoopback, missing
from small_pipeline import KEYS, SMALL, make_archive, results, sedarchive_cmd, user_env


SMALL_KEYS = KEYS[:1]


def run_cli(root, *options, env=None, cwd=None, timeout=900) -> subprocess.CompletedProcess:
    return subprocess.run(sedarchive_cmd("run", str(root), *SMALL, *options), capture_output=True, text=True,
                          env=env or user_env(), cwd=cwd, timeout=timeout)


def assert_identical(got: dict, want: dict) -> None:
    assert sorted(got) == sorted(want)
    for sample in want:
        assert sorted(got[sample]) == sorted(want[sample]), sample
        for name, value in want[sample].items():
            np.testing.assert_array_equal(got[sample][name], value, err_msg=f"{sample}/{name}")


@pytest.fixture(scope="module")
def local_run(tmp_path_factory):
    """The pristine simulated archive, and the results of the default local run on a copy of it."""
    base = tmp_path_factory.mktemp("engines")
    pristine = make_archive(base / "pristine").root
    root = base / "local"
    shutil.copytree(pristine, root)
    done = run_cli(root)
    assert done.returncode == 0, done.stderr
    want = results(root)
    assert "encoder" in want["models"] and "proportions" in want
    return pristine, want


def _need(engine) -> None:
    gone = missing(*engine.PROGRAMS)
    if gone:
        pytest.skip(MISSING.format(what=", ".join(gone), packages=engine.PACKAGES))


@pytest.mark.slow
@pytest.mark.slurm
def test_slurm_recipe_gives_the_local_numbers(local_run, tmp_path):
    _need(SlurmOnLoopback)
    pristine, want = local_run
    root = tmp_path / "archive"
    shutil.copytree(pristine, root)
    slurm = SlurmOnLoopback(tmp_path / "slurm")
    try:
        recipe = tmp_path / "slurm.yaml"
        recipe.write_text(yaml.safe_dump({
            "kind": "slurm", "worker_timeout": 240,
            "scheduler_options": {"host": "127.0.0.1", "dashboard_address": ":0"},
            "common": {"python": sys.executable, "walltime": "00:30:00", "interface": "lo",
                       "local_directory": str(tmp_path / "scratch"), "log_directory": str(tmp_path / "logs")},
            "worker_groups": {"cpu": {"jobs": 2, "queue": slurm.partition, "cores": 1, "memory": "2GB",
                                      "processes": 1}},
        }))
        done = run_cli(root, "--cluster", str(recipe), env={**user_env(), **_slurm_env(slurm)}, cwd=tmp_path)
    finally:
        slurm.stop()
    assert done.returncode == 0, done.stderr + slurm.log("slurmctld")
    assert re.search(r"^dask: [12] workers connected$", done.stderr, re.M), done.stderr
    assert list((tmp_path / "logs").glob("sedarchive-cpu-*.err")), "no SLURM job wrote its worker log"
    assert_identical(results(root), want)


@pytest.mark.slow
@pytest.mark.slurm
def test_slurm_misconfigurations_stop_with_one_line(tmp_path):
    """A job that stays pending (held), a worker python that does not exist, a partition that does
    not exist: each run stops with one line naming the recipe, and the job id, state and log file."""
    _need(SlurmOnLoopback)
    archive = make_archive(tmp_path / "archive", keys=SMALL_KEYS, n_positions=1)
    slurm = SlurmOnLoopback(tmp_path / "slurm")
    env = {**user_env(), **_slurm_env(slurm)}
    base = {"kind": "slurm", "worker_timeout": 20,
            "scheduler_options": {"host": "127.0.0.1", "dashboard_address": ":0"},
            "common": {"python": sys.executable, "log_directory": str(tmp_path / "logs"), "interface": "lo"},
            "worker_groups": {"cpu": {"jobs": 1, "queue": slurm.partition, "cores": 1, "memory": "1GB"}}}
    recipes = {}
    for name, change in {"held": {"job_extra_directives": ["--hold"]}, "python": {"python": "/nowhere/bin/python"},
                         "partition": {"queue": "nowhere"}}.items():
        data = yaml.safe_load(yaml.safe_dump(base))
        data["worker_groups"]["cpu"].update(change)
        recipes[name] = tmp_path / f"{name}.yaml"
        recipes[name].write_text(yaml.safe_dump(data))
    try:
        runs = {name: run_cli(archive.root, "--cluster", str(path), env=env, cwd=tmp_path, timeout=300)
                for name, path in recipes.items()}
    finally:
        slurm.stop()
    lines = {}
    for name, done in runs.items():
        assert done.returncode == 2, f"{name}: {done.stderr}"
        assert "Traceback" not in done.stderr, f"{name}: {done.stderr}"
        lines[name] = done.stderr.strip().splitlines()[-1]
        assert lines[name].startswith(f"sedarchive run: error: {recipes[name]}: "), lines[name]
    logs = str(tmp_path / "logs" / "sedarchive-cpu-")
    assert "no Dask worker connected within 20 s" in lines["held"] and "PENDING" in lines["held"]
    assert logs in lines["held"] and "squeue" in lines["held"]
    assert "no Dask worker connected and every batch job has ended" in lines["python"]
    assert "FAILED" in lines["python"] and logs in lines["python"]
    assert "did not start" in lines["partition"] and "invalid partition" in lines["partition"].lower()


def _slurm_env(slurm: SlurmOnLoopback) -> dict[str, str]:
    return {"SLURM_CONF": slurm.env["SLURM_CONF"]}


@pytest.mark.slow
@pytest.mark.ssh
def test_ssh_recipe_gives_the_local_numbers(local_run, tmp_path):
    _need(SshdOnLoopback)
    pristine, want = local_run
    root = tmp_path / "archive"
    shutil.copytree(pristine, root)
    sshd = SshdOnLoopback(tmp_path / "sshd")
    connect = {"port": sshd.port, "username": getpass.getuser(), "client_keys": [str(sshd.client_key)],
               "known_hosts": str(sshd.known_hosts), "env": _python_env()}
    try:
        recipe = tmp_path / "ssh.yaml"
        recipe.write_text(yaml.safe_dump({
            "kind": "ssh", "worker_timeout": 120, "scheduler": "127.0.0.1", "connect_options": connect,
            "remote_python": sys.executable,
            "scheduler_options": {"host": "127.0.0.1", "port": 0, "dashboard_address": ":0"},
            "worker_groups": {"cpu": {"hosts": ["127.0.0.1"], "workers_per_host": 2}},
        }))
        done = run_cli(root, "--cluster", str(recipe))
        wrong = recipe.with_name("wrong-python.yaml")
        wrong.write_text(recipe.read_text().replace(sys.executable, "/nowhere/bin/python"))
        refused = run_cli(root, "--cluster", str(wrong), timeout=300)
        no_hosts_file = recipe.with_name("no-known-hosts.yaml")
        no_hosts_file.write_text(recipe.read_text().replace(str(sshd.known_hosts), str(tmp_path / "nope")))
        unknown = run_cli(root, "--cluster", str(no_hosts_file), timeout=300)
    finally:
        sshd.stop()
    assert done.returncode == 0, done.stderr + sshd.log("sshd")
    assert_identical(results(root), want)
    for failed, why in ((refused, "did not start: Exception: Worker failed to start (check remote_python "
                                  "/nowhere/bin/python"),
                        (unknown, f"connect_options.known_hosts: no file {tmp_path / 'nope'} on this host")):
        assert failed.returncode == 2, failed.stderr
        last = failed.stderr.strip().splitlines()[-1]
        assert last.startswith(f"sedarchive run: error: {tmp_path}") and why in last, failed.stderr
        assert "Traceback" not in failed.stderr


def _python_env() -> dict[str, str]:
    """What the remote worker needs to import this checkout (CI installs it; here PYTHONPATH)."""
    import os

    return {k: v for k, v in os.environ.items() if k in ("PYTHONPATH", "VIRTUAL_ENV", "PATH")}


@pytest.mark.slow
@pytest.mark.slurm
@pytest.mark.parametrize("fallback", ["cpu", "stop"])
def test_slurm_gpu_group_that_never_starts(tmp_path, monkeypatch, capsys, fallback):
    """The CPU job runs, the GPU job stays pending: its job is cancelled and the run goes on on the
    CPU workers (``gpu_fallback: cpu``), or the client stops with the GPU job's id and state."""
    import subprocess as sp

    from sedarchive.dask.startup import ClusterStartError
    from sedarchive.dask.tasks import dask_client, has_gpu_workers

    _need(SlurmOnLoopback)
    slurm = SlurmOnLoopback(tmp_path / "slurm")
    monkeypatch.setenv("SLURM_CONF", slurm.env["SLURM_CONF"])
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        monkeypatch.delenv(name, raising=False)
    recipe = tmp_path / "gpu.yaml"
    group = {"jobs": 1, "queue": slurm.partition, "cores": 1, "memory": "1GB"}
    recipe.write_text(yaml.safe_dump({
        "kind": "slurm", "worker_timeout": 60, "gpu_fallback": fallback,
        "scheduler_options": {"host": "127.0.0.1", "dashboard_address": ":0"},
        "common": {"python": sys.executable, "log_directory": str(tmp_path / "logs"), "interface": "lo"},
        "worker_groups": {"cpu": group, "gpu": {**group, "resources": {"GPU": 1}, "job_extra_directives": ["--hold"]}},
    }))
    try:
        if fallback == "stop":
            with pytest.raises(ClusterStartError) as err:
                with dask_client(cluster=recipe):
                    pass
            message = str(err.value)
            assert "\n" not in message and "no GPU worker connected within 60 s and gpu_fallback is stop" in message
            assert "PENDING" in message and "sedarchive-gpu-" in message
        else:
            with dask_client(cluster=recipe) as client:
                assert not has_gpu_workers(client)
                assert client.submit(pow, 2, 5).result() == 32
                states = sp.run(["squeue", "-h", "--states=all", "-o", "%j %T"], capture_output=True, text=True,
                                env=slurm.env).stdout
            assert "sedarchive-gpu CANCELLED" in states, states
            err = capsys.readouterr().err
            assert "dask: no GPU worker within 60 s" in err and "training and encoding run on the CPU workers" in err
    finally:
        slurm.stop()
