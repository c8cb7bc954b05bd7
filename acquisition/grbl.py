"""The GRBL 1.1 dialect (GRBL 1.1h and compatibles: grblHAL, FluidNC in GRBL mode).

How this driver speaks GRBL, following GRBL 1.1's interface notes:

- **connect**: a soft reset (0x18), repeated every ``reset_retry_s`` until the banner
  ``Grbl 1.1h ['$' for help]`` comes (GRBL ignores input for 500 ms after an ``ALARM:`` line, so
  one reset can be lost); ``ALARM:N`` and ``[MSG:...]`` lines around it are kept. Then ``$$``:
  ``$13=1`` (reports in inches) is converted, ``$10`` (``MPos`` or ``WPos``) followed, ``$20`` and
  ``$130-$132`` give the soft limits a plan is checked against, ``$24``/``$25``/``$27`` the homing
  time. A controller locked in alarm is homed (``$H``) or unlocked (``$X``) only when told.
- **moves**: one ``G0``/``G1`` line (``ok`` = queued), then ``G4 P0.01``, whose ``ok`` comes only
  once the planner is empty (a ``?`` can be answered ``Idle`` before a just-queued block starts),
  then one ``?`` for the position, which must be the target within a step.
- **status**: ``?`` is re-sent every ``status_retry_s`` until a report comes (GRBL merges
  requests, and a corrupted byte is lost); while waiting for a move, ``?`` is sent at most every
  ``poll_interval_s`` (GRBL advises at most 5 Hz), to see a door or an alarm. A garbled report
  stops with a :class:`StageError`.
- **alarms**: ``ALARM:N`` stops the scan; after ``ALARM:1``/``ALARM:2`` GRBL answers nothing until
  a soft reset.
- real-time bytes without newline: ``!`` feed hold, ``~`` resume, 0x18 soft reset, 0x85 jog cancel.
"""
from __future__ import annotations

import time
from typing import Any

from acquisition.errors import StageAlarm, StageError, StageTimeout
from acquisition.gcode import GcodeStage, Position, Reply
from acquisition.grbl_codes import alarm_meaning, error_meaning
from acquisition.grbl_reports import (
    INCH,
    homing_timeout_s,
    parse_settings,
    parse_status,
    reply_code,
    soft_limits,
    step_tolerance_mm,
    work_offset,
)

FEED_HOLD = b"!"
CYCLE_START = b"~"
SOFT_RESET = b"\x18"
JOG_CANCEL = b"\x85"
STATUS_QUERY = b"?"
SYNC = "G4 P0.01"

__all__ = ["GrblDialect", "GrblStage", "parse_status"]

