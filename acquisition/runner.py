"""The scan runner: executes the messages of a :class:`~acquisition.plan.ScanPlan` on a stage and a camera.

It consumes ``plan.steps()`` (``plate``, ``move``, ``snap``) and owns timing, pausing, cancelling
and writing; its :class:`RunState` says where it is. Each position is moved to, settled, and
photographed at every focal layer; the whole stack, with the positions the stage reached, is then
written through the sinks (:mod:`acquisition.sinks`: the sample store, frames first and the
done-mark last), so a scan stopped at any moment - a stage alarm, a pulled cable, Ctrl-C, a power
cut - leaves only complete positions behind. The sample keeps ``status = acquiring`` until every
position is in, then becomes ``acquired``. Running the same plan on the same sample again resumes
at the first missing position. Before anything moves, the plan is checked against the limits a
:class:`~acquisition.devices.TravelLimited` stage enforces.
"""
from __future__ import annotations

import contextlib
import enum
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from catalog import Archive, SampleKey
from acquisition.devices import Camera, Stage, TravelLimited
from acquisition.errors import AcquisitionError, CameraError, PlanError, ScanCancelled
from acquisition.plan import ScanPlan, ScanPosition
from acquisition.sinks import PositionRecord, SampleSink, ScanSink, prepare_sample

__all__ = ["RunState", "ScanProgress", "ScanReport", "ScanRunner", "prepare_sample"]


