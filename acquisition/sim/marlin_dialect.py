"""Marlin 2 as the simulated controller speaks it (3D-printer firmware used as a stage).

Following Marlin's documented G-code: every line is answered ``ok``; ``M400`` only once the moves
are done, with ``echo:busy: processing`` every 2 s meanwhile (``HOST_KEEPALIVE_FEATURE``, also
during ``G28``); ``M114`` reports ``X:.. Y:.. Z:.. E:.. Count X:.. Y:.. Z:..`` (the planned
position, two decimals); software endstops clamp targets to ``[0, travel]`` without a word; unknown
commands (``G20``/``G21`` too, on a build without ``INCH_MODE_SUPPORT``) get
``echo:Unknown command: "..."`` before their ``ok``. A halt (``M112``, fault code 112) prints
``Error:Printer halted. kill() called!`` and answers nothing more; a stop (other fault codes)
prints ``Error:Printer stopped due to errors...``, skips moves with an ``echo:`` line until
``M999``. There are no real-time bytes in Marlin.
"""
from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from acquisition.sim.controller import SimulatedController

_WORD_RE = re.compile(r"([A-Z])([-+]?(?:\d+\.?\d*|\.\d+))")
KEEPALIVE_S = 2.0
STOPPED = "Printer stopped due to errors. Fix the error and use M999 to restart. (Temperature is reset. Set it after restarting)"
FIRMWARE = ("FIRMWARE_NAME:Marlin 2.1.2 (simulated) SOURCE_CODE_URL:github.com/MarlinFirmware/Marlin "
            "PROTOCOL_VERSION:1.0 MACHINE_TYPE:sedarchive stage EXTRUDER_COUNT:0")


class MarlinFirmware:
    """The Marlin 2 firmware of a :class:`~acquisition.sim.controller.SimulatedController`.

    ``alarm`` is 112 once halted (needs a board reset), another code while stopped (``M999``).
    """

    def __init__(self, board: SimulatedController, *, start_in_alarm: bool = False, inch_mode: bool = False,
                 steps_per_mm: tuple[float, float, float] = (80.0, 80.0, 400.0)):
        self.board = board
        self.alarm: int | None = 1 if start_in_alarm else None
        self.inch_mode = inch_mode
        self.steps_per_mm = steps_per_mm
        self.absolute, self.inches = True, False
        self.soft_endstops = True
        self.feed_mm_min = board.motion.speed_mm_s * 60.0
        self._next_busy: float | None = None

    @property
    def halted(self) -> bool:
        return self.alarm == 112

    def realtime(self, byte: int) -> bool:
        return False

    def tick(self, now: float) -> None:
        if not self.board.waiting:
            self._next_busy = None
        elif self._next_busy is None:
            self._next_busy = now + KEEPALIVE_S
        elif now >= self._next_busy:
            self.board.send("echo:busy: processing")
            self._next_busy = now + KEEPALIVE_S

    def halt(self, code: int) -> None:
        """``M112`` or a fatal fault (112): kill(); any other code: stop() until ``M999``."""
        board = self.board
        board.motion.halt(board.now())
        board.take_deferred()
        self.alarm = code
        board.send("Error:Printer halted. kill() called!" if code == 112 else f"Error:{STOPPED}")

    def line(self, text: str) -> None:
        board = self.board
        if self.halted:
            return  # a killed board answers nothing until it is reset
        text = re.sub(r";.*$", "", text).strip().upper()
        words = _WORD_RE.findall(text.replace(" ", ""))
        if not words:
            return board.send("ok")
        command = f"{words[0][0]}{float(words[0][1]):g}"
        now = board.now()
        if command == "M115":
            board.send(FIRMWARE)
            board.send("Cap:AUTOREPORT_POS:0")
            board.send("Cap:EMERGENCY_PARSER:0")
        elif command in ("G90", "G91"):
            self.absolute = command == "G90"
        elif command in ("G20", "G21") and self.inch_mode:
            self.inches = command == "G20"
        elif command in ("G0", "G1"):
            if self.alarm is not None:
                board.send(f"echo:{STOPPED}")  # moves are skipped while stopped
            else:
                self._move(words[1:], now)
                return
        elif command == "G28":
            if self.alarm is None:
                board.motion.queue((0.0, 0.0, 0.0), now)
                return board.defer("ok")
        elif command == "M400":
            return board.defer("ok")
        elif command == "M114":
            x, y, z = board.motion.target()
            counts = " ".join(f"{a}:{round(v * s)}" for a, v, s in zip("XYZ", (x, y, z), self.steps_per_mm))
            garbled = board.query_fault("garble")
            board.send(f"X:{x:.2f} Y:{y:.2f} Z:{z:.2f} E:0.00 Count {counts}" if not garbled else f"X:{x:.2f} Y:{y:.2f}\x7fZ")
        elif command == "M211":
            for letter, value in words[1:]:
                if letter == "S":
                    self.soft_endstops = float(value) > 0
            low = " ".join(f"{a}{0.0:.2f}" for a in "XYZ")
            high = " ".join(f"{a}{t:.2f}" for a, t in zip("XYZ", board.travel_mm))
            board.send("echo:; Soft Endstops:")
            board.send(f"echo:  M211 S{int(self.soft_endstops)} ; {'ON' if self.soft_endstops else 'OFF'}")
            board.send(f"echo:  Min:  {low}   Max:  {high}")
        elif command == "M410":
            board.motion.halt(now)
        elif command == "M112":
            return self.halt(112)
        elif command == "M999":
            self.alarm = None
        else:
            board.send(f'echo:Unknown command: "{text}"')
        board.send("ok")

    def _move(self, words: list[tuple[str, str]], now: float) -> None:
        board = self.board
        scale = 25.4 if self.inches else 1.0
        target = {letter: float(v) * scale for letter, v in words if letter in "XYZ"}
        for letter, v in words:
            if letter == "F" and float(v) > 0:
                self.feed_mm_min = float(v) * scale
        fault = board.next_move() if target else None
        if fault is not None and fault.kind in ("silence", "drop"):
            return
        if fault is not None and fault.kind == "error":
            board.send(f"Error:simulated fault {fault.code}")
            return board.send("ok")
        current = board.motion.target()
        goal = []
        for i, axis in enumerate("XYZ"):
            value = target.get(axis)
            if value is None:
                goal.append(current[i])
            else:
                value = value if self.absolute else current[i] + value
                if self.soft_endstops:
                    value = min(max(value, 0.0), board.travel_mm[i])  # software endstops clamp, silently
                goal.append(value)
        if target:
            duration = board.motion.queue(tuple(goal), now, rate_mm_s=self.feed_mm_min / 60.0)  # type: ignore[arg-type]
            if fault is not None and fault.kind == "alarm":
                board.after(board.motion.start_delay_s + duration / 2, lambda: self.halt(fault.code))
        board.send("ok")