class GrblDialect:
    """What GRBL 1.1 does its own way; one per stage (it keeps the controller's settings and offsets)."""

    name = "GRBL"

    def __init__(self, *, unlock: bool = False, banner_timeout_s: float = 5.0, poll_interval_s: float = 0.25,
                 status_retry_s: float = 0.5, reset_retry_s: float = 0.6):
        self.unlock_on_connect = unlock
        self.banner_timeout_s = banner_timeout_s
        self.poll_interval_s = max(poll_interval_s, 0.1)  # GRBL advises at most 5-10 Hz
        self.status_retry_s = status_retry_s
        self.reset_retry_s = reset_retry_s
        self.banner: str | None = None
        self.settings: dict[int, float] = {}
        self.report_inches = False
        self.locked: int | None = None  # ALARM:1/2 seen: GRBL answers nothing until a reset
        self.state: str | None = None
        self._wco: Position | None = None
        self._mpos: Position | None = None
        self._last_position: Position | None = None
        self._report_seen = False

    # -- lines ----------------------------------------------------------------------------------
    def classify(self, stage: GcodeStage, line: str) -> tuple[Reply, str]:
        if line == "ok":
            return Reply.OK, line
        if line.startswith("error:"):
            code = reply_code(line)
            return Reply.REFUSED, f"error:{code} ({error_meaning(code)})"
        if line.startswith("ALARM:"):
            code = reply_code(line)
            if code in (1, 2):
                self.locked = code
            stage.messages.append(line)
            return Reply.ALARM, f"ALARM:{code} ({alarm_meaning(code)})"
        if line.startswith("Grbl"):
            return Reply.RESET, line
        if line.startswith("<"):
            self._remember(stage, line)
        elif line.startswith("["):
            stage.messages.append(line)
        return Reply.OTHER, line

    def _remember(self, stage: GcodeStage, report: str) -> None:
        try:
            state, fields = parse_status(report)
        except ValueError:
            raise StageError(f"{stage.name}: garbled status report {report!r} "
                             "(noise on the serial line, or not a GRBL 1.1 controller)") from None
        scale = INCH if self.report_inches else 1.0
        if "WCO" in fields and len(fields["WCO"]) >= 3:
            self._wco = tuple(v * scale for v in fields["WCO"][:3])  # type: ignore[assignment]
        if "WPos" in fields:
            pos = tuple(v * scale for v in fields["WPos"][:3])
        elif "MPos" in fields:
            self._mpos = tuple(v * scale for v in fields["MPos"][:3])
            wco = self._wco if self._wco is not None else (float("nan"),) * 3  # query() reads $# then
            pos = tuple(v - o for v, o in zip(self._mpos, wco))
        else:
            pos = self._last_position or (float("nan"),) * 3
        self._last_position = tuple(float(v) for v in pos)  # type: ignore[assignment]
        self.state = state
        self._report_seen = True

    # -- connect --------------------------------------------------------------------------------
    def handshake(self, stage: GcodeStage) -> None:
        before = self.reset(stage)
        alarms = [line for line in before if line.startswith("ALARM:")]
        self.settings = self.read_settings(stage)
        self.report_inches = self.settings.get(13, 0.0) == 1.0
        state, _ = self.query(stage)
        if not state.startswith("Alarm"):
            return
        if stage.home_on_connect:
            return  # GcodeStage.connect homes next
        if self.unlock_on_connect:
            stage.command("$X")
            return
        told = "; ".join(f"{a} ({alarm_meaning(reply_code(a))})" for a in alarms)
        messages = "; ".join(m for m in stage.messages if m.startswith("[MSG")) or state
        raise StageAlarm(
            f"{stage.name} is locked in alarm state ({told + ' before the reset; ' if told else ''}{messages}); "
            "home it (--home) or, if its position is known to be right, unlock it (--unlock)",
            code=reply_code(alarms[-1]) if alarms else None,
        )

    def reset(self, stage: GcodeStage) -> list[str]:
        """Soft reset (0x18), repeated until the banner; returns the lines before the banner."""
        link = stage.link
        self.banner = None
        link.write(SOFT_RESET)
        now = time.monotonic()
        deadline, again = now + self.banner_timeout_s, now + self.reset_retry_s
        before: list[str] = []
        while self.banner is None:
            now = time.monotonic()
            if now >= deadline:
                raise StageTimeout(
                    f"{stage.name}: no GRBL banner within {self.banner_timeout_s:g} s after a reset "
                    f"(is it a GRBL controller, powered, at {link.baudrate} baud?)"
                )
            line = link.read_line(max(min(deadline, again) - now, 0.0))
            if line is None:
                if time.monotonic() >= again:  # the reset was lost (GRBL ignores input after an alarm)
                    link.write(SOFT_RESET)
                    again = time.monotonic() + self.reset_retry_s
                continue
            if line.startswith("Grbl"):
                self.banner = line
                break
            before.append(line)
            if line.startswith(("ALARM:", "[")):
                stage.messages.append(line)
            if line.startswith("ALARM:"):
                again = time.monotonic() + self.reset_retry_s  # input is ignored for 500 ms now
            elif line == "[MSG:Reset to continue]":
                link.write(SOFT_RESET)
                again = time.monotonic() + self.reset_retry_s
        stage.messages.extend(link.drain(0.05))
        self.locked = None
        self._wco = None  # G92 is cleared by a reset; the next report brings the offset
        return before

    def read_settings(self, stage: GcodeStage) -> dict[int, float]:
        return parse_settings(stage.command("$$"))

    def _read_offsets(self, stage: GcodeStage) -> Position:
        """The work coordinate offset from ``$#`` and ``$G`` (when no report carried ``WCO``)."""
        return work_offset(stage.command("$#"), stage.command("$G"), INCH if self.report_inches else 1.0)

    # -- status ---------------------------------------------------------------------------------
    def query(self, stage: GcodeStage, during: str = "a status query") -> tuple[str, Position]:
        """Ask ``?`` (again every ``status_retry_s``) and return the state and the work position."""
        if self.locked is not None:
            raise StageAlarm(f"{stage.name} is locked after ALARM:{self.locked} ({alarm_meaning(self.locked)}) "
                             "and answers nothing until a reset", code=self.locked)
        link = stage.link
        self._report_seen = False
        link.write(STATUS_QUERY)
        now = time.monotonic()
        deadline, again = now + stage.reply_timeout_s, now + self.status_retry_s
        while True:
            now = time.monotonic()
            if now >= deadline:
                raise StageTimeout(f"{stage.name}: no status report within {stage.reply_timeout_s:g} s")
            reply = link.read_line(max(min(deadline, again) - now, 0.0))
            if reply is None:
                if time.monotonic() >= again:  # the '?' was lost or merged: ask again
                    link.write(STATUS_QUERY)
                    again = time.monotonic() + self.status_retry_s
                continue
            kind, text = self.classify(stage, reply)
            if self._report_seen:
                if self._last_position is not None and any(v != v for v in self._last_position) and self._mpos:
                    self._wco = self._read_offsets(stage)  # an MPos report before any WCO: ask for the offsets
                    self._last_position = tuple(m - o for m, o in zip(self._mpos, self._wco))  # type: ignore[assignment]
                return self.state, self._last_position  # type: ignore[return-value]
            if kind is Reply.REFUSED:
                raise StageError(f"{stage.name}: unexpected {text}")
            if kind is Reply.ALARM:
                raise stage.alarm(text, during)
            if kind is Reply.RESET:
                raise StageError(f"{stage.name} reset itself during {during} (power or cable?); position may be lost")

    def wait_for_moves(self, stage: GcodeStage, during: str) -> None:
        """``G4 P0.01``: its ``ok`` comes once the planner is empty; ``?`` meanwhile at most every ``poll_interval_s``."""
        polled = {"at": time.monotonic(), "asked": None}

        def poll() -> None:
            now = time.monotonic()
            if self._report_seen:
                polled["asked"] = None
                self._report_seen = False
                self.check_state(stage, during)
            elif polled["asked"] is not None and now - polled["asked"] > stage.reply_timeout_s:
                raise StageTimeout(f"{stage.name}: no status report within {stage.reply_timeout_s:g} s "
                                   f"while waiting for {during!r}")
            if now - polled["at"] >= self.poll_interval_s:
                stage.link.write(STATUS_QUERY)
                polled["at"] = now
                if polled["asked"] is None:
                    polled["asked"] = now

        self._report_seen = False
        stage.link.write(f"{SYNC}\n".encode("ascii"))
        try:
            stage.await_ok(SYNC, stage.move_timeout_s, during=during, on_wait=poll)
        except StageTimeout as err:
            if "no reply to" in str(err):
                raise StageTimeout(f"{stage.name}: {during!r} not finished after {stage.move_timeout_s:g} s") from None
            raise
        if polled["asked"] is not None and not self._report_seen:
            self._drain_report(stage, during)  # the answer to a '?' sent before the ok: not the position after it

    def _drain_report(self, stage: GcodeStage, during: str) -> None:
        deadline = time.monotonic() + self.status_retry_s
        while not self._report_seen:
            line = stage.link.read_line(max(deadline - time.monotonic(), 0.0))
            if line is None:
                return  # merged with another request, or lost: nothing is pending
            kind, text = self.classify(stage, line)
            if kind is Reply.ALARM:
                raise stage.alarm(text, during)

    def check_state(self, stage: GcodeStage, during: str) -> None:
        """Stop on a door or an alarm state in the last report."""
        state = self.state or ""
        if state.startswith("Door"):
            raise StageError(f"{stage.name}: safety door open ({state}) during {during!r}; close it and resume")
        if state.startswith("Alarm"):
            raise StageAlarm(f"{stage.name} went into alarm state during {during!r}; motion stopped")

    def read_position(self, stage: GcodeStage) -> Position:
        return self.query(stage)[1]

    def tolerance_mm(self, stage: GcodeStage) -> tuple[float, float, float]:
        return step_tolerance_mm(self.settings, self.report_inches)

    def prepare(self, stage: GcodeStage) -> None:
        stage.command("G90")
        stage.command("G21")  # G-code input in mm; reports follow $13, converted above

    # -- homing, limits, stopping ---------------------------------------------------------------
    def homing_timeout_s(self) -> float:
        return homing_timeout_s(self.settings)

    def home(self, stage: GcodeStage) -> None:
        stage.command("$H", timeout_s=self.homing_timeout_s(), during="homing ($H)")
        self.locked = None

    def travel_limits(self, stage: GcodeStage) -> tuple[tuple[float, float], ...] | None:
        """Work-coordinate ranges the controller's soft limits allow; ``None`` with ``$20=0``."""
        if self.settings.get(20) != 1.0:
            return None
        if self._wco is None:
            self.query(stage)
        return soft_limits(self.settings, self._wco or self._read_offsets(stage))

    def stop(self, stage: GcodeStage) -> None:
        stage.link.write(FEED_HOLD)


