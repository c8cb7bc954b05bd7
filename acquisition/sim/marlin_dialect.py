"""The Marlin dialect of the simulated controller (3D-printer firmware used as a stage).

Every line is answered ``ok``; ``M400`` only once the moves are done; ``M114`` reports the
position; unknown commands get ``echo:Unknown command``. No real-time bytes exist in Marlin.
"""
from __future__ import annotations

import re
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from acquisition.sim.controller import SimulatedController

_WORD_RE = re.compile(r"([A-Z])([-+]?(?:\d+\.?\d*|\.\d+))")


def marlin_line(controller: SimulatedController, text: str) -> None:
    """Answer one line as Marlin 2 would (called with the controller's lock held)."""
    text = re.sub(r";.*$", "", text).strip().upper()
    if controller.alarm is not None:
        return  # a halted board answers nothing until it is reset
    words = _WORD_RE.findall(text.replace(" ", ""))
    if not words:
        controller._send("ok")
        return
    command = f"{words[0][0]}{int(float(words[0][1]))}"
    now = time.monotonic()
    if command == "M115":
        controller._send("FIRMWARE_NAME:Marlin 2.1.2 (simulated) SOURCE_CODE_URL:github.com/MarlinFirmware/Marlin "
                         "PROTOCOL_VERSION:1.0 MACHINE_TYPE:sedarchive stage EXTRUDER_COUNT:0")
        controller._send("ok")
    elif command in ("G90", "G91"):
        controller._absolute = command == "G90"
        controller._send("ok")
    elif command in ("G20", "G21"):
        controller._inches = command == "G20"
        controller._send("ok")
    elif command in ("G0", "G1"):
        target = {letter: float(v) * (25.4 if controller._inches else 1.0) for letter, v in words[1:] if letter in "XYZ"}
        for letter, v in words[1:]:
            if letter == "F":
                controller._feed = float(v)
        if target:
            controller._move(target, controller._absolute, jog=False)
        else:
            controller._send("ok")
    elif command == "G28":
        controller.motion.home(now)
        controller._deferred.append(("ok", 0.0, None))
    elif command == "M400":
        controller._deferred.append(("ok", 0.0, None))
    elif command == "M114":
        x, y, z = controller.motion.position(now)
        controller._send(f"X:{x:.2f} Y:{y:.2f} Z:{z:.2f} E:0.00 Count X:{round(x * 80)} Y:{round(y * 80)} Z:{round(z * 400)}")
        controller._send("ok")
    elif command == "M410":
        controller.motion.halt(now)
        controller._deferred.clear()
        controller._send("ok")
    elif command == "M112":
        controller._raise_alarm(112)
    else:
        controller._send(f'echo:Unknown command: "{text}"')
        controller._send("ok")
