"""What GRBL 1.1 sends, read: status reports, ``$$`` settings, ``$#`` offsets, and what settings imply.

Pure functions (text in, numbers out) used by :mod:`acquisition.grbl`: the work offset a
controller applies, its soft limits in work coordinates (``$20=1``: machine ``[-$13x, 0]``, as GRBL
1.1 checks them without ``HOMING_FORCE_SET_ORIGIN``), how far a reached position may be from its
target (one step plus the report's rounding), and how long a homing cycle can take.
"""
from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

INCH = 25.4
Position = tuple[float, float, float]

_STATUS_RE = re.compile(r"^<([A-Za-z]+(?::\d)?)((?:\|[A-Za-z]+:[^|<>]*)*)>$")
_SETTING_RE = re.compile(r"^\$(\d+)=([-+]?[\d.]+)")
_OFFSET_RE = re.compile(r"^\[(G5[4-9]|G92|TLO):([-\d.,]+)")
_SYSTEMS = ("G54", "G55", "G56", "G57", "G58", "G59")


def parse_status(line: str) -> tuple[str, dict[str, tuple[float, ...]]]:
    """Split a GRBL 1.1 status report into its state and numeric fields; ``ValueError`` if garbled.

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


def parse_settings(lines: Iterable[str]) -> dict[int, float]:
    """``$$`` lines to ``{number: value}``.

    Examples
    --------
    >>> parse_settings(["$10=1", "$100=250.000", "[MSG:x]"])
    {10: 1.0, 100: 250.0}
    """
    settings = {}
    for line in lines:
        m = _SETTING_RE.match(line)
        if m:
            settings[int(m.group(1))] = float(m.group(2))
    return settings


def work_offset(offset_lines: Iterable[str], state_lines: Iterable[str], scale: float = 1.0) -> Position:
    """The work coordinate offset (WCO) from ``$#`` and ``$G``: the active G5x + G92, and TLO on Z.

    Examples
    --------
    >>> work_offset(["[G54:1.000,2.000,0.000]", "[G92:0.500,0.000,0.000]", "[TLO:0.100]"],
    ...             ["[GC:G0 G54 G17 G21 G90 G94 M5 M9 T0 F0 S0]"])
    (1.5, 2.0, 0.1)
    """
    offsets: dict[str, tuple[float, ...]] = {}
    for line in offset_lines:
        m = _OFFSET_RE.match(line)
        if m:
            offsets[m.group(1)] = tuple(float(v) for v in m.group(2).split(","))
    system = "G54"
    for line in state_lines:
        system = next((w for w in line.strip("[]").replace("GC:", "").split() if w in _SYSTEMS), system)
    base = offsets.get(system, (0.0, 0.0, 0.0))
    g92 = offsets.get("G92", (0.0, 0.0, 0.0))
    tlo = offsets.get("TLO", (0.0,))[0]
    return ((base[0] + g92[0]) * scale, (base[1] + g92[1]) * scale, round((base[2] + g92[2] + tlo) * scale, 9))


def soft_limits(settings: Mapping[int, float], wco: Position) -> tuple[tuple[float, float], ...]:
    """(low, high) work coordinates per axis that GRBL's soft limits allow: machine ``[-$13x, 0]`` minus WCO.

    Examples
    --------
    >>> soft_limits({130: 100.0, 131: 80.0, 132: 20.0}, (-90.0, -70.0, -15.0))
    ((-10.0, 90.0), (-10.0, 70.0), (-5.0, 15.0))
    """
    return tuple((-settings.get(130 + i, 0.0) - wco[i], -wco[i]) for i in range(3))


def step_tolerance_mm(settings: Mapping[int, float], inches: bool = False) -> Position:
    """How far a reported position may be from its target: a step (``$100-$102``) plus the rounding.

    Reports have 3 decimals in mm, 4 in inches; without the step settings, 0.01 mm.

    Examples
    --------
    >>> step_tolerance_mm({100: 250.0, 101: 250.0, 102: 1000.0})
    (0.00451, 0.00451, 0.00151)
    """
    rounding = 0.000051 * INCH if inches else 0.00051
    return tuple(round(1.0 / settings[100 + i] + rounding, 9) if settings.get(100 + i) else 0.01
                 for i in range(3))  # type: ignore[return-value]


def homing_timeout_s(settings: Mapping[int, float]) -> float:
    """Twice the longest homing cycle the settings allow, plus 10 s (120 s without them).

    Search: 1.5 x the longest travel (``$130-$132``) at ``$25``; locate: 5 x the pull-off (``$27``)
    twice at ``$24``; Z first, then X and Y together.

    Examples
    --------
    >>> homing_timeout_s({24: 25.0, 25: 500.0, 27: 1.0, 130: 200.0, 131: 200.0, 132: 200.0})
    250.0
    """
    if not settings.get(25) or not settings.get(24):
        return 120.0
    travel = max(settings.get(130 + i, 200.0) for i in range(3))
    search = 1.5 * travel / settings[25] * 60.0
    locate = 2 * 5.0 * settings.get(27, 1.0) / settings[24] * 60.0
    return 2.0 * 2 * (search + locate) + 10.0


def reply_code(reply: str) -> int:
    """The number of ``error:N`` or ``ALARM:N`` (-1 if none).

    Examples
    --------
    >>> reply_code("ALARM:2"), reply_code("error:x")
    (2, -1)
    """
    try:
        return int(reply.split(":", 1)[1].strip())
    except (IndexError, ValueError):
        return -1
