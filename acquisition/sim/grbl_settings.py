"""GRBL 1.1h's settings and the text of its status reports and ``$$``, ``$#``, ``$G`` answers (simulated firmware).

The defaults are GRBL 1.1h's ``defaults.h`` (generic machine); positions are whole steps of
``$100-$102`` (``lround``, half away from zero).
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

DEFAULTS: dict[int, float] = {
    0: 10, 1: 25, 2: 0, 3: 0, 4: 0, 5: 0, 6: 0, 10: 1, 11: 0.010, 12: 0.002, 13: 0, 20: 0, 21: 0, 22: 0, 23: 0,
    24: 25.0, 25: 500.0, 26: 250, 27: 1.0, 30: 1000, 31: 0, 32: 0, 100: 250.0, 101: 250.0, 102: 250.0,
    110: 500.0, 111: 500.0, 112: 500.0, 120: 10.0, 121: 10.0, 122: 10.0, 130: 200.0, 131: 200.0, 132: 200.0,
}
INTEGER_SETTINGS = {0, 1, 2, 3, 4, 5, 6, 10, 13, 20, 21, 22, 23, 26, 30, 31, 32}


def whole_steps(value_mm: float, steps_per_mm: float) -> float:
    """``value_mm`` at the nearest whole step (rounded half away from zero, as ``lround``).

    Examples
    --------
    >>> whole_steps(2.25, 250.0)
    2.252
    """
    steps = math.copysign(math.floor(abs(value_mm) * steps_per_mm + 0.5), value_mm)
    return round(steps / steps_per_mm, 9)


def settings_lines(settings: Mapping[int, float]) -> list[str]:
    """The lines of ``$$``.

    Examples
    --------
    >>> settings_lines({10: 1.0, 100: 250.0})
    ['$10=1', '$100=250.000']
    """
    return [f"${k}={int(settings[k])}" if k in INTEGER_SETTINGS else f"${k}={settings[k]:.3f}" for k in sorted(settings)]


def offset_lines(g54: Sequence[float], g92: Sequence[float], *, inches: bool = False) -> list[str]:
    """The lines of ``$#`` (G54 as given, the other systems zero), in report units.

    Examples
    --------
    >>> offset_lines((1.0, 2.0, 0.0), (0.0, 0.0, 0.0))[0]
    '[G54:1.000,2.000,0.000]'
    """
    scale, digits = (1 / 25.4, 4) if inches else (1.0, 3)

    def axes(values: Sequence[float]) -> str:
        return ",".join(f"{v * scale + 0.0:.{digits}f}" for v in values)

    zero = (0.0, 0.0, 0.0)
    lines = [f"[G54:{axes(g54)}]"]
    lines += [f"[{name}:{axes(zero)}]" for name in ("G55", "G56", "G57", "G58", "G59", "G28", "G30")]
    lines += [f"[G92:{axes(g92)}]", f"[TLO:{axes((0.0,))}]", f"[PRB:{axes(zero)}:0]"]
    return lines


def parser_state_line(motion_mode: int, inches: bool, absolute: bool, feed: float | None) -> str:
    """The line of ``$G``.

    Examples
    --------
    >>> parser_state_line(0, False, True, None)
    '[GC:G0 G54 G17 G21 G90 G94 M5 M9 T0 F0 S0]'
    """
    return (f"[GC:G{motion_mode} G54 G17 G{20 if inches else 21} G{90 if absolute else 91} G94 M5 M9 T0 "
            f"F{feed:g} S0]" if feed else
            f"[GC:G{motion_mode} G54 G17 G{20 if inches else 21} G{90 if absolute else 91} G94 M5 M9 T0 F0 S0]")


def status_report(state: str, mpos: Sequence[float], wco: Sequence[float], settings: Mapping[int, float], *,
                  rate_mm_min: float = 0.0, planner_free: int = 15, pins: set[str] | frozenset[str] = frozenset(),
                  with_wco: bool = False, with_ovr: bool = False) -> str:
    """A GRBL 1.1h status report: ``MPos`` or ``WPos`` (``$10`` bit 0), ``Bf`` (bit 1), ``FS``, ``Pn``,
    ``WCO``, ``Ov``, in that order; in inches with ``$13=1``.

    Examples
    --------
    >>> status_report("Idle", (1.0, 2.0, 0.0), (1.0, 0.0, 0.0), {10: 0, 13: 0}, with_wco=True)
    '<Idle|WPos:0.000,2.000,0.000|FS:0,0|WCO:1.000,0.000,0.000>'
    """
    mask, inches = int(settings.get(10, 1)), settings.get(13, 0) == 1
    scale, digits = (1 / 25.4, 4) if inches else (1.0, 3)

    def axes(values: Sequence[float]) -> str:
        return ",".join(f"{v * scale + 0.0:.{digits}f}" for v in values)

    pos = mpos if mask & 1 else [m - o for m, o in zip(mpos, wco)]
    parts = [state, f"{'MPos' if mask & 1 else 'WPos'}:{axes(pos)}"]
    if mask & 2:
        parts.append(f"Bf:{planner_free},128")
    rate = rate_mm_min * scale
    parts.append(f"FS:{rate:.1f},0" if inches else f"FS:{rate:.0f},0")
    if pins:
        parts.append("Pn:" + "".join(a for a in "XYZ" if a in pins))
    if with_wco:
        parts.append(f"WCO:{axes(wco)}")
    if with_ovr:
        parts.append("Ov:100,100,100")
    return "<" + "|".join(parts) + ">"
