"""The Marlin 2 dialect (3D-printer boards used as lab stages), following Marlin's documented G-code.

- **connect**: the board reboots when the port opens; ``M115`` is asked until it answers
  (``FIRMWARE_NAME:...``). ``--unlock`` sends ``M999 S1`` first, which takes a board out of the
  *stopped* state (``Error:Printer stopped due to errors ... use M999 to restart``). A *halted*
  board (``Error:Printer halted. kill() called!``, after ``M112`` or a fatal error) answers
  nothing more: it needs its reset button or a power cycle.
- every line is answered ``ok`` (Marlin may append ``N.. P.. B..``); a refusal (``Error:...``,
  ``echo:Unknown command: "..."``) comes *before* that ``ok``, which the driver still reads.
  ``G21`` is an unknown command on boards built without ``INCH_MODE_SUPPORT`` (then mm is the
  only unit): that refusal is accepted.
- **moves**: one ``G0`` line with ``F``, then ``M400``, answered only once every move has
  finished; ``echo:busy: processing`` (``HOST_KEEPALIVE_FEATURE``, every 2 s) keeps the wait
  alive. Then ``M114`` (``X:10.00 Y:20.00 Z:5.00 E:0.00 Count X:... Y:... Z:...``, the first
  three values) must be the target: Marlin's software endstops clamp a target silently.
- **limits**: ``M211`` reports the software endstops (``M211 S1 ; ON`` and ``Min: X0.00 Y0.00
  Z0.00 Max: X200.00 ...``); with them on, a plan is checked against them before anything moves.
- **stop**: ``M410`` (quick stop; immediate only with ``EMERGENCY_PARSER``, otherwise it waits
  its turn in the command queue).
"""
from __future__ import annotations

import re
import time
from typing import Any

from acquisition.errors import StageError, StageTimeout
from acquisition.gcode import GcodeStage, Position, Reply

_M114_RE = re.compile(r"X:\s*(-?[\d.]+)\s+Y:\s*(-?[\d.]+)\s+Z:\s*(-?[\d.]+)")
_M211_RE = re.compile(r"(Min|Max):\s*X\s*(-?[\d.]+)\s*Y\s*(-?[\d.]+)\s*Z\s*(-?[\d.]+)")
STOPPED = "Printer stopped due to errors"


class MarlinDialect:
    """What Marlin 2 does its own way."""

    name = "Marlin"

    def __init__(self, *, unlock: bool = False, banner_timeout_s: float = 10.0):
        self.unlock_on_connect = unlock
        self.banner_timeout_s = banner_timeout_s
        self.firmware: str | None = None

    def classify(self, stage: GcodeStage, line: str) -> tuple[Reply, str]:
        if line.startswith("ok"):
            return Reply.OK, line
        if "busy:" in line:
            return Reply.BUSY, line
        if "halted" in line or "kill()" in line or line.startswith("!!"):
            return Reply.ALARM, f"{line} (the board is halted: press its reset button or power-cycle it)"
        if STOPPED in line:
            return Reply.ALARM, f"{line} (the board is stopped: --unlock sends M999 S1)"
        if line.startswith("Error:"):
            return Reply.REFUSED_THEN_OK, line
        if line.startswith("echo:Unknown command"):
            return Reply.REFUSED_THEN_OK, f"unknown command ({line})"
        if line == "start":
            return Reply.RESET, line
        return Reply.OTHER, line

    def handshake(self, stage: GcodeStage) -> None:
        self.firmware = None
        deadline = time.monotonic() + self.banner_timeout_s
        while self.firmware is None:
            if time.monotonic() > deadline:
                raise StageTimeout(f"{stage.name}: no answer to M115 within {self.banner_timeout_s:g} s "
                                   f"(is it a Marlin board, powered, at {stage.link.baudrate} baud?)")
            try:
                lines = stage.command("M115", timeout_s=1.0)
            except StageTimeout:
                continue
            except StageError as err:  # "start" of the reboot the port's opening caused
                if "reset itself" in str(err):
                    continue
                raise
            self.firmware = next((ln for ln in lines if ln.startswith("FIRMWARE_NAME")), "unknown firmware")
        stage.messages.extend(stage.link.drain(0.05))
        if self.unlock_on_connect:
            stage.command("M999 S1")

    def prepare(self, stage: GcodeStage) -> None:
        stage.command("G90")
        try:
            stage.command("G21")
        except StageError as err:
            if "unknown command" not in str(err):
                raise  # built without INCH_MODE_SUPPORT: mm is the only unit

    def home(self, stage: GcodeStage) -> None:
        stage.command("G28", timeout_s=stage.move_timeout_s, during="homing (G28)")

    def wait_for_moves(self, stage: GcodeStage, during: str) -> None:
        stage.command("M400", timeout_s=stage.move_timeout_s, during=during)

    def read_position(self, stage: GcodeStage) -> Position:
        for line in stage.command("M114"):
            m = _M114_RE.search(line)
            if m:
                return float(m.group(1)), float(m.group(2)), float(m.group(3))
        raise StageError(f"{stage.name}: M114 gave no position")

    def tolerance_mm(self, stage: GcodeStage) -> tuple[float, float, float]:
        return (0.0101, 0.0101, 0.0101)  # M114 prints two decimals

    def travel_limits(self, stage: GcodeStage) -> tuple[tuple[float, float], ...] | None:
        """The software endstops from ``M211``; ``None`` when they are off or unknown."""
        try:
            text = " ".join(stage.command("M211"))
        except StageError:
            return None  # a build without M211
        if not re.search(r"S1\b|\bON\b|: On\b", text, re.IGNORECASE):
            return None
        found = {m.group(1): tuple(float(v) for v in m.groups()[1:]) for m in _M211_RE.finditer(text)}
        if set(found) != {"Min", "Max"}:
            return None
        return tuple(zip(found["Min"], found["Max"]))  # type: ignore[return-value]

    def stop(self, stage: GcodeStage) -> None:
        stage.link.write(b"M410\n")


class MarlinStage(GcodeStage):
    """An XYZ stage on a Marlin 2 board; parameters as :class:`~acquisition.grbl.GrblStage`.

    ``unlock`` sends ``M999 S1`` at connect (leaves the stopped state); Marlin has no alarm lock.
    """

    def __init__(self, port: Any, *, baudrate: int = 115200, home: bool = False, feed_mm_min: float | None = 3000.0,
                 reply_timeout_s: float = 5.0, move_timeout_s: float = 120.0, banner_timeout_s: float = 10.0,
                 unlock: bool = False):
        self.marlin = MarlinDialect(unlock=unlock, banner_timeout_s=banner_timeout_s)
        super().__init__(port, self.marlin, baudrate=baudrate, home=home, feed_mm_min=feed_mm_min or 3000.0,
                         reply_timeout_s=reply_timeout_s, move_timeout_s=move_timeout_s)

    @property
    def firmware(self) -> str | None:
        return self.marlin.firmware

    def motion_line(self, x: float | None, y: float | None, z: float | None) -> str | None:
        words = [f"{axis}{value:.4f}" for axis, value in (("X", x), ("Y", y), ("Z", z)) if value is not None]
        return f"G0 {' '.join(words)} F{self.feed_mm_min:g}" if words else None

    def travel_limits(self) -> tuple[tuple[float, float], ...] | None:
        return self.marlin.travel_limits(self)

    def describe(self) -> dict[str, Any]:
        return {"firmware": self.firmware}
