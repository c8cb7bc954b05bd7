"""GRBL 1.1h as the simulated controller speaks it, following what the real firmware does (in grbl-sim).

- Settings: ``$$`` lists GRBL's defaults (or the controller's); ``$N=V`` stores them (``$10``,
  ``$13``, ``$20`` ... accepted; ``$20=1`` without ``$22=1`` is ``error:10``; a negative value
  ``error:4``; ``$Q`` ``error:2``).
- Positions are whole steps (``$100-$102``): 2.25 mm reads 2.252 at 250 steps/mm. Soft limits
  (``$20=1``) hold machine coordinates in ``[-$130, 0]``; homing leaves ``MPos`` at minus the
  pull-off (``$27``) and answers ``ok`` only when done.
- ``ALARM:1`` (hard limit) and ``ALARM:2`` (soft limit): 500 ms in which input is ignored (a reset
  then is lost), ``[MSG:Reset to continue]``, then **nothing** is answered (no ``ok``, no ``?``)
  until a soft reset; the line in progress gets its ``ok`` only after it.
- Soft reset: from a finished feed hold, the banner and ``Idle`` with the position kept; during
  motion ``ALARM:3``, 500 ms, the banner and ``[MSG:'$H'|'$X' to unlock]``. A pressed limit switch
  with ``$21=1`` gives ``[MSG:Check Limits]``.
- Feed hold decelerates (``Hold:1``) before ``Hold:0``; a jog cancel decelerates in ``Jog``.
- Reports: ``<State|MPos:...|Bf:..|FS:..|Pn:..|WCO:..|Ov:..>`` with ``WPos`` for ``$10=0``, ``Bf``
  for ``$10=2``, inches for ``$13=1``, the real rate in ``FS``, ``WCO`` first after a reset, every
  10 (idle) or 30 (busy) reports and at once after ``G10``/``G92``, ``Ov`` on the report after it,
  after a move starts, and every 10 or 20 reports.
- ``G10 L2/L20``, ``G53``, ``G92`` are accepted; ``G4 P..`` answers once the planner is empty.
"""
from __future__ import annotations

import math
import re
from typing import TYPE_CHECKING, Any

from acquisition.sim.grbl_settings import DEFAULTS, offset_lines, parser_state_line, settings_lines, status_report
from acquisition.sim.grbl_settings import whole_steps

if TYPE_CHECKING:
    from acquisition.sim.controller import SimulatedController

__all__ = ["ALARM_DELAY_S", "GRBL_BANNER", "GrblFirmware", "whole_steps"]

GRBL_BANNER = "Grbl 1.1h ['$' for help]"
ALARM_DELAY_S = 0.5  # report_alarm_message(): delay_ms(500)
_WORD_RE = re.compile(r"([A-Z])([-+]?(?:\d+\.?\d*|\.\d+))")
_M_CODES = {0, 1, 2, 3, 4, 5, 7, 8, 9, 30, 56}
_G_IGNORED = {17, 40, 49, 54, 61, 80, 94}


