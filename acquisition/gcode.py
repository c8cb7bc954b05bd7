"""One stage for every G-code controller: the send-and-wait loop, the lifecycle, moves and stops.

:class:`GcodeStage` owns the serial link and what all G-code firmwares share: one line at a
time, each answered ``ok`` (queued) or refused; unasked lines (alarms, reports, keep-alives) in
between; ``G90``/``G21`` at connect; a move is one ``G0``/``G1`` line, then a wait until the
controller has finished every queued move, then one reading of the position, which must be the
target (within the controller's resolution), or the move stops with a :class:`StageError`.
What differs between firmwares lives in a :class:`Dialect`: how replies read, how to wait for
motion, how to read the position, how to stop. The dialects are
:class:`~acquisition.grbl.GrblDialect` and :class:`~acquisition.marlin.MarlinDialect`.
"""
from __future__ import annotations

import enum
import time
from typing import Any, Protocol

from acquisition.errors import StageAlarm, StageError, StageTimeout
from acquisition.serial_link import SerialLink

Position = tuple[float, float, float]


class Reply(enum.Enum):
    """What a line from the controller is, as far as the send-and-wait loop cares."""

    OK = "ok"  # the awaited acknowledgement
    REFUSED = "refused"  # the command was refused; the refusal replaces the ok
    REFUSED_THEN_OK = "refused, ok follows"  # refused, and an ok still follows (Marlin)
    ALARM = "alarm"  # the machine stopped itself
    BUSY = "busy"  # keep-alive: the command is still running
    RESET = "reset"  # the controller restarted (its banner)
    OTHER = "other"  # a report or a message, kept


class Dialect(Protocol):
    """What one firmware family does its own way (see :class:`GcodeStage`)."""

    name: str

    def classify(self, stage: GcodeStage, line: str) -> tuple[Reply, str]:
        """What ``line`` is, and the text to put in an error message."""

    def handshake(self, stage: GcodeStage) -> None:
        """Wake the controller after the port opened and learn its settings."""

    def prepare(self, stage: GcodeStage) -> None:
        """Set absolute moves in mm (``G90``, ``G21``) after the handshake and homing."""

    def home(self, stage: GcodeStage) -> None:
        """Run the homing cycle."""

    def wait_for_moves(self, stage: GcodeStage, during: str) -> None:
        """Return once every queued move has finished (``during`` names the move for errors)."""

    def read_position(self, stage: GcodeStage) -> Position:
        """The work position in mm."""

    def tolerance_mm(self, stage: GcodeStage) -> tuple[float, float, float]:
        """How far a reached position may be from its target (the controller's resolution)."""

    def stop(self, stage: GcodeStage) -> None:
        """Stop motion now (never raises on a dead link)."""


