"""A simulated stage controller on a pseudo-terminal, speaking GRBL 1.1 (or Marlin) like the real board.

The real drivers and pyserial talk to it through the pty's device path, so what is tested is the
whole serial path. Moves take time (``speed_mm_s``) and are reported ``Run`` until done; real-time
bytes (``?``, ``!``, ``~``, 0x18, 0x85) act at once. :class:`Fault` s inject what goes wrong on a
real stage: an alarm in the middle of a move, a reply that never comes, a cable pulled out, an
``error:N``. The true stage position (:attr:`SimulatedController.position`) is what the simulated
camera photographs.
"""
from __future__ import annotations

import os
import re
import select
import threading
import time
import tty
from collections.abc import Iterable
from dataclasses import dataclass

from acquisition.sim.motion import Motion

GRBL_BANNER = "Grbl 1.1h ['$' for help]"
_WORD_RE = re.compile(r"([A-Z])([-+]?(?:\d+\.?\d*|\.\d+))")
FAULT_KINDS = ("alarm", "silence", "drop", "error")


@dataclass(frozen=True)
class Fault:
    """A fault that fires on the ``at_move``-th motion command (1-based, counted over the controller's life).

    ``alarm``: the move starts, then ``ALARM:code`` halfway (code 1: hard limit);
    ``silence``: the line is swallowed without a reply; ``drop``: the port goes away;
    ``error``: the line is refused with ``error:code``.
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
        Speed of every move (rapid and feed alike).
    travel_mm
        Soft limits: positions must stay within [0, travel] on each axis (``ALARM:2`` otherwise).
    start_in_alarm
        Come up locked (as GRBL with homing enabled does), needing ``$H`` or ``$X``.
    homing
        Whether ``$H`` is available (``$22=1``).

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
    ):
        if dialect not in ("grbl", "marlin"):
            raise ValueError(f"unknown controller dialect {dialect!r}")
        self.dialect = dialect
        self.faults = list(faults)
        self.travel_mm = tuple(float(t) for t in travel_mm)
        self.homing = homing
        self.motion = Motion(speed_mm_s)
        self.moves = 0
        self.lines: list[str] = []
        self.alarm: int | None = 9 if start_in_alarm else None  # locked at power-up
        self._absolute = True
        self._inches = False
        self._feed: float | None = None
        self._deferred: list[tuple[str, float, float | None]] = []  # (reply, dwell s, due time)
        self._fault_at: float | None = None
        self._pending_alarm: int | None = None
        self._master: int | None = None
        self._slave: int | None = None
        self._thread: threading.Thread | None = None
        self._running = threading.Event()
        self._lock = threading.Lock()
        self.port = ""
        self.status_reports = 0

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
        """Where the stage truly is (mm)."""
        with self._lock:
            return self.motion.position(time.monotonic())

    @property
    def connected(self) -> bool:
        return self._master is not None

    def _close_fds(self) -> None:
        for fd in (self._master, self._slave):
            if fd is not None:
                try:
                    os.close(fd)
                except OSError:
                    pass
        self._master = self._slave = None

    # -- the loop -------------------------------------------------------------------------------
    def _serve(self) -> None:
        line = bytearray()
        while self._running.is_set() and self._master is not None:
            try:
                ready, _, _ = select.select([self._master], [], [], 0.002)
            except (OSError, ValueError):
                break
            with self._lock:
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
                if self.dialect == "grbl" and self._realtime(byte):
                    continue
                if byte in (0x0A, 0x0D):
                    text = line.decode("ascii", errors="replace").strip()
                    line.clear()
                    if text or self.dialect == "grbl":
                        with self._lock:
                            self._line(text)
                    if self._master is None:
                        return
                elif len(line) < 256:
                    line.append(byte)

    def _send(self, text: str) -> None:
        if self._master is None:
            return
        try:
            os.write(self._master, (text + "\r\n").encode("ascii"))
        except (BlockingIOError, OSError):
            pass  # nobody reads the port: the bytes are lost, as on a real line

    def _tick(self) -> None:
        now = time.monotonic()
        if self._fault_at is not None and now >= self._fault_at:
            self._fault_at = None
            self._raise_alarm(self._pending_alarm or 1)
        if self._deferred and self.motion.idle(now):
            # replies held until the queue is empty (G4 dwell, $H, M400), then for their dwell
            for i, (reply, dwell, due) in enumerate(self._deferred):
                if due is None:
                    self._deferred[i] = (reply, dwell, now + dwell)
            for item in [d for d in self._deferred if d[2] is not None and d[2] <= now]:
                self._deferred.remove(item)
                self._send(item[0])

    def _raise_alarm(self, code: int) -> None:
        self.motion.halt(time.monotonic())
        self._deferred.clear()
        self.alarm = code
        if self.dialect == "grbl":
            self._send(f"ALARM:{code}")
            if code == 1:
                self._send("[MSG:Reset to continue]")
        else:
            self._send("Error:Printer halted. kill() called!")

    # -- GRBL real-time bytes -------------------------------------------------------------------
    def _realtime(self, byte: int) -> bool:
        now = time.monotonic()
        with self._lock:
            if byte == 0x3F:  # ?
                self.status_reports += 1
                self._send(self._status_report(now))
            elif byte == 0x21:  # ! feed hold
                self.motion.hold(now)
            elif byte == 0x7E:  # ~ cycle start
                self.motion.resume(now)
            elif byte == 0x18:  # soft reset
                self._soft_reset(now)
            elif byte == 0x85:  # jog cancel
                if self.motion.jogging:
                    self.motion.halt(now)
            elif byte >= 0x80:
                pass  # overrides and other extended real-time commands: accepted, no effect here
            else:
                return False
        return True

    def _soft_reset(self, now: float) -> None:
        if not self.motion.idle(now) and self.alarm is None:
            self.alarm = 3
            self._send("ALARM:3")
        self.motion.halt(now)
        self._deferred.clear()
        self._fault_at = None
        self._absolute, self._inches = True, False
        self._send("")
        self._send(GRBL_BANNER)
        if self.alarm is not None:
            self._send("[MSG:'$H'|'$X' to unlock]")

    def _status_report(self, now: float) -> str:
        x, y, z = self.motion.position(now)
        if self.alarm is not None:
            state = "Alarm"
        elif self.motion.held:
            state = "Hold:0"
        elif self.motion.idle(now):
            state = "Idle"
        else:
            state = "Jog" if self.motion.jogging else "Run"
        report = f"<{state}|MPos:{x:.3f},{y:.3f},{z:.3f}|FS:{0 if state == 'Idle' else int(self._feed or 0)},0"
        if self.status_reports % 10 == 1:
            report += "|WCO:0.000,0.000,0.000"
        return report + ">"

    # -- lines ----------------------------------------------------------------------------------
    def _line(self, text: str) -> None:
        self.lines.append(text)
        if self.dialect == "marlin":
            from acquisition.sim.marlin_dialect import marlin_line

            marlin_line(self, text)
            return
        text = re.sub(r"\(.*?\)|;.*$", "", text).replace(" ", "").upper()
        if not text:
            self._send("ok")
        elif text.startswith("$"):
            self._system(text)
        elif self.alarm is not None:
            self._send("error:9")
        else:
            self._gcode(text)

    def _system(self, text: str) -> None:
        if text == "$X":
            self.alarm = None
            self._send("[MSG:Caution: Unlocked]")
            self._send("ok")
        elif text == "$H":
            if not self.homing:
                self._send("error:5")
                return
            self.alarm = None
            self.motion.home(time.monotonic())
            self._deferred.append(("ok", 0.0, None))
        elif text == "$I":
            self._send("[VER:1.1h.20190825:sim]")
            self._send("[OPT:V,15,128]")
            self._send("ok")
        elif text == "$$":
            for setting in ("$20=1", f"$22={int(self.homing)}", "$110=12000.000", "$111=12000.000", "$112=3000.000",
                            f"$130={self.travel_mm[0]:.3f}", f"$131={self.travel_mm[1]:.3f}", f"$132={self.travel_mm[2]:.3f}"):
                self._send(setting)
            self._send("ok")
        elif text.startswith("$J="):
            if self.alarm is not None:
                self._send("error:9")
            else:
                self._gcode(text[3:], jog=True)
        else:
            self._send("error:3")

    def _gcode(self, text: str, jog: bool = False) -> None:
        words = _WORD_RE.findall(text)
        if "".join(letter + number for letter, number in words) != text:
            self._send("error:1" if not text[:1].isalpha() else "error:2")
            return
        target: dict[str, float] = {}
        motion, dwell = None, None
        absolute = self._absolute
        for letter, number in words:
            value = float(number)
            if letter == "G":
                code = value
                if code in (0, 1):
                    motion = int(code)
                elif code == 4:
                    dwell = 0.0
                elif code in (90, 91):
                    absolute = code == 90
                    if not jog:
                        self._absolute = absolute
                elif code in (20, 21):
                    self._inches = code == 20
                elif code in (17, 54, 94, 40, 49, 80):
                    pass
                else:
                    self._send("error:20")
                    return
            elif letter == "M":
                if value not in (0, 1, 2, 30, 3, 4, 5, 7, 8, 9):
                    self._send("error:20")
                    return
            elif letter in "XYZ":
                target[letter] = value * (25.4 if self._inches else 1.0)
            elif letter == "F":
                self._feed = value
            elif letter == "P":
                dwell = value
            elif letter == "N":
                pass
            else:
                self._send("error:20")
                return
        if dwell is not None:
            self._deferred.append(("ok", dwell, None))
            return
        if not target:
            self._send("ok")
            return
        if motion == 1 and self._feed is None:
            self._send("error:22")
            return
        self._move(target, absolute, jog)

    def _move(self, target: dict[str, float], absolute: bool, jog: bool) -> None:
        self.moves += 1
        fault = next((f for f in self.faults if f.at_move == self.moves), None)
        if fault is not None and fault.kind == "silence":
            return
        if fault is not None and fault.kind == "drop":
            self._running.clear()
            self._close_fds()
            return
        if fault is not None and fault.kind == "error":
            self._send(f"error:{fault.code}" if self.dialect == "grbl" else f"Error:simulated fault {fault.code}")
            return
        now = time.monotonic()
        current = self.motion.target()
        goal = tuple(
            (target[a] if absolute else current[i] + target[a]) if a in target else current[i]
            for i, a in enumerate("XYZ")
        )
        if any(not 0.0 - 1e-9 <= g <= t + 1e-9 for g, t in zip(goal, self.travel_mm)):
            if jog:
                self._send("error:15")
            else:
                self._raise_alarm(2)
            return
        duration = self.motion.queue(goal, now, jog=jog)
        self._send("ok")
        if fault is not None and fault.kind == "alarm":
            self._pending_alarm = fault.code
            self._fault_at = now + duration / 2
