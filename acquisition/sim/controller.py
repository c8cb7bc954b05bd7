"""A simulated stage controller on a pseudo-terminal, speaking GRBL 1.1h (or Marlin 2) like the real board.

The real drivers and pyserial talk to it through the pty's device path, so what is tested is the
whole serial path. This module is the board: the pty, the serial loop, the clock, the stage's
:class:`~acquisition.sim.motion.Motion`, replies held until the planner is empty, and the
:class:`Fault` s that inject what goes wrong on a real stage (an alarm in the middle of a move, a
reply that never comes, a cable pulled out, a refused line). The firmware is a dialect object
(:class:`~acquisition.sim.grbl_dialect.GrblFirmware`,
:class:`~acquisition.sim.marlin_dialect.MarlinFirmware`) that uses only the public methods here.

Time: the controller keeps its own clock, ``time_scale`` simulated seconds per real second (or an
injected ``clock``), so tests of GRBL's 500 ms alarm delay or a long move need not sleep as long.
The true stage position (:attr:`SimulatedController.position`) is what the simulated camera
photographs.
"""
from __future__ import annotations

import os
import re
import select
import threading
import time
import tty
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from acquisition.sim.motion import Motion

FAULT_KINDS = ("alarm", "silence", "drop", "error", "garble", "lost_query")


@dataclass(frozen=True)
class Fault:
    """A fault that fires on the ``at_move``-th motion command (1-based, counted over the controller's life).

    ``alarm``: the move starts, then ``ALARM:code`` halfway (code 1: hard limit; Marlin: code 112
    halts the board, others stop it until ``M999``); ``silence``: the line is swallowed without a
    reply; ``drop``: the port goes away; ``error``: the line is refused with ``error:code``;
    ``garble``: the first status report (GRBL) or position (Marlin) after the move is corrupted;
    ``lost_query``: the first ``?`` after the move is lost on the line (GRBL).
    """

    kind: str
    at_move: int
    code: int = 1

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault {self.kind!r}; expected one of {', '.join(FAULT_KINDS)}")

    @classmethod
    def parse(cls, text: str) -> Fault:
        """``"alarm@7"``, ``"error:22@3"``, ``"drop@10"``, ``"silence@4"``."""
        m = re.fullmatch(r"(\w+)(?::(\d+))?@(\d+)", text.strip())
        if not m:
            raise ValueError(f"fault {text!r} is not like alarm@7 or error:22@3")
        return cls(m.group(1), int(m.group(3)), int(m.group(2) or (1 if m.group(1) != "error" else 20)))


