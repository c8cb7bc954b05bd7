"""Sample identity: a core and a depth interval, and the names derived from them."""
from __future__ import annotations

import math
import re
from dataclasses import dataclass

from catalog.errors import ArchiveError

_CORE_RE = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9\-]|\.(?!\.))*")  # fullmatch: no trailing newline, no '..'
_NAME_RE = re.compile(r"^(?P<core>.+)_(?P<top>-?\d+(?:\.\d+)?)-(?P<bottom>-?\d+(?:\.\d+)?)cm$")


def format_depth(value: float) -> str:
    """Depth in cm as written in names: ``120`` for 120.0, ``120.5`` for 120.5.

    Examples
    --------
    >>> format_depth(120.0), format_depth(7.25)
    ('120', '7.25')
    """
    value = float(value)
    if value == int(value):
        return str(int(value))
    return f"{value:.6f}".rstrip("0").rstrip(".")


def parse_depth_range(text: str) -> tuple[float, float]:
    """Parse ``"120-122"`` (cm) into ``(120.0, 122.0)``.

    Examples
    --------
    >>> parse_depth_range("100-150")
    (100.0, 150.0)
    >>> parse_depth_range("12.5-13")
    (12.5, 13.0)
    """
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*-\s*(\d+(?:\.\d+)?)\s*(?:cm)?\s*", str(text))
    if not m:
        raise ArchiveError(f"depth {text!r} is not an interval in cm like 120-122")
    top, bottom = float(m.group(1)), float(m.group(2))
    if not bottom > top:
        raise ArchiveError(f"depth {text!r}: the bottom ({bottom:g}) must be below the top ({top:g})")
    return top, bottom


@dataclass(frozen=True, order=True)
class SampleKey:
    """A sample: one core and one depth interval in cm (top above bottom).

    Examples
    --------
    >>> key = SampleKey("AI-3352", 120, 122)
    >>> key.name
    'AI-3352_120-122cm'
    >>> SampleKey.from_name(key.name) == key
    True
    """

    core: str
    top_cm: float
    bottom_cm: float

    def __post_init__(self) -> None:
        if not isinstance(self.core, str) or not _CORE_RE.fullmatch(self.core):
            raise ArchiveError(
                f"core {self.core!r} must be letters, digits, '-' or single '.', starting with a letter or digit"
            )
        top, bottom = float(self.top_cm), float(self.bottom_cm)
        if not (math.isfinite(top) and math.isfinite(bottom)) or top < 0 or not bottom > top:
            raise ArchiveError(f"depth {self.top_cm}-{self.bottom_cm} cm: need 0 <= top < bottom")
        object.__setattr__(self, "top_cm", top)
        object.__setattr__(self, "bottom_cm", bottom)

    @property
    def depth(self) -> str:
        return f"{format_depth(self.top_cm)}-{format_depth(self.bottom_cm)}"

    @property
    def name(self) -> str:
        return f"{self.core}_{self.depth}cm"

    @classmethod
    def from_name(cls, name: str) -> SampleKey:
        m = _NAME_RE.fullmatch(name)
        if not m:
            raise ArchiveError(f"{name!r} is not a sample name like CORE_120-122cm")
        return cls(m["core"], float(m["top"]), float(m["bottom"]))

    @classmethod
    def parse(cls, core: str, depth: str) -> SampleKey:
        """Key from a core and a depth text such as ``"120-122"``."""
        return cls(core, *parse_depth_range(depth))

    def overlaps(self, top_cm: float, bottom_cm: float) -> bool:
        """True where this interval shares some depth with [top_cm, bottom_cm] (touching ends count not)."""
        return self.top_cm < bottom_cm and top_cm < self.bottom_cm
