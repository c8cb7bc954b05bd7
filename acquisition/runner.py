"""The scan runner: executes a :class:`~acquisition.plan.ScanPlan` on a stage and a camera.

It owns timing, pausing, cancelling and writing. Each position is moved to, settled, and
photographed at every focal layer; the whole stack is then written through
``catalog.write_position`` (frames first, the done-mark last), so a scan stopped at any moment
- a stage alarm, a pulled cable, Ctrl-C, a power cut - leaves only complete positions behind. The
sample keeps ``status = acquiring`` until every position is in, then becomes ``acquired``.
Running the same plan on the same sample again resumes at the first missing position.
"""
from __future__ import annotations

import contextlib
import threading
from collections import deque
import time
from concurrent.futures import Future, ThreadPoolExecutor
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

import catalog
from catalog import Archive, SampleKey
from acquisition.devices import Camera, Stage
from acquisition.errors import AcquisitionError, CameraError, PlanError, ScanCancelled
from acquisition.plan import ScanPlan, ScanPosition


@dataclass(frozen=True)
class ScanProgress:
    """Where a scan stands, given to the progress callback after every position."""

    done: int
    total: int
    position: ScanPosition | None
    elapsed_s: float
    eta_s: float | None

    def line(self) -> str:
        eta = "" if self.eta_s is None else f", about {_clock(self.eta_s)} left"
        where = "" if self.position is None else f" (plate {self.position.plate + 1}, x {self.position.x_mm:g} y {self.position.y_mm:g} mm)"
        return f"position {self.done}/{self.total}{where}, {self.done / max(self.total, 1):.0%}{eta}"


@dataclass
class ScanReport:
    """What a run did, and where its time went."""

    sample: str
    path: Path
    taken: int
    already_done: int
    total: int
    elapsed_s: float = 0.0
    stage_s: float = 0.0
    camera_s: float = 0.0
    write_s: float = 0.0  # time the runner waited for the background writer
    write_work_s: float = 0.0  # time the writer spent writing (overlaps stage and camera)

    @property
    def complete(self) -> bool:
        return self.taken + self.already_done == self.total

    @property
    def overhead_share(self) -> float:
        """Share of the run's time spent outside waiting for the stage and the camera."""
        if self.elapsed_s <= 0:
            return 0.0
        return max(self.elapsed_s - self.stage_s - self.camera_s, 0.0) / self.elapsed_s


