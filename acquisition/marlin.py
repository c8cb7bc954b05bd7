"""A stage driven by Marlin-style firmware (3D-printer boards used as lab stages).

Marlin answers every line with ``ok``; ``M400`` is answered only once all moves have finished (the
way to wait for motion), ``M114`` reports ``X:.. Y:.. Z:.. E:..`` before its ``ok``; ``echo:busy``
lines say a long command is still running; ``Error:`` lines refuse a command, and
``Error:Printer halted`` / ``!!`` mean the firmware stopped itself (treated as an alarm).
There is no soft reset byte: ``M410`` (quick stop) stops motion.
"""
from __future__ import annotations

import re
import time
from typing import Any

from acquisition.errors import StageAlarm, StageError, StageTimeout
from acquisition.serial_link import SerialLink

_M114_RE = re.compile(r"X:\s*(-?[\d.]+)\s+Y:\s*(-?[\d.]+)\s+Z:\s*(-?[\d.]+)")


class MarlinStage:
    """An XYZ stage on a Marlin-style controller; same parameters as :class:`~acquisition.grbl.GrblStage`."""

    dialect = "marlin"

    def __init__(
        self,
        port: Any,
        *,
        baudrate: int = 115200,
        home: bool = False,
        feed_mm_min: float = 3000.0,
        reply_timeout_s: float = 5.0,
        move_timeout_s: float = 120.0,
        banner_timeout_s: float = 10.0,
        unlock: bool = False,  # accepted for symmetry with GRBL; Marlin has no alarm lock
    ):
        self.link = SerialLink(port, baudrate=baudrate)
        self.name = f"Marlin stage on {self.link.name}"
        self.home_on_connect = home
        self.feed_mm_min = feed_mm_min
        self.reply_timeout_s = reply_timeout_s
        self.move_timeout_s = move_timeout_s
        self.banner_timeout_s = banner_timeout_s
        self.firmware: str | None = None

    def __enter__(self) -> MarlinStage:
        self.connect()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def connect(self) -> None:
        """Ask ``M115`` until the board answers (it reboots when the port opens), then G90 G21."""
        self.link.open()
        deadline = time.monotonic() + self.banner_timeout_s
        while self.firmware is None:
            if time.monotonic() > deadline:
                raise StageTimeout(f"{self.name}: no answer to M115 within {self.banner_timeout_s:g} s "
                                   f"(is it a Marlin board, powered, at {self.link.baudrate} baud?)")
            try:
                lines = self.command("M115", timeout_s=1.0)
            except StageTimeout:
                continue
            self.firmware = next((ln for ln in lines if ln.startswith("FIRMWARE_NAME")), "unknown firmware")
        if self.home_on_connect:
            self.home()
        self.command("G90")
        self.command("G21")

    def close(self) -> None:
        self.link.close()

    def command(self, line: str, timeout_s: float | None = None) -> list[str]:
        """Send a line, wait for ``ok`` (``echo:busy`` extends the wait); return the other lines."""
        self.link.write(line.encode("ascii") + b"\n")
        timeout = self.reply_timeout_s if timeout_s is None else timeout_s
        deadline = time.monotonic() + timeout
        extra: list[str] = []
        while True:
            reply = self.link.read_line(max(deadline - time.monotonic(), 0.0))
            if reply is None:
                raise StageTimeout(f"{self.name}: no reply to {line!r} within {timeout:g} s")
            if reply.startswith("ok"):
                return extra
            if reply.startswith("echo:busy"):
                deadline = time.monotonic() + timeout
                continue
            if "halted" in reply or reply.startswith("!!"):
                raise StageAlarm(f"{self.name} halted during {line!r}: {reply}; reset the board")
            if reply.startswith("Error:"):
                raise StageError(f"{self.name} refused {line!r}: {reply}")
            if reply.startswith("echo:Unknown command"):
                raise StageError(f"{self.name} does not know {line!r}: {reply}")
            extra.append(reply)

    def home(self) -> None:
        self.command("G28", timeout_s=self.move_timeout_s)

    def move_to(self, x: float | None = None, y: float | None = None, z: float | None = None) -> None:
        words = [f"{axis}{value:.4f}" for axis, value in (("X", x), ("Y", y), ("Z", z)) if value is not None]
        if not words:
            return
        self.command(f"G0 {' '.join(words)} F{self.feed_mm_min:g}")
        self.command("M400", timeout_s=self.move_timeout_s)

    def position(self) -> tuple[float, float, float]:
        for line in self.command("M114"):
            m = _M114_RE.search(line)
            if m:
                return float(m.group(1)), float(m.group(2)), float(m.group(3))
        raise StageError(f"{self.name}: M114 gave no position")

    def stop(self) -> None:
        try:
            self.link.write(b"M410\n")
        except StageError:
            pass