class SimulatedController:
    """A GRBL (or Marlin) stage controller behind a pseudo-terminal, run in a thread.

    Parameters
    ----------
    dialect
        ``"grbl"`` or ``"marlin"``.
    faults
        Faults to inject (see :class:`Fault`).
    speed_mm_s
        Maximum rate of every axis (GRBL ``$110-$112`` = 60 x this); also the default Marlin feed.
    travel_mm
        Axis travel (GRBL ``$130-$132``; Marlin's software endstops ``[0, travel]``).
    start_in_alarm
        Come up locked (as GRBL with homing enabled does), needing ``$H`` or ``$X``.
    homing, soft_limits, hard_limits
        GRBL ``$22``, ``$20`` (soft limits over machine ``[-$130, 0]``; needs homing), ``$21``.
    work_offset
        The G54 work offset (machine = work + offset), as set with ``G10 L2 P1``.
    steps_per_mm
        GRBL ``$100-$102``: positions are whole steps.
    settings
        Further GRBL settings, ``{13: 1}`` for reports in inches, ``{10: 0}`` for ``WPos`` reports.
    accel_mm_s2
        Deceleration of a feed hold or a jog cancel.
    start_delay_s
        Time between queueing a move and its start, while GRBL still reports ``Idle``.
    time_scale, clock
        Simulated seconds per real second, or a clock to use instead.

    Examples
    --------
    >>> with SimulatedController() as controller:
    ...     controller.port.startswith("/dev/")
    True
    """

    def __init__(
        self,
        *,
        dialect: str = "grbl",
        faults: Iterable[Fault] = (),
        speed_mm_s: float = 200.0,
        travel_mm: tuple[float, float, float] = (300.0, 300.0, 50.0),
        start_in_alarm: bool = False,
        homing: bool = True,
        soft_limits: bool = False,
        hard_limits: bool = False,
        work_offset: tuple[float, float, float] = (0.0, 0.0, 0.0),
        steps_per_mm: float | tuple[float, float, float] = 250.0,
        settings: Mapping[int, float] | None = None,
        accel_mm_s2: float = 2000.0,
        start_delay_s: float = 0.0,
        time_scale: float = 1.0,
        clock: Callable[[], float] | None = None,
    ):
        if dialect not in ("grbl", "marlin"):
            raise ValueError(f"unknown controller dialect {dialect!r}")
        self.dialect = dialect
        self.faults = list(faults)
        self.travel_mm = tuple(float(t) for t in travel_mm)
        self.motion = Motion(speed_mm_s, accel_mm_s2=accel_mm_s2, start_delay_s=start_delay_s)
        self.moves = 0
        self.lines: list[str] = []
        self.status_reports = 0
        self.port = ""
        self._real0 = time.monotonic()
        self._clock = clock or (lambda: (time.monotonic() - self._real0) * time_scale)
        self._deferred: list[tuple[str, float, float]] = []  # (reply, dwell s, when asked)
        self._backlog: list[str] = []  # lines received while a reply is held (GRBL and Marlin process one at a time)
        self._timers: list[tuple[float, Callable[[], None]]] = []
        self._fired: list[Fault] = []
        self._master: int | None = None
        self._slave: int | None = None
        self._thread: threading.Thread | None = None
        self._running = threading.Event()
        self.lock = threading.RLock()
        if dialect == "grbl":
            from acquisition.sim.grbl_dialect import GrblFirmware

            steps = steps_per_mm if isinstance(steps_per_mm, tuple) else (steps_per_mm,) * 3
            values = {20: int(soft_limits), 21: int(hard_limits), 22: int(homing or soft_limits)}
            values.update({100 + i: float(s) for i, s in enumerate(steps)})
            values.update({110 + i: speed_mm_s * 60.0 for i in range(3)})
            values.update({130 + i: t for i, t in enumerate(self.travel_mm)})
            values.update(dict(settings or {}))
            self.firmware = GrblFirmware(self, values, work_offset=work_offset, start_in_alarm=start_in_alarm)
        else:
            from acquisition.sim.marlin_dialect import MarlinFirmware

            self.firmware = MarlinFirmware(self, start_in_alarm=start_in_alarm)

    # -- life -----------------------------------------------------------------------------------
    def start(self) -> SimulatedController:
        self._master, self._slave = os.openpty()
        tty.setraw(self._slave)  # no echo, no line editing: bytes pass as a serial line would
        os.set_blocking(self._master, False)
        self.port = os.ttyname(self._slave)
        self._running.set()
        self._thread = threading.Thread(target=self._serve, name=f"sim-{self.dialect}", daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        self._running.clear()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=2)
        self._close_fds()

    def __enter__(self) -> SimulatedController:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def position(self) -> tuple[float, float, float]:
        """Where the stage truly is (machine coordinates, mm)."""
        with self.lock:
            return self.motion.position(self.now())

    @property
    def work_position(self) -> tuple[float, float, float]:
        """Where the stage truly is in the coordinates of the G54 work offset it was given (mm)."""
        offset = getattr(self.firmware, "g54", (0.0, 0.0, 0.0))
        x, y, z = self.position
        return x - offset[0], y - offset[1], z - offset[2]

    @property
    def alarm(self) -> int | None:
        """The alarm the controller is in (GRBL ``ALARM:N``; Marlin 112 halted, other codes stopped)."""
        return self.firmware.alarm

    @property
    def connected(self) -> bool:
        return self._master is not None

    def now(self) -> float:
        """The controller's clock (seconds)."""
        return self._clock()

    # -- what the firmware uses -----------------------------------------------------------------
    def send(self, text: str) -> None:
        """Send one line (with ``\\r\\n``)."""
        if self._master is None:
            return
        try:
            os.write(self._master, (text + "\r\n").encode("ascii"))
        except (BlockingIOError, OSError):
            pass  # nobody reads the port: the bytes are lost, as on a real line

    def defer(self, reply: str, dwell_s: float = 0.0) -> None:
        """Send ``reply`` once every queued move is done, ``dwell_s`` later; lines after it wait."""
        self._deferred.append((reply, float(dwell_s), self.now()))

    def take_deferred(self) -> list[str]:
        """Forget the held replies (a reset or an alarm), returning them."""
        replies = [d[0] for d in self._deferred]
        self._deferred.clear()
        return replies

    @property
    def waiting(self) -> bool:
        """A reply is held (the firmware is blocked on a line)."""
        return bool(self._deferred)

    def forget_backlog(self) -> None:
        """Drop the lines waiting behind a held reply (a reset clears the serial buffer)."""
        self._backlog.clear()

    def after(self, delay_s: float, action: Callable[[], None]) -> None:
        """Run ``action`` (with the lock held) ``delay_s`` seconds of controller time from now."""
        self._timers.append((self.now() + delay_s, action))

    def cancel_timers(self) -> None:
        self._timers.clear()

    def next_move(self) -> Fault | None:
        """Count a motion command; the fault to inject on it, if any (``drop`` and ``silence`` act here)."""
        self.moves += 1
        fault = next((f for f in self.faults if f.at_move == self.moves), None)
        if fault is not None and fault.kind == "drop":
            self._running.clear()
            self._close_fds()
        return fault

    def press_limit(self, axes: str) -> None:
        """Close the limit switches of ``axes`` (GRBL: ``Pn:``, and ``ALARM:1`` with ``$21=1``)."""
        with self.lock:
            self.firmware.press_limit(axes)

    def release_limit(self, axes: str) -> None:
        with self.lock:
            self.firmware.release_limit(axes)

    def query_fault(self, kind: str) -> bool:
        """Whether a ``garble`` or ``lost_query`` fault of a move already made fires now (once)."""
        for fault in self.faults:
            if fault.kind == kind and fault.at_move <= self.moves and fault not in self._fired:
                self._fired.append(fault)
                return True
        return False

    # -- the loop -------------------------------------------------------------------------------
    def _close_fds(self) -> None:
        for fd in (self._master, self._slave):
            if fd is not None:
                try:
                    os.close(fd)
                except OSError:
                    pass
        self._master = self._slave = None

    def _serve(self) -> None:
        line = bytearray()
        while self._running.is_set() and self._master is not None:
            try:
                ready, _, _ = select.select([self._master], [], [], 0.002)
            except (OSError, ValueError):
                break
            with self.lock:
                self._tick()
            if not ready:
                continue
            try:
                data = os.read(self._master, 4096)
            except BlockingIOError:
                continue
            except OSError:
                break
            for byte in data:
                with self.lock:
                    if self.firmware.realtime(byte):
                        continue
                if byte in (0x0A, 0x0D):
                    text = line.decode("ascii", errors="replace").strip()
                    line.clear()
                    if text or self.dialect == "grbl":
                        with self.lock:
                            self._receive(text)
                    if self._master is None:
                        return
                elif len(line) < 256:
                    line.append(byte)

    def _receive(self, text: str) -> None:
        if self._deferred or self._backlog:
            self._backlog.append(text)
            return
        self.lines.append(text)
        self.firmware.line(text)

    def _tick(self) -> None:
        now = self.now()
        for timer in [t for t in self._timers if t[0] <= now]:
            if timer in self._timers:
                self._timers.remove(timer)
                timer[1]()
        self.firmware.tick(now)
        if self._deferred and self.motion.idle(now):
            # a held reply goes once the planner is empty and its dwell has passed, counted from
            # when the last move ended (or from the line, if later), not from when this loop noticed
            while self._deferred:
                reply, dwell, asked = self._deferred[0]
                if max(asked, self.motion.finished_at) + dwell > now:
                    break
                self._deferred.pop(0)
                self.send(reply)
        while self._backlog and not self._deferred:
            text = self._backlog.pop(0)
            self.lines.append(text)
            self.firmware.line(text)