class GrblStage(GcodeStage):
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
        How long to wait for ``ok`` or a status report, for a move to finish, and for the banner.
    poll_interval_s, status_retry_s, reset_retry_s
        ``?`` while waiting for a move (at least 0.1 s apart), re-sent ``?`` and 0x18 intervals.
    """

    def __init__(self, port: Any, *, baudrate: int = 115200, unlock: bool = False, home: bool = False,
                 feed_mm_min: float | None = None, reply_timeout_s: float = 5.0, move_timeout_s: float = 120.0,
                 banner_timeout_s: float = 5.0, poll_interval_s: float = 0.25, status_retry_s: float = 0.5,
                 reset_retry_s: float = 0.6):
        dialect = GrblDialect(unlock=unlock, banner_timeout_s=banner_timeout_s, poll_interval_s=poll_interval_s,
                              status_retry_s=status_retry_s, reset_retry_s=reset_retry_s)
        super().__init__(port, dialect, baudrate=baudrate, home=home, feed_mm_min=feed_mm_min,
                         reply_timeout_s=reply_timeout_s, move_timeout_s=move_timeout_s)
        self.grbl = dialect

    @property
    def banner(self) -> str | None:
        return self.grbl.banner

    @property
    def settings(self) -> dict[int, float]:
        return self.grbl.settings

    def status(self) -> tuple[str, Position]:
        """Ask ``?``: the state (``Idle``, ``Run``, ``Hold:0``, ``Alarm``, ...) and the work position."""
        return self.grbl.query(self)

    def wait_idle(self, timeout_s: float | None = None) -> Position:
        """Ask ``?`` every ``poll_interval_s`` until ``Idle`` (after a resume or a jog cancel)."""
        deadline = time.monotonic() + (self.move_timeout_s if timeout_s is None else timeout_s)
        while True:
            state, position = self.status()
            if state == "Idle":
                return position
            self.grbl.check_state(self, "a wait for Idle")
            if time.monotonic() > deadline:
                raise StageTimeout(f"{self.name}: still {state} after {self.move_timeout_s:g} s")
            time.sleep(self.grbl.poll_interval_s)

    def unlock(self) -> None:
        self.command("$X")

    def reset(self) -> list[str]:
        """Soft reset (0x18), waiting for the banner; a reset during motion leaves ``ALARM:3`` (in :attr:`messages`)."""
        return self.grbl.reset(self)

    def resume_motion(self) -> None:
        self.link.write(CYCLE_START)

    def jog_cancel(self) -> None:
        self.link.write(JOG_CANCEL)

    def travel_limits(self) -> tuple[tuple[float, float], ...] | None:
        return self.grbl.travel_limits(self)

    def describe(self) -> dict[str, Any]:
        """What to record about the controller in the sample."""
        return {"firmware": self.banner, "report_inches_converted": self.report_inches,
                "soft_limits": self.settings.get(20) == 1.0}

    @property
    def report_inches(self) -> bool:
        return self.grbl.report_inches
