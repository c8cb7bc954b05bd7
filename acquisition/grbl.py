"""A stage driven by a GRBL controller (GRBL 1.1 and compatibles: grblHAL, FluidNC in GRBL mode).

The protocol, as this driver speaks it:

- on connect, a soft reset (0x18) and the banner ``Grbl 1.1h ['$' for help]``; a controller that
  comes up locked (``[MSG:'$H'|'$X' to unlock]``, state ``Alarm``) is homed (``$H``) or unlocked
  (``$X``) only when told to, otherwise the connection stops with :class:`StageAlarm`;
- ``G90`` and ``G21`` (absolute moves in mm), then one ``G0``/``G1`` line per move, each answered
  ``ok`` (queued) or ``error:N`` (refused; the message gives the code's meaning);
- after a move, ``?`` status reports (``<Run|MPos:...>``) are polled until the state is ``Idle``;
- ``ALARM:N`` may arrive at any moment and stops the scan;
- real-time bytes without newline: ``!`` feed hold, ``~`` resume, 0x18 soft reset, 0x85 jog cancel;
- a reply that does not come in time raises :class:`StageTimeout`, a vanished port
  :class:`StageDisconnected`.
"""
from __future__ import annotations

import re
import time
from typing import Any

from acquisition.errors import StageAlarm, StageError, StageTimeout
from acquisition.grbl_codes import alarm_meaning, error_meaning
from acquisition.serial_link import SerialLink

FEED_HOLD = b"!"
CYCLE_START = b"~"
SOFT_RESET = b"\x18"
JOG_CANCEL = b"\x85"
STATUS_QUERY = b"?"

_STATUS_RE = re.compile(r"^<([^|>]+)(.*)>$")


def parse_status(line: str) -> tuple[str, dict[str, tuple[float, ...]]]:
    """Split a GRBL 1.1 status report into its state and fields.

    Examples
    --------
    >>> parse_status("<Idle|MPos:1.000,2.500,-0.050|FS:0,0>")
    ('Idle', {'MPos': (1.0, 2.5, -0.05), 'FS': (0.0, 0.0)})
    >>> parse_status("<Hold:0|WPos:0.000,0.000,0.000>")[0]
    'Hold:0'
    """
    m = _STATUS_RE.match(line.strip())
    if not m:
        raise ValueError(f"not a GRBL status report: {line!r}")
    fields: dict[str, tuple[float, ...]] = {}
    for part in m.group(2).split("|")[1:]:
        name, _, values = part.partition(":")
        try:
            fields[name] = tuple(float(v) for v in values.split(",") if v != "")
        except ValueError:
            continue  # fields such as Pn:XYZ carry letters; not needed here
    return m.group(1), fields


