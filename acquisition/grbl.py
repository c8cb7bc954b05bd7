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

import re
import time
from typing import Any

from acquisition.errors import StageAlarm, StageError, StageTimeout
from acquisition.gcode import GcodeStage, Position, Reply
from acquisition.grbl_codes import alarm_meaning, error_meaning

FEED_HOLD = b"!"
CYCLE_START = b"~"
SOFT_RESET = b"\x18"
JOG_CANCEL = b"\x85"
STATUS_QUERY = b"?"
SYNC = "G4 P0.01"
INCH = 25.4

_STATUS_RE = re.compile(r"^<([A-Za-z]+(?::\d)?)((?:\|[A-Za-z]+:[^|<>]*)*)>$")
_SETTING_RE = re.compile(r"^\$(\d+)=([-+]?[\d.]+)")
_OFFSET_RE = re.compile(r"^\[(G5[4-9]|G92|TLO):([-\d.,]+)")


def parse_status(line: str) -> tuple[str, dict[str, tuple[float, ...]]]:
    """Split a GRBL 1.1 status report into its state and numeric fields.

    Examples
    --------
    >>> parse_status("<Idle|MPos:1.000,2.500,-0.050|FS:0,0>")
    ('Idle', {'MPos': (1.0, 2.5, -0.05), 'FS': (0.0, 0.0)})
    >>> parse_status("<Hold:0|WPos:0.000,0.000,0.000|Pn:X>")[0]
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
    for name in ("MPos", "WPos"):
        if name in fields and len(fields[name]) < 3:
            raise ValueError(f"not a GRBL status report: {line!r}")
    return m.group(1), fields


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
        self._last_report_at = 0.0

    # -- lines ----------------------------------------------------------------------------------
    def classify(self, stage: GcodeStage, line: str) -> tuple[Reply, str]:
        if line == "ok":
            return Reply.OK, line
        if line.startswith("error:"):
            code = _code(line)
            return Reply.REFUSED, f"error:{code} ({error_meaning(code)})"
        if line.startswith("ALARM:"):
            code = _code(line)
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
        self._last_report_at = time.monotonic()

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
        told = "; ".join(f"{a} ({alarm_meaning(_code(a))})" for a in alarms)
        messages = "; ".join(m for m in stage.messages if m.startswith("[MSG")) or state
        raise StageAlarm(
            f"{stage.name} is locked in alarm state ({told + ' before the reset; ' if told else ''}{messages}); "
            "home it (--home) or, if its position is known to be right, unlock it (--unlock)",
            code=_code(alarms[-1]) if alarms else None,
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
        settings = {}
        for line in stage.command("$$"):
            m = _SETTING_RE.match(line)
            if m:
                settings[int(m.group(1))] = float(m.group(2))
        return settings

    def _read_offsets(self, stage: GcodeStage) -> Position:
        """The work coordinate offset from ``$#`` and ``$G`` (when no report carried ``WCO``)."""
        offsets: dict[str, tuple[float, ...]] = {}
        for line in stage.command("$#"):
            m = _OFFSET_RE.match(line)
            if m:
                offsets[m.group(1)] = tuple(float(v) for v in m.group(2).split(","))
        system = "G54"
        for line in stage.command("$G"):
            system = next((w for w in line.strip("[]").split() if w in ("G54", "G55", "G56", "G57", "G58", "G59")), system)
        scale = INCH if self.report_inches else 1.0
        base = offsets.get(system, (0.0, 0.0, 0.0))
        g92 = offsets.get("G92", (0.0, 0.0, 0.0))
        tlo = offsets.get("TLO", (0.0,))[0]
        return tuple((b + g) * scale for b, g in zip(base[:3], g92[:3]))[:2] + ((base[2] + g92[2] + tlo) * scale,)  # type: ignore[return-value]

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
                self._check_state(stage, during)
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

    def _check_state(self, stage: GcodeStage, during: str) -> None:
        state = self.state or ""
        if state.startswith("Door"):
            raise StageError(f"{stage.name}: safety door open ({state}) during {during!r}; close it and resume")
        if state.startswith("Alarm"):
            raise StageAlarm(f"{stage.name} went into alarm state during {during!r}; motion stopped")

    def read_position(self, stage: GcodeStage) -> Position:
        return self.query(stage)[1]

    def tolerance_mm(self, stage: GcodeStage) -> tuple[float, float, float]:
        rounding = 0.00051 * (INCH if self.report_inches else 1.0) / (10.0 if self.report_inches else 1.0)
        return tuple(1.0 / self.settings[100 + i] + rounding if self.settings.get(100 + i) else 0.01
                     for i in range(3))  # type: ignore[return-value]

    def prepare(self, stage: GcodeStage) -> None:
        stage.command("G90")
        stage.command("G21")  # G-code input in mm; reports follow $13, converted above

    # -- homing, limits, stopping ---------------------------------------------------------------
    def homing_timeout_s(self) -> float:
        """Twice the longest homing cycle the settings allow (search at ``$25``, locate at ``$24``), plus 10 s."""
        s = self.settings
        if not s.get(25) or not s.get(24):
            return 120.0
        travel = max(s.get(130 + i, 200.0) for i in range(3))
        pull_off = s.get(27, 1.0)
        search = 1.5 * travel / s[25] * 60.0
        locate = 2 * 5.0 * pull_off / s[24] * 60.0
        return 2.0 * 2 * (search + locate) + 10.0  # Z, then X and Y together

    def home(self, stage: GcodeStage) -> None:
        stage.command("$H", timeout_s=self.homing_timeout_s(), during="homing ($H)")
        self.locked = None

    def travel_limits(self, stage: GcodeStage) -> tuple[tuple[float, float], ...] | None:
        """Work-coordinate ranges the controller's soft limits allow (``$20=1``: machine ``[-$13x, 0]``)."""
        if self.settings.get(20) != 1.0:
            return None
        if self._wco is None:
            self.query(stage)
        wco = self._wco or self._read_offsets(stage)
        return tuple((-self.settings.get(130 + i, 0.0) - wco[i], -wco[i]) for i in range(3))

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
            self.grbl._check_state(self, "a wait for Idle")
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


def _code(reply: str) -> int:
    try:
        return int(reply.split(":", 1)[1].strip())
    except (IndexError, ValueError):
        return -1
