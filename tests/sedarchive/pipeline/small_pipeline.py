"""Helpers of the pipeline tests: a small simulated archive, the results to compare, real Dask processes."""
from __future__ import annotations

import hashlib
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from catalog import Archive, SampleKey, read_array
from catalog.store import array_names

KEYS = (SampleKey("SIM-A", 10, 12), SampleKey("SIM-B", 40, 42))
#: Three samples for the test of bad input (two are spoilt, one must complete).
THREE = (*KEYS, SampleKey("SIM-B", 60, 62))
#: Stage options that keep a run small: the CPU encoder for one epoch, four clusters, no UMAP map.
SMALL = ["--preset", "cpu", "--epochs", "1", "--k", "4", "--umap-points", "0"]
#: One thread per BLAS/torch pool in every process, as a Dask nanny sets for its worker.
ONE_THREAD = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
DASK = Path(sys.executable).with_name("dask")


def make_archive(root: Path, keys=KEYS, n_positions: int = 3) -> Archive:
    """Simulated samples, each from its own seed (same seeds => byte-identical archives)."""
    from acquisition.sim import simulate_sample

    archive = Archive.create(root)
    for i, key in enumerate(keys):
        simulate_sample(archive, key, n_positions=n_positions, seed=11 + i)
    return archive


def sedarchive_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "sedarchive", *args]


def env() -> dict[str, str]:
    return {**os.environ, **ONE_THREAD, "PYTHONUNBUFFERED": "1"}


def user_env() -> dict[str, str]:
    """The environment of a user's shell: no thread-count variables (what a nanny sets is its own)."""
    return {**{k: v for k, v in os.environ.items() if not k.endswith("_NUM_THREADS")}, "PYTHONUNBUFFERED": "1"}


def results(root: Path) -> dict[str, dict[str, np.ndarray]]:
    """Per sample: grains (boxes, flags), latents and clusters; and the archive's counts."""
    archive = Archive.open(root)
    out: dict[str, dict[str, np.ndarray]] = {}
    for row in archive.samples():
        names = set(array_names(row.path))
        out[row.name] = {name: read_array(row.path, name)
                         for name in ("bbox", "position", "chopped", "clump", "latent", "cluster") if name in names}
        out[row.name]["status"] = np.array(row.status)
        if "particle_images" in names:  # the crops themselves, by digest (they are large)
            digest = hashlib.sha256(read_array(row.path, "particle_images").tobytes()).hexdigest()
            out[row.name]["particle_images_sha256"] = np.array(digest)
    current = archive.models_dir / "current.json"
    if current.exists():
        import json

        out["models"] = {name: np.array(value) for name, value in json.loads(current.read_text()).items()}
    if archive.proportions_path.exists():
        import xarray as xr

        with xr.open_zarr(archive.proportions_path) as ds:
            out["proportions"] = {"count": ds["count"].values}
    return out


def assert_same_results(got: dict, want: dict, atol: float = 5e-4) -> None:
    assert sorted(got) == sorted(want)
    for sample, arrays in sorted(want.items(), key=lambda item: item[0] != "models"):  # models first
        assert sorted(got[sample]) == sorted(arrays), sample
        for name, value in arrays.items():
            if name == "latent":
                np.testing.assert_allclose(got[sample][name], value, atol=atol, rtol=1e-4, err_msg=sample)
            else:
                np.testing.assert_array_equal(got[sample][name], value, err_msg=f"{sample}/{name}")


class DaskProcesses:
    """``dask scheduler`` and ``dask worker`` as separate processes on 127.0.0.1 (random ports)."""

    def __init__(self, folder: Path, n_workers: int = 2, nanny: bool = False, environ: dict[str, str] | None = None):
        """``nanny=True`` starts workers as ``dask worker`` does by default (a nanny process that sets
        the worker's thread variables); ``environ`` replaces the one-thread environment."""
        self.folder = folder
        self.environ = environ if environ is not None else env()
        self.scheduler_file = folder / "scheduler.json"
        self.procs: dict[str, subprocess.Popen] = {}
        logs = folder / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        self._start("scheduler", [str(DASK), "scheduler", "--host", "127.0.0.1", "--port", "0",
                                  "--dashboard-address", ":0", "--scheduler-file", str(self.scheduler_file)])
        self._wait(lambda: self.scheduler_file.exists(), "the scheduler file")
        for i in range(n_workers):
            self._start(f"w{i}", [str(DASK), "worker", "--scheduler-file", str(self.scheduler_file),
                                  "--host", "127.0.0.1", "--nthreads", "1", "--nanny" if nanny else "--no-nanny", "--name", f"w{i}",
                                  "--no-dashboard", "--death-timeout", "60"])
        from distributed import Client

        self.client = Client(scheduler_file=str(self.scheduler_file), timeout="30s")
        self.client.wait_for_workers(n_workers, timeout=60)
        self.address = self.client.scheduler.address

    def _start(self, name: str, cmd: list[str]) -> None:
        log = open(self.folder / "logs" / f"{name}.log", "w")
        self.procs[name] = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=self.environ,
                                             cwd=self.folder)

    @staticmethod
    def _wait(check: Callable[[], bool], what: str, timeout: float = 60) -> None:
        end = time.monotonic() + timeout
        while not check():
            if time.monotonic() > end:
                raise TimeoutError(f"waited {timeout} s for {what}")
            time.sleep(0.1)

    def kill_worker_when_busy(self, label: str, timeout: float = 240) -> threading.Thread:
        """In the background: SIGKILL the first worker seen running a task whose key starts with ``label``."""
        self.killed: list[str] = []

        def watch() -> None:
            end = time.monotonic() + timeout
            while time.monotonic() < end and not self.killed:
                try:
                    processing = self.client.processing()
                    names = {addr: w["name"] for addr, w in self.client.scheduler_info()["workers"].items()}
                except Exception:  # noqa: BLE001 - the scheduler may be busy; try again
                    processing, names = {}, {}
                for addr, keys in processing.items():
                    if any(str(k).startswith(label) for k in keys) and names.get(addr) in self.procs:
                        self.procs[names[addr]].send_signal(signal.SIGKILL)
                        self.killed.append(f"{names[addr]} while running {keys}")
                        return
                time.sleep(0.05)

        thread = threading.Thread(target=watch, daemon=True)
        thread.start()
        return thread

    def close(self) -> None:
        try:
            self.client.close()
        except Exception:  # noqa: BLE001
            pass
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs.values():
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()


def run_and_kill_when(cmd: list[str], pattern: str, timeout: float = 300) -> tuple[bool, str]:
    """Start ``cmd`` in its own process group; SIGKILL the whole group when stderr matches ``pattern``.

    Returns whether it was killed, and the stderr seen. Killing the group takes the client and the
    local cluster it started down at once, as a crash of the machine would.
    """
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env(),
                            start_new_session=True)
    seen: list[str] = []
    killed = False
    regex = re.compile(pattern)
    timer = threading.Timer(timeout, lambda: os.killpg(proc.pid, signal.SIGKILL))
    timer.start()
    try:
        for line in proc.stderr:
            seen.append(line)
            if regex.search(line):
                os.killpg(proc.pid, signal.SIGKILL)
                killed = True
                break
        proc.wait()
    finally:
        timer.cancel()
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return killed, "".join(seen)