class ScanRunner:
    """Runs ``plan`` with ``stage`` and ``camera`` (both connected) into a sample of an archive.

    Parameters
    ----------
    on_progress
        Called with a :class:`ScanProgress` after each written position.
    on_plate
        Called as ``on_plate(plate_index, n_plates)`` before a plate other than the first is
        scanned (and before the first plate of a resumed run past plate 1): the operator prompt.
    sleep
        Used for settling (tests may pass a no-op).
    """

    def __init__(self, stage: Stage, camera: Camera, plan: ScanPlan, *,
                 on_progress: Callable[[ScanProgress], None] | None = None,
                 on_plate: Callable[[int, int], None] | None = None,
                 sleep: Callable[[float], None] = time.sleep):
        self.stage, self.camera, self.plan = stage, camera, plan
        self.on_progress, self.on_plate, self.sleep = on_progress, on_plate, sleep
        self._paused = threading.Event()
        self._cancelled = threading.Event()
        self._started = time.perf_counter()

    # -- control (from any thread) --------------------------------------------------------------
    def pause(self) -> None:
        """Stop before the next position (the current one is finished and written)."""
        self._paused.set()

    def resume(self) -> None:
        self._paused.clear()

    def cancel(self) -> None:
        """Stop before the next position; :meth:`run` then raises :class:`ScanCancelled`."""
        self._cancelled.set()

    @property
    def paused(self) -> bool:
        return self._paused.is_set()

    # -- the scan -------------------------------------------------------------------------------
    def run(self, archive: Archive, key: SampleKey, *, devices: Mapping[str, Any] | None = None) -> ScanReport:
        """Scan into sample ``key`` (created if new, resumed if started with the same plan).

        Each complete stack is written by a background writer while the stage moves on to the
        next position (in position order; the runner waits for a write before handing over the one
        after it); whatever stops the scan, stacks already handed over are written first, so no
        complete position is lost.
        """
        self.plan.check()
        path = prepare_sample(archive, key, self.plan, devices=devices)
        done = catalog.positions_done(path)
        positions = self.plan.positions()
        report = ScanReport(key.name, path, 0, int(done.sum()), len(positions))
        todo = [p for p in positions if not done[p.index]]
        self._started = time.perf_counter()
        plate = todo[0].plate if todo and todo[0].plate > 0 and report.already_done else 0
        if todo and plate > 0 and self.on_plate:
            self.on_plate(plate, len(self.plan.plates))
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="scan-writer") as writer:
            pending: deque[tuple[ScanPosition, Future]] = deque()
            position = None
            try:
                for position in todo:
                    self._wait_if_paused(key)
                    if position.plate != plate:
                        plate = position.plate
                        if self.on_plate:
                            self.on_plate(plate, len(self.plan.plates))
                    stack, xy = self._take(position, report)
                    pending.append((position, writer.submit(self._write, path, position, stack, xy)))
                    while len(pending) > 1:  # the one before: wait for it, so that one write overlaps the next take
                        self._collect(pending.popleft(), report)
                while pending:
                    self._collect(pending.popleft(), report)
            except BaseException as err:
                _stop_safely(self.stage)
                while pending:  # complete stacks already handed over are written all the same
                    with contextlib.suppress(BaseException):  # the first failure is the one to tell
                        self._collect(pending.popleft(), report)
                report.elapsed_s = time.perf_counter() - self._started
                if isinstance(err, AcquisitionError) and not isinstance(err, ScanCancelled) and position is not None:
                    raise _stopped(err, key, position, report) from err
                raise
        report.elapsed_s = time.perf_counter() - self._started
        if catalog.positions_done(path).all() and catalog.read_attrs(path).get("status") == "acquiring":
            archive.set_status(key, "acquired")
        return report

    @staticmethod
    def _write(path: Path, position: ScanPosition, stack: np.ndarray, xy: tuple[float, float]) -> float:
        t0 = time.perf_counter()
        catalog.write_position(path, position.index, stack, xy)
        return time.perf_counter() - t0

    def _collect(self, pending: tuple[ScanPosition, Future], report: ScanReport) -> None:
        """Wait for a write (re-raising its failure), count it, and report progress."""
        position, future = pending
        t0 = time.perf_counter()
        report.write_work_s += future.result()
        report.write_s += time.perf_counter() - t0
        report.taken += 1
        report.elapsed_s = time.perf_counter() - self._started
        if self.on_progress:
            left = report.total - report.already_done - report.taken
            self.on_progress(ScanProgress(report.already_done + report.taken, report.total, position,
                                          report.elapsed_s, report.elapsed_s / report.taken * left))

    def _wait_if_paused(self, key: SampleKey) -> None:
        while True:
            if self._cancelled.is_set():
                raise ScanCancelled(f"scan of {key.name} cancelled; the positions taken are saved, "
                                    "run the same scan again to resume")
            if not self._paused.is_set():
                return
            time.sleep(0.02)

    def _take(self, position: ScanPosition, report: ScanReport) -> tuple[np.ndarray, tuple[float, float]]:
        """Move, settle and snap every focal layer of one position."""
        plan = self.plan
        stack = np.empty((plan.n_layers, plan.height, plan.width, 3), np.uint8)
        xy: tuple[float, float] = (position.x_mm, position.y_mm)
        for layer, z in enumerate(plan.focal_z_mm()):
            t0 = time.perf_counter()
            if layer == 0:
                self.stage.move_to(position.x_mm, position.y_mm, z)
                xy = tuple(self.stage.position()[:2])  # type: ignore[assignment]
            else:
                self.stage.move_to(z=z)
            if plan.settle_s:
                self.sleep(plan.settle_s)
            t1 = time.perf_counter()
            self.camera.flush()
            frame = self.camera.snap()
            t2 = time.perf_counter()
            report.stage_s += t1 - t0
            report.camera_s += t2 - t1
            if frame.shape != stack.shape[1:] or frame.dtype != np.uint8:
                raise CameraError(f"{self.camera.name} gives {frame.shape[1]}x{frame.shape[0]} {frame.dtype} frames; "
                                  f"the plan expects {plan.width}x{plan.height} uint8 RGB (set --frame or the camera resolution)")
            stack[layer] = frame
        return stack, xy


def prepare_sample(archive: Archive, key: SampleKey, plan: ScanPlan, *, devices: Mapping[str, Any] | None = None) -> Path:
    """Create the sample for ``plan``, or check that an existing one was started with the same plan."""
    settings = plan.as_recorded()
    if not archive.exists(key):
        path = archive.create_sample(key, plan.n_positions, plan.n_layers, plan.height, plan.width,
                                     focal_offsets_um=plan.focal_offsets_um, pixel_size_um=plan.pixel_size_um)
        catalog.record_stage(path, "acquire", settings, acquire_devices=dict(devices or {}))
        return path
    path = archive.sample_path(key)
    attrs = catalog.read_attrs(path)
    recorded = attrs.get("acquire_settings")
    if recorded is None:
        raise PlanError(f"sample {key.name} exists and was not made by a scan (ingested?); choose another depth or core")
    if recorded != settings:
        changed = ", ".join(sorted(k for k in set(recorded) | set(settings) if recorded.get(k) != settings.get(k)))
        if attrs.get("status", "acquiring") != "acquiring":
            raise PlanError(f"sample {key.name} is already {attrs.get('status')} (with another plan: {changed} differ); "
                            "choose another core or depth")
        raise PlanError(f"sample {key.name} was started with another plan ({changed} differ); "
                        "resume it with the same plan, or remove it first")
    if devices:
        catalog.update_attrs(path, acquire_devices=dict(devices))
    return path


def _stop_safely(stage: Stage) -> None:
    """Feed hold after a failure; a failure of the hold itself must not hide the first one."""
    try:
        stage.stop()
    except Exception:  # the link is already gone: nothing can move the stage now
        pass


def _stopped(err: AcquisitionError, key: SampleKey, position: ScanPosition, report: ScanReport) -> AcquisitionError:
    saved = report.already_done + report.taken
    message = (f"scan of {key.name} stopped at position {position.index + 1}/{report.total}: {err} "
               f"({saved} positions saved; fix the cause and run the same scan again to resume)")
    new = type(err).__new__(type(err))
    Exception.__init__(new, message)
    new.__dict__.update(err.__dict__)
    return new


def _clock(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}" if seconds >= 3600 else f"{seconds // 60}:{seconds % 60:02d}"