class GcodeStage:
    """An XYZ stage on a G-code controller reached through ``port`` (device path, pyserial URL or open port).

    Parameters
    ----------
    port
        ``/dev/ttyUSB0``, ``COM3``, ``socket://192.168.1.20:23``, a pseudo-terminal path, or an
        open ``serial.Serial``.
    dialect
        The firmware family.
    home
        Run the homing cycle at connect.
    feed_mm_min
        Feed rate of moves; ``None`` moves with ``G0`` (rapid) where the dialect allows.
    reply_timeout_s, move_timeout_s
        How long to wait for an answer, and for a move to finish.
    """

    def __init__(self, port: Any, dialect: Dialect, *, baudrate: int = 115200, home: bool = False,
                 feed_mm_min: float | None = None, reply_timeout_s: float = 5.0, move_timeout_s: float = 120.0):
        self.link = SerialLink(port, baudrate=baudrate)
        self.dialect = dialect
        self.name = f"{dialect.name} stage on {self.link.name}"
        self.home_on_connect = home
        self.feed_mm_min = feed_mm_min
        self.reply_timeout_s = reply_timeout_s
        self.move_timeout_s = move_timeout_s
        self.messages: list[str] = []
        self.moves = 0
        self.last_reached: Position | None = None

    def __enter__(self) -> GcodeStage:
        self.connect()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- lifecycle ------------------------------------------------------------------------------
    def connect(self) -> None:
        """Open the link, wake the controller, home it when told, set absolute mm moves (G90 G21)."""
        self.link.open()
        self.dialect.handshake(self)
        if self.home_on_connect:
            self.home()
        self.dialect.prepare(self)

    def close(self) -> None:
        self.link.close()

    # -- the send-and-wait loop -----------------------------------------------------------------
    def command(self, line: str, timeout_s: float | None = None, *, during: str | None = None) -> list[str]:
        """Send one line and wait for its ``ok``; return the other lines that came meanwhile.

        ``during`` names what the line is part of in error messages (a move, for its wait).
        """
        self.link.write(line.encode("ascii") + b"\n")
        return self.await_ok(line, timeout_s, during=during)

    def await_ok(self, line: str, timeout_s: float | None = None, *, during: str | None = None,
                 on_wait: Any = None) -> list[str]:
        """Read until the ``ok`` of ``line``; ``on_wait()`` is called between reads (status polling)."""
        timeout = self.reply_timeout_s if timeout_s is None else timeout_s
        deadline = time.monotonic() + timeout
        extra: list[str] = []
        refusal: str | None = None
        while True:
            wait = max(deadline - time.monotonic(), 0.0)
            reply = self.link.read_line(min(wait, 0.05) if on_wait else wait)
            if on_wait is not None:
                on_wait()
            if reply is None:
                if time.monotonic() >= deadline:
                    raise StageTimeout(f"{self.name}: no reply to {line!r} within {timeout:g} s")
                continue
            kind, text = self.dialect.classify(self, reply)
            if kind is Reply.OK:
                if refusal is not None:
                    raise StageError(f"{self.name} refused {line!r}: {refusal}")
                return extra
            if kind is Reply.REFUSED:
                raise StageError(f"{self.name} refused {line!r}: {text}")
            if kind is Reply.REFUSED_THEN_OK:
                refusal = refusal or text
            elif kind is Reply.ALARM:
                raise self.alarm(text, during or line)
            elif kind is Reply.BUSY:
                deadline = time.monotonic() + timeout
            elif kind is Reply.RESET:
                raise StageError(f"{self.name} reset itself during {during or line!r} (power or cable?); "
                                 "position may be lost")
            else:
                extra.append(reply)

    def alarm(self, text: str, during: str) -> StageAlarm:
        """The error for an alarm that came while waiting for ``during``."""
        code = _alarm_code(text)
        return StageAlarm(f"{self.name}: {text} during {during!r}; motion stopped", code=code)

    # -- the Stage protocol ---------------------------------------------------------------------
    def home(self) -> None:
        self.dialect.home(self)

    def motion_line(self, x: float | None, y: float | None, z: float | None) -> str | None:
        words = [f"{axis}{value:.4f}" for axis, value in (("X", x), ("Y", y), ("Z", z)) if value is not None]
        if not words:
            return None
        if self.feed_mm_min is None:
            return f"G0 {' '.join(words)}"
        return f"G1 {' '.join(words)} F{self.feed_mm_min:g}"

    def move_to(self, x: float | None = None, y: float | None = None, z: float | None = None) -> Position | None:
        """Move, wait until every move is done, read the position once and check it; return it."""
        line = self.motion_line(x, y, z)
        if line is None:
            return None
        self.moves += 1
        self.command(line)
        self.dialect.wait_for_moves(self, line)
        reached = self.dialect.read_position(self)
        tolerance = self.dialect.tolerance_mm(self)
        for axis, want, got, tol in zip("XYZ", (x, y, z), reached, tolerance):
            if want is not None and not abs(got - want) <= tol:
                raise StageError(
                    f"{self.name} reports {axis} {got:.4f} mm after {line!r} (off by {got - want:+.4f} mm, more "
                    f"than its resolution {tol:.4f} mm): the move did not end where it was sent; check the "
                    "controller's units and limits"
                )
        self.last_reached = reached
        return reached

    def position(self) -> Position:
        return self.dialect.read_position(self)

    def stop(self) -> None:
        """Stop motion at once; safe to call at any time, also on a broken link."""
        try:
            self.dialect.stop(self)
        except StageError:
            pass  # the link is gone: nothing can move the stage now anyway


def _alarm_code(text: str) -> int | None:
    if text.startswith("ALARM:"):
        try:
            return int(text[6:].split()[0])
        except (IndexError, ValueError):
            return None
    return None