class GrblFirmware:
    """The GRBL 1.1h firmware of a :class:`~acquisition.sim.controller.SimulatedController`."""

    def __init__(self, board: SimulatedController, settings: dict[int, float], *,
                 work_offset: tuple[float, float, float] = (0.0, 0.0, 0.0), start_in_alarm: bool = False):
        self.board = board
        self.settings = {**DEFAULTS, **{int(k): float(v) for k, v in settings.items()}}
        self.g54 = [float(v) for v in work_offset]
        self.g92 = [0.0, 0.0, 0.0]
        self.alarm: int | None = 9 if start_in_alarm else None  # locked at power-up (homing enabled)
        self.locked = False  # after ALARM:1/2: nothing is answered until a soft reset
        self.resetting = False  # the 500 ms after ALARM:3 of a reset in motion
        self.ignore_until = -math.inf
        self.after_reset: list[str] = []
        self.homing = False
        self.limit_pressed: set[str] = set()
        self.wco_counter = 0
        self.ovr_counter = 0
        self._modal_reset()

    def _modal_reset(self) -> None:
        self.absolute, self.inches, self.feed, self.motion_mode = True, False, None, 0
        self.g92 = [0.0, 0.0, 0.0]

    # -- helpers --------------------------------------------------------------------------------
    @property
    def steps(self) -> tuple[float, float, float]:
        return tuple(self.settings[100 + i] for i in range(3))  # type: ignore[return-value]

    @property
    def wco(self) -> list[float]:
        return [a + b for a, b in zip(self.g54, self.g92)]

    def _ok(self) -> None:
        self.board.send("ok")

    def _error(self, code: int) -> None:
        self.board.send(f"error:{code}")

    def state(self, now: float) -> str:
        motion = self.board.motion
        if self.alarm is not None:
            return "Alarm"
        if self.homing:
            return "Home"
        if motion.held:
            return "Hold:1" if motion.decelerating(now) else "Hold:0"
        if motion.jogging and (motion.in_motion(now) or motion.decelerating(now)):
            return "Jog"
        if motion.in_motion(now):
            return "Run"
        return "Idle"

    # -- real-time bytes ------------------------------------------------------------------------
    def realtime(self, byte: int) -> bool:
        if byte not in (0x3F, 0x21, 0x7E, 0x18) and byte < 0x80:
            return False
        now = self.board.now()
        if byte == 0x18:
            if not self.resetting and now >= self.ignore_until:  # a reset during the alarm delay is lost
                self.soft_reset(now)
            return True
        if self.locked or self.resetting:
            return True  # the status and hold flags are never served before the reset
        motion = self.board.motion
        if byte == 0x3F:
            if self.board.query_fault("lost_query"):
                return True  # a corrupted byte: GRBL never saw a '?'
            self.board.status_reports += 1
            report = self.report(now)
            self.board.send(report[:-1] + ">1" if self.board.query_fault("garble") else report)
        elif byte == 0x21 and self.alarm is None and not self.homing:
            motion.hold(now)
        elif byte == 0x7E:
            motion.resume(now)
        elif byte == 0x85:
            motion.cancel_jog(now)
        return True

    def soft_reset(self, now: float) -> None:
        board = self.board
        in_motion = (board.motion.in_motion(now) or self.homing) and not self.locked
        board.cancel_timers()
        pending = board.take_deferred() + self.after_reset
        self.after_reset = []
        board.forget_backlog()
        board.motion.halt(now)
        if in_motion:  # the position is lost: steps were cut short
            self.alarm = 3
            board.send("ALARM:3")
            self.resetting = True
            board.after(ALARM_DELAY_S, lambda: self._restart(pending))
        else:
            self._restart(pending)

    def _restart(self, pending: list[str]) -> None:
        board = self.board
        self.resetting = self.locked = False
        self.homing = False
        for reply in pending:
            board.send(reply)  # the line that was running is answered on its way out
        self._modal_reset()
        self.wco_counter = self.ovr_counter = 0
        board.send("")
        board.send(GRBL_BANNER)
        if self.settings[21] and self.limit_pressed:
            self.alarm = self.alarm or 1
            board.send("[MSG:Check Limits]")
        if self.alarm is not None:
            board.send("[MSG:'$H'|'$X' to unlock]")

    def alarm_lock(self, code: int) -> None:
        """``ALARM:code``; for hard and soft limits, the lock until a soft reset."""
        board = self.board
        now = board.now()
        board.motion.halt(now)
        self.homing = False
        self.alarm = code
        board.send(f"ALARM:{code}")
        self.ignore_until = now + ALARM_DELAY_S
        if code in (1, 2):
            self.locked = True
            self.after_reset += board.take_deferred()
            board.forget_backlog()
            board.after(ALARM_DELAY_S, lambda: board.send("[MSG:Reset to continue]"))

    def press_limit(self, axes: str) -> None:
        """A limit switch closes (``Pn:``); with ``$21=1`` that is ``ALARM:1`` at once."""
        self.limit_pressed |= set(axes.upper())
        if self.settings[21] and self.alarm is None:
            self.alarm_lock(1)

    def release_limit(self, axes: str) -> None:
        self.limit_pressed -= set(axes.upper())

    def tick(self, now: float) -> None:
        if self.homing and self.board.motion.idle(now):
            self.homing = False
            self.alarm = None

    # -- reports --------------------------------------------------------------------------------
    def report(self, now: float) -> str:
        """The answer to ``?``; ``WCO`` and ``Ov`` come on GRBL's counters (10/30 and 10/20 reports)."""
        motion = self.board.motion
        state = self.state(now)
        busy = state in ("Run", "Jog", "Home") or state.startswith("Hold")
        with_wco = self.wco_counter == 0
        if with_wco:
            self.wco_counter = 29 if busy else 9
            self.ovr_counter = self.ovr_counter or 1  # overrides on the next report
        else:
            self.wco_counter -= 1
        with_ovr = self.ovr_counter == 0
        self.ovr_counter = (19 if busy else 9) if with_ovr else self.ovr_counter - 1
        mpos = tuple(whole_steps(p, s) for p, s in zip(motion.position(now), self.steps))
        return status_report(state, mpos, tuple(self.wco), self.settings, rate_mm_min=motion.rate(now) * 60.0,
                             planner_free=15 - motion.queued, pins=self.limit_pressed,
                             with_wco=with_wco, with_ovr=with_ovr)

    # -- lines ----------------------------------------------------------------------------------
    def line(self, text: str) -> None:
        if self.locked or self.resetting:
            return  # nothing is answered until a reset
        block = re.sub(r"\(.*?\)|;.*$", "", text).replace(" ", "").upper()
        now = self.board.now()
        if not block:
            self._ok()
        elif block.startswith("$"):
            self.system(block, now)
        elif self.alarm is not None or self.state(now) == "Jog":
            self._error(9)
        else:
            self.gcode(block, now)

    def system(self, block: str, now: float) -> None:
        board, state = self.board, self.state(now)
        idle = state in ("Idle", "Alarm")
        if block == "$":
            board.send("[HLP:$$ $# $G $I $N $x=val $Nx=line $J=line $SLP $C $X $H ~ ! ? ctrl-x]")
        elif block == "$$":
            if not idle and state != "Jog":
                return self._error(8)
            for line in settings_lines(self.settings):
                board.send(line)
        elif block == "$#":
            for line in offset_lines(self.g54, self.g92, inches=self.settings[13] == 1):
                board.send(line)
        elif block == "$G":
            board.send(parser_state_line(self.motion_mode, self.inches, self.absolute, self.feed))
        elif block == "$I":
            board.send("[VER:1.1h.20190830:]")
            board.send("[OPT:V,15,128]")
        elif block == "$N":
            board.send("$N0=")
            board.send("$N1=")
        elif block == "$X":
            if self.alarm is not None:
                self.alarm = None
                board.send("[MSG:Caution: Unlocked]")
        elif block == "$H":
            if not self.settings[22]:
                return self._error(5)
            if not idle:
                return self._error(8)
            return self._home(now)
        elif block.startswith("$J="):
            if state not in ("Idle", "Jog"):
                return self._error(8)
            return self.gcode(block[3:], now, jog=True)
        elif block in ("$C", "$SLP"):
            pass
        else:
            m = re.fullmatch(r"\$([-+]?\d*\.?\d+)(.*)", block)
            if not m:
                return self._error(2)
            if not idle:
                return self._error(8)
            rest = m.group(2)
            if not rest.startswith("="):
                return self._error(3)
            try:
                value = float(rest[1:])
            except ValueError:
                return self._error(2)
            key = int(float(m.group(1)))
            if key not in self.settings:
                return self._error(3)
            if value < 0:
                return self._error(4)
            if key == 20 and value and not self.settings[22]:
                return self._error(10)
            self.settings[key] = value
        self._ok()

    def _home(self, now: float) -> None:
        motion = self.board.motion
        self.homing = True
        self.alarm = None  # state Home; homing clears the lock when it succeeds
        seek, locate = self.settings[25] / 60.0, self.settings[24] / 60.0
        x, y, z = motion.target()
        motion.queue((x, y, 0.0), now, rate_mm_s=seek)  # Z first
        motion.queue((0.0, 0.0, 0.0), now, rate_mm_s=seek)  # then X and Y together
        pull = self.settings[27]
        motion.queue((-pull, -pull, -pull), now, rate_mm_s=locate)  # machine origin is not set: minus the pull-off
        self.board.defer("ok")

    def gcode(self, block: str, now: float, jog: bool = False) -> None:
        words = _WORD_RE.findall(block)
        if "".join(letter + number for letter, number in words) != block:
            return self._error(1 if not block[:1].isalpha() else 2)
        g_codes: list[float] = []
        axes: dict[str, float] = {}
        values: dict[str, float] = {}
        for letter, number in words:
            value = float(number)
            if letter == "G":
                g_codes.append(value)
            elif letter == "M":
                if jog or value not in _M_CODES:
                    return self._error(16 if jog else 20)
            elif letter in "XYZ":
                if letter in axes:
                    return self._error(25)
                axes[letter] = value
            elif letter in "FPLNST":
                if letter == "F" and value < 0:
                    return self._error(4)
                values[letter] = value
            else:
                return self._error(20)
        motion_mode, absolute, inches = self.motion_mode, self.absolute, self.inches
        special = machine = None
        for g in g_codes:
            if g in (0, 1):
                if jog:
                    return self._error(16)
                motion_mode = int(g)
            elif g in (4, 10, 92, 92.1):
                special = g
            elif g == 53:
                machine = True
            elif g in (90, 91):
                absolute = g == 90
            elif g in (20, 21):
                inches = g == 20
            elif g not in _G_IGNORED:
                return self._error(20)
        scale = 25.4 if inches else 1.0
        feed = values["F"] * scale if "F" in values else (None if jog else self.feed)
        if not jog:
            self.motion_mode, self.absolute, self.inches, self.feed = motion_mode, absolute, inches, feed
        current = self.board.motion.target()
        if special == 4:
            if "P" not in values:
                return self._error(28)
            return self.board.defer("ok", values["P"])
        if special == 10:
            if values.get("L") not in (2, 20) or values.get("P") not in (0, 1):
                return self._error(28)
            for i, a in enumerate("XYZ"):
                if a in axes:
                    value = axes[a] * scale
                    self.g54[i] = value if values["L"] == 2 else current[i] - self.g92[i] - value
            self.wco_counter = 0
            return self._ok()
        if special in (92, 92.1):
            for i, a in enumerate("XYZ"):
                if special == 92.1:
                    self.g92[i] = 0.0
                elif a in axes:
                    self.g92[i] = current[i] - self.g54[i] - axes[a] * scale
            self.wco_counter = 0
            return self._ok()
        if not axes:
            return self._ok()
        if (jog or motion_mode == 1) and not feed:
            return self._error(22)
        wco = self.wco
        goal = []
        for i, a in enumerate("XYZ"):
            if a not in axes:
                goal.append(current[i])
                continue
            value = axes[a] * scale
            target = value if machine else (value + wco[i] if absolute else current[i] + value)
            goal.append(whole_steps(target, self.steps[i]))
        if self.settings[20] and any(g > 0 or g < -self.settings[130 + i] for i, g in enumerate(goal)):
            if jog:
                return self._error(15)
            self.after_reset.append("ok")  # the offending line is answered after the reset
            return self.alarm_lock(2)
        fault = self.board.next_move()
        if fault is not None and fault.kind in ("silence", "drop"):
            return
        if fault is not None and fault.kind == "error":
            return self._error(fault.code)
        rate = self._rate(current, goal, None if (motion_mode == 0 and not jog) else feed)
        duration = self.board.motion.queue(tuple(goal), now, jog=jog, rate_mm_s=rate)  # type: ignore[arg-type]
        self.ovr_counter = 0
        self._ok()
        if fault is not None and fault.kind == "alarm":
            delay = self.board.motion.start_delay_s + duration / 2
            self.board.after(delay, lambda: self.alarm_lock(fault.code) if self.alarm is None else None)

    def _rate(self, start: Any, goal: list[float], feed_mm_min: float | None) -> float:
        """mm/s of a move: the feed, or the rapid rate, limited by each axis's ``$11x``."""
        length = math.dist(start, goal)
        if length == 0:
            return 1.0
        limits = [self.settings[110 + i] / (abs(g - s) / length) for i, (s, g) in enumerate(zip(start, goal)) if g != s]
        rate = min(limits)
        if feed_mm_min is not None:
            rate = min(rate, feed_mm_min)
        return rate / 60.0