class RunState(enum.Enum):
    """Where a :class:`ScanRunner` is."""

    READY = "ready"  # made, not run yet
    RUNNING = "running"
    PAUSED = "paused"  # between two positions, waiting for resume()
    DONE = "done"  # every position of the plan is in the sample
    CANCELLED = "cancelled"
    FAILED = "failed"  # a device, the plan or a write stopped it


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
        self.state = RunState.READY
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
    def check_limits(self) -> None:
        """Refuse a plan that leaves the limits the stage's controller enforces (before anything moves)."""
        limits = self.stage.travel_limits() if isinstance(self.stage, TravelLimited) else None
        if limits is None:
            return
        positions = self.plan.positions()
        zs = self.plan.focal_z_mm()
        for p in positions:
            for axis, value, (lo, hi) in (("x", p.x_mm, limits[0]), ("y", p.y_mm, limits[1])):
                if not lo - 1e-6 <= value <= hi + 1e-6:
                    raise PlanError(f"position {p.index + 1}/{len(positions)} (plate {p.plate + 1}) needs {axis} = "
                                    f"{value:g} mm, outside the soft limits of {self.stage.name} ({axis} {lo:g}..{hi:g} mm "
                                    "in work coordinates); the controller would stop there with an alarm")
        lo, hi = limits[2]
        if min(zs) < lo - 1e-6 or max(zs) > hi + 1e-6:
            raise PlanError(f"focal heights {min(zs):g}..{max(zs):g} mm leave the soft limits of {self.stage.name} "
                            f"(z {lo:g}..{hi:g} mm in work coordinates); the controller would stop with an alarm")

    def run(self, archive: Archive, key: SampleKey, *, devices: Mapping[str, Any] | None = None,
            sinks: Sequence[ScanSink] = ()) -> ScanReport:
        """Scan into sample ``key`` (created if new, resumed if started with the same plan).

        Each complete stack is written by a background writer, through the sample store and then
        ``sinks``, while the stage moves on to the next position (in position order; the runner
        waits for a write before handing over the one after it); whatever stops the scan, stacks
        already handed over are written first, so no complete position is lost.
        """
        self.plan.check()
        self.check_limits()
        sample = SampleSink(archive, key, self.plan, devices=devices)
        done = sample.open()
        outputs: list[ScanSink] = [sample, *sinks]
        for sink in sinks:
            sink.begin(sample.path, self.plan)  # type: ignore[arg-type]
        report = ScanReport(key.name, sample.path, 0, int(done.sum()), self.plan.n_positions)  # type: ignore[arg-type]
        self._started = time.perf_counter()
        self.state = RunState.RUNNING
        failed: BaseException | None = None
        try:
            self._steps(key, done, outputs, report)
        except BaseException as err:
            failed = err
            self.state = RunState.CANCELLED if isinstance(err, (ScanCancelled, KeyboardInterrupt)) else RunState.FAILED
            raise
        finally:
            for sink in reversed(outputs):
                if failed is None:
                    sink.end()
                else:
                    with contextlib.suppress(Exception):  # the first failure is the one to tell
                        sink.end()
            report.elapsed_s = time.perf_counter() - self._started
        self.state = RunState.DONE
        return report

    def _steps(self, key: SampleKey, done: np.ndarray, outputs: list[ScanSink], report: ScanReport) -> None:
        """Execute ``plan.steps()``: prompt at plates, move and snap at positions not done yet."""
        prompted = 0  # the plate loaded (the first one is there when the scan starts)
        plate = 0
        take: _Take | None = None
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="scan-writer") as writer:
            pending: deque[tuple[ScanPosition, Future]] = deque()
            try:
                for kind, value in self.plan.steps():
                    if kind == "plate":
                        plate = value
                    elif kind == "move":
                        if take is not None:
                            self._hand_over(take, outputs, writer, pending, report)
                            take = None
                        if done[value.index]:
                            continue
                        self._wait_if_paused(key)
                        if plate != prompted:
                            prompted = plate
                            if self.on_plate:
                                self.on_plate(plate, len(self.plan.plates))
                        take = _Take(value, np.empty((self.plan.n_layers, self.plan.height, self.plan.width, 3), np.uint8))
                    elif kind == "snap" and take is not None:
                        self._snap(take, *value, report)
                if take is not None:
                    self._hand_over(take, outputs, writer, pending, report)
                    take = None
                while pending:
                    self._collect(pending.popleft(), report)
            except BaseException as err:
                _stop_safely(self.stage)
                while pending:  # complete stacks already handed over are written all the same
                    with contextlib.suppress(BaseException):  # the first failure is the one to tell
                        self._collect(pending.popleft(), report)
                report.elapsed_s = time.perf_counter() - self._started
                if isinstance(err, AcquisitionError) and not isinstance(err, ScanCancelled) and take is not None:
                    saved = report.already_done + report.taken
                    raise err.reworded(
                        f"scan of {key.name} stopped at position {take.position.index + 1}/{report.total}: {err} "
                        f"({saved} position{'' if saved == 1 else 's'} saved; fix the cause and run the same scan "
                        "again to resume)")
                raise

    def _hand_over(self, take: _Take, outputs: list[ScanSink], writer: ThreadPoolExecutor,
                   pending: deque[tuple[ScanPosition, Future]], report: ScanReport) -> None:
        record = PositionRecord(take.position, take.stack, take.xy, tuple(take.z))
        pending.append((take.position, writer.submit(_write, outputs, record)))
        while len(pending) > 1:  # the one before: wait for it, so that one write overlaps the next take
            self._collect(pending.popleft(), report)

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
                self.state = RunState.RUNNING
                return
            self.state = RunState.PAUSED
            time.sleep(0.02)

    def _snap(self, take: _Take, layer: int, z: float, report: ScanReport) -> None:
        """Move to one focal layer (and, for the position's first, to the position), settle, and snap."""
        plan, position = self.plan, take.position
        t0 = time.perf_counter()
        first = not take.arrived  # the first snap of a position moves there, the others change focus only
        reached = self.stage.move_to(position.x_mm, position.y_mm, z) if first else self.stage.move_to(z=z)
        if reached is None:
            reached = self.stage.position()
        if first:
            take.xy = (float(reached[0]), float(reached[1]))
            take.arrived = True
        take.z[layer] = float(reached[2])
        if plan.settle_s:
            self.sleep(plan.settle_s)
        t1 = time.perf_counter()
        self.camera.flush()
        frame = self.camera.snap()
        t2 = time.perf_counter()
        report.stage_s += t1 - t0
        report.camera_s += t2 - t1
        if frame.shape != take.stack.shape[1:] or frame.dtype != np.uint8:
            raise CameraError(f"{self.camera.name} gives {frame.shape[1]}x{frame.shape[0]} {frame.dtype} frames; "
                              f"the plan expects {plan.width}x{plan.height} uint8 RGB (set --frame or the camera resolution)")
        take.stack[layer] = frame


class _Take:
    """The position being photographed: its stack so far and where the stage was."""

    def __init__(self, position: ScanPosition, stack: np.ndarray):
        self.position, self.stack = position, stack
        self.xy: tuple[float, float] = (position.x_mm, position.y_mm)
        self.z = [float("nan")] * len(stack)
        self.arrived = False


def _write(outputs: list[ScanSink], record: PositionRecord) -> float:
    t0 = time.perf_counter()
    for sink in outputs:
        sink.write(record)
    return time.perf_counter() - t0


def _stop_safely(stage: Stage) -> None:
    """Stop the stage after a failure; a failure of the stop itself must not hide the first one."""
    try:
        stage.stop()
    except Exception:  # the link is already gone: nothing can move the stage now
        pass


def _clock(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}" if seconds >= 3600 else f"{seconds // 60}:{seconds % 60:02d}"