class GrblStage:
    """An XYZ stage on a GRBL controller, reached through ``port`` (device path, pyserial URL or open port).

    Parameters
    ----------
    port
        ``/dev/ttyUSB0``, ``COM3``, ``socket://192.168.1.20:23``, a pseudo-terminal path, or an open
        ``serial.Serial``.
    unlock
        Send ``$X`` when the controller reports an alarm lock at connect (only when told: an alarm
        means the machine position may be wrong).
    home
        Run ``$H`` at connect (stages with limit switches and ``$22=1``).
    feed_mm_min
        Feed rate of moves; ``None`` moves with ``G0`` (rapid).
    reply_timeout_s, move_timeout_s, banner_timeout_s
        How long to wait for ``ok``, for a move to finish, and for the banner after the reset.
    poll_interval_s
        Pause between two ``?`` status queries while a move runs.
    """

    dialect = "grbl"

    def __init__(
        self,
        port: Any,
        *,
        baudrate: int = 115200,
        unlock: bool = False,
        home: bool = False,
        feed_mm_min: float | None = None,
        reply_timeout_s: float = 5.0,
        move_timeout_s: float = 120.0,
        banner_timeout_s: float = 5.0,
        poll_interval_s: float = 0.05,
    ):
        self.link = SerialLink(port, baudrate=baudrate)
        self.name = f"GRBL stage on {self.link.name}"
        self.unlock_on_connect = unlock
        self.home_on_connect = home
        self.feed_mm_min = feed_mm_min
        self.reply_timeout_s = reply_timeout_s
        self.move_timeout_s = move_timeout_s
        self.banner_timeout_s = banner_timeout_s
        self.poll_interval_s = poll_interval_s
        self.banner: str | None = None
        self.messages: list[str] = []
        self._wco = (0.0, 0.0, 0.0)
        self._last_position: tuple[float, float, float] | None = None

    def __enter__(self) -> GrblStage:
        self.connect()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- connection -----------------------------------------------------------------------------
    def connect(self) -> None:
        """Reset the controller, wait for its banner, deal with an alarm lock, set G90 G21."""
        self.link.open()
        self.banner = None
        self.link.write(SOFT_RESET)
        deadline = time.monotonic() + self.banner_timeout_s
        while self.banner is None:
            line = self.link.read_line(max(deadline - time.monotonic(), 0.0))
            if line is None:
                raise StageTimeout(
                    f"{self.name}: no GRBL banner within {self.banner_timeout_s:g} s after a reset "
                    f"(is it a GRBL controller, powered, at {self.link.baudrate} baud?)"
                )
            if line.startswith("Grbl") or line.startswith("GrblHAL"):
                self.banner = line
        self.messages.extend(self.link.drain(0.05))
        state, _ = self.status()
        if state.startswith("Alarm"):
            if self.home_on_connect:
                self.home()
            elif self.unlock_on_connect:
                self.unlock()
            else:
                raise StageAlarm(
                    f"{self.name} is locked in alarm state ({'; '.join(self.messages) or state}); "
                    "home it (--home) or, if its position is known to be right, unlock it (--unlock)"
                )
        elif self.home_on_connect:
            self.home()
        self.command("G90")
        self.command("G21")

    def close(self) -> None:
        self.link.close()

    # -- commands -------------------------------------------------------------------------------
    def command(self, line: str, timeout_s: float | None = None) -> list[str]:
        """Send one line and wait for its ``ok``; return the other lines that came meanwhile."""
        self.link.write(line.encode("ascii") + b"\n")
        timeout = self.reply_timeout_s if timeout_s is None else timeout_s
        deadline = time.monotonic() + timeout
        extra: list[str] = []
        while True:
            reply = self.link.read_line(max(deadline - time.monotonic(), 0.0))
            if reply is None:
                raise StageTimeout(f"{self.name}: no reply to {line!r} within {timeout:g} s")
            if reply == "ok":
                return extra
            if reply.startswith("error:"):
                code = _code(reply)
                raise StageError(f"{self.name} refused {line!r}: error:{code} ({error_meaning(code)})")
            self._unasked(reply, during=line)
            extra.append(reply)

    def _unasked(self, reply: str, during: str) -> None:
        """Handle a line that is not the answer awaited: alarms stop, reports are remembered."""
        if reply.startswith("ALARM:"):
            code = _code(reply)
            raise StageAlarm(
                f"{self.name}: ALARM:{code} ({alarm_meaning(code)}) during {during!r}; motion stopped",
                code=code,
            )
        if reply.startswith("Grbl"):
            raise StageError(f"{self.name} reset itself during {during!r} (power or cable?); position may be lost")
        if reply.startswith("<"):
            self._remember(reply)
        elif reply.startswith("["):
            self.messages.append(reply)

    def status(self) -> tuple[str, tuple[float, float, float]]:
        """Ask ``?`` and return the state (``Idle``, ``Run``, ``Hold:0``, ``Alarm``, ...) and the work position."""
        self.link.write(STATUS_QUERY)
        deadline = time.monotonic() + self.reply_timeout_s
        while True:
            reply = self.link.read_line(max(deadline - time.monotonic(), 0.0))
            if reply is None:
                raise StageTimeout(f"{self.name}: no status report within {self.reply_timeout_s:g} s")
            if reply.startswith("<"):
                return self._remember(reply)
            if reply == "ok":
                continue  # a late acknowledgement: harmless
            if reply.startswith("error:"):
                code = _code(reply)
                raise StageError(f"{self.name}: unexpected error:{code} ({error_meaning(code)})")
            self._unasked(reply, during="a status query")

    def _remember(self, report: str) -> tuple[str, tuple[float, float, float]]:
        state, fields = parse_status(report)
        if "WCO" in fields and len(fields["WCO"]) >= 3:
            self._wco = fields["WCO"][:3]  # type: ignore[assignment]
        if "WPos" in fields:
            pos = fields["WPos"][:3]
        elif "MPos" in fields:
            pos = tuple(m - o for m, o in zip(fields["MPos"][:3], self._wco))
        else:
            pos = self._last_position or (float("nan"),) * 3
        self._last_position = tuple(float(v) for v in pos)  # type: ignore[assignment]
        return state, self._last_position  # type: ignore[return-value]

    # -- the Stage protocol ---------------------------------------------------------------------
    def home(self) -> None:
        self.command("$H", timeout_s=self.move_timeout_s)

    def unlock(self) -> None:
        self.command("$X")

    def move_to(self, x: float | None = None, y: float | None = None, z: float | None = None) -> None:
        words = [f"{axis}{value:.4f}" for axis, value in (("X", x), ("Y", y), ("Z", z)) if value is not None]
        if not words:
            return
        motion = "G0" if self.feed_mm_min is None else "G1"
        feed = f" F{self.feed_mm_min:g}" if self.feed_mm_min is not None else ""
        self.command(f"{motion} {' '.join(words)}{feed}")
        self.wait_idle()

    def wait_idle(self) -> tuple[float, float, float]:
        """Poll ``?`` until the controller is ``Idle``; an alarm or a door stops with an error."""
        deadline = time.monotonic() + self.move_timeout_s
        while True:
            state, pos = self.status()
            if state == "Idle":
                return pos
            if state.startswith("Alarm"):
                raise StageAlarm(f"{self.name} went into alarm state during a move; motion stopped")
            if state.startswith("Door"):
                raise StageError(f"{self.name}: safety door open ({state}); close it and resume")
            if time.monotonic() > deadline:
                raise StageTimeout(f"{self.name}: still {state} after {self.move_timeout_s:g} s of waiting for a move")
            time.sleep(self.poll_interval_s)

    def position(self) -> tuple[float, float, float]:
        return self.status()[1]

    def stop(self) -> None:
        """Feed hold (``!``): decelerate and stop; ``resume_motion`` continues, ``reset`` discards."""
        try:
            self.link.write(FEED_HOLD)
        except StageError:
            pass  # the link is gone: nothing can move the stage now anyway

    def resume_motion(self) -> None:
        self.link.write(CYCLE_START)

    def reset(self) -> None:
        """Soft reset (0x18): stops everything at once; a reset during motion raises ALARM:3."""
        self.link.write(SOFT_RESET)
        self.banner = None

    def jog_cancel(self) -> None:
        self.link.write(JOG_CANCEL)


def _code(reply: str) -> int:
    try:
        return int(reply.split(":", 1)[1].strip())
    except (IndexError, ValueError):
        return -1
