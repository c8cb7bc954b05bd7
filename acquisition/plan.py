"""Scan plans as data: where the stage goes, which focal layers it takes, and when the operator reloads.

A plan is a frozen dataclass that can be written to and read from YAML, listed and checked
without any motion, and recorded in the sample it produces (``acquire_settings``), so that a
resumed scan can prove it follows the same plan.

Geometry: each plate area is a rectangle of stage coordinates (mm). Frames are
``width x height`` pixels of ``pixel_size_um``; the grid covers the area with frames that share
``overlap`` of their size, rows scanned in alternating direction (``serpentine``) to shorten moves.
Each position is photographed at ``z_mm + offset / 1000`` for every focal offset (µm).
"""
from __future__ import annotations

import json
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

from acquisition.errors import PlanError

PAPER_FOCAL_OFFSETS_UM = (-50.0, -30.0, -10.0, 10.0, 30.0, 50.0)


@dataclass(frozen=True)
class PlateArea:
    """The part of a plate to photograph, in stage coordinates (mm)."""

    x0_mm: float
    y0_mm: float
    x1_mm: float
    y1_mm: float

    @classmethod
    def parse(cls, text: str) -> PlateArea:
        """``"X0,Y0,X1,Y1"`` in mm, e.g. ``"5,5,45,35"``."""
        try:
            x0, y0, x1, y1 = (float(v) for v in str(text).split(","))
        except ValueError:
            raise PlanError(f"plate area {text!r} is not X0,Y0,X1,Y1 in mm") from None
        return cls(x0, y0, x1, y1)


@dataclass(frozen=True)
class ScanPosition:
    """One stage position of a plan: its index in the sample, its plate, and the frame centre (mm)."""

    index: int
    plate: int
    row: int
    col: int
    x_mm: float
    y_mm: float


@dataclass(frozen=True)
class ScanPlan:
    """A grid scan of one or more plates, each position photographed at several focal distances.

    Examples
    --------
    >>> plan = ScanPlan(plates=(PlateArea(0, 0, 3, 2),), width=320, height=256, pixel_size_um=8.0)
    >>> plan.n_positions, plan.n_layers
    (2, 6)
    >>> [(p.x_mm, p.y_mm) for p in plan.positions()]
    [(1.28, 1.024), (3.84, 1.024)]
    """

    plates: tuple[PlateArea, ...] = (PlateArea(0.0, 0.0, 10.0, 10.0),)
    width: int = 1280
    height: int = 1024
    pixel_size_um: float = 1.5
    overlap: float = 0.0
    focal_offsets_um: tuple[float, ...] = PAPER_FOCAL_OFFSETS_UM
    z_mm: float = 1.0
    serpentine: bool = True
    settle_s: float = 0.0
    travel_mm: tuple[float, float, float] | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "plates", tuple(p if isinstance(p, PlateArea) else PlateArea(**p) for p in self.plates))
        object.__setattr__(self, "focal_offsets_um", tuple(float(v) for v in self.focal_offsets_um))
        if self.travel_mm is not None:
            object.__setattr__(self, "travel_mm", tuple(float(v) for v in self.travel_mm))

    # -- geometry -------------------------------------------------------------------------------
    @property
    def frame_mm(self) -> tuple[float, float]:
        """Field of view (width, height) in mm."""
        return self.width * self.pixel_size_um / 1000.0, self.height * self.pixel_size_um / 1000.0

    @property
    def n_layers(self) -> int:
        return len(self.focal_offsets_um)

    def grid(self, area: PlateArea) -> tuple[list[float], list[float]]:
        """Frame centres along x and along y covering ``area``."""
        fw, fh = self.frame_mm
        return (_axis(area.x0_mm, area.x1_mm, fw, self.overlap), _axis(area.y0_mm, area.y1_mm, fh, self.overlap))

    def positions(self) -> list[ScanPosition]:
        """Every stage position, in scan order, numbered over all plates."""
        out: list[ScanPosition] = []
        for plate, area in enumerate(self.plates):
            xs, ys = self.grid(area)
            for row, y in enumerate(ys):
                cols = range(len(xs))
                if self.serpentine and row % 2:
                    cols = reversed(cols)
                for col in cols:
                    out.append(ScanPosition(len(out), plate, row, col, round(xs[col], 4), round(y, 4)))
        return out

    @property
    def n_positions(self) -> int:
        return sum(len(xs) * len(ys) for xs, ys in (self.grid(a) for a in self.plates))

    def focal_z_mm(self) -> list[float]:
        """Stage heights of the focal layers, in the order they are taken."""
        return [round(self.z_mm + offset / 1000.0, 6) for offset in self.focal_offsets_um]

    def steps(self) -> Iterator[tuple[str, Any]]:
        """The plan as a stream of messages: ``("plate", i)``, ``("move", position)``, ``("snap", (layer, z_mm))``."""
        plate = -1
        for position in self.positions():
            if position.plate != plate:
                plate = position.plate
                yield "plate", plate
            yield "move", position
            for layer, z in enumerate(self.focal_z_mm()):
                yield "snap", (layer, z)

    # -- checking -------------------------------------------------------------------------------
    def check(self) -> list[str]:
        """Raise :class:`PlanError` for a plan that cannot run; return warnings for a doubtful one."""
        if not self.plates:
            raise PlanError("the plan has no plate area")
        if self.width < 1 or self.height < 1 or not self.pixel_size_um > 0:
            raise PlanError(f"frame {self.width}x{self.height} px at {self.pixel_size_um} µm/px is not a frame")
        if not 0.0 <= self.overlap < 1.0:
            raise PlanError(f"overlap {self.overlap} must be at least 0 and below 1")
        if not self.focal_offsets_um:
            raise PlanError("the plan needs at least one focal offset")
        if len(set(self.focal_offsets_um)) != len(self.focal_offsets_um):
            raise PlanError(f"focal offsets {list(self.focal_offsets_um)} repeat a value")
        if self.settle_s < 0:
            raise PlanError(f"settle time {self.settle_s} s is negative")
        warnings = []
        for i, a in enumerate(self.plates, 1):
            if not (a.x1_mm > a.x0_mm and a.y1_mm > a.y0_mm):
                raise PlanError(f"plate {i}: area {a.x0_mm},{a.y0_mm},{a.x1_mm},{a.y1_mm} has no extent (need x1 > x0, y1 > y0)")
            fw, fh = self.frame_mm
            if a.x1_mm - a.x0_mm < fw or a.y1_mm - a.y0_mm < fh:
                warnings.append(f"plate {i}: area is smaller than one frame ({fw:.3g} x {fh:.3g} mm); one frame is taken")
        if self.travel_mm is not None:
            zs = self.focal_z_mm()
            for p in self.positions():
                for axis, value, limit in (("x", p.x_mm, self.travel_mm[0]), ("y", p.y_mm, self.travel_mm[1])):
                    if not 0.0 <= value <= limit:
                        raise PlanError(f"position {p.index} (plate {p.plate + 1}) needs {axis} = {value:g} mm, "
                                        f"outside the stage travel 0..{limit:g} mm")
            if min(zs) < 0.0 or max(zs) > self.travel_mm[2]:
                raise PlanError(f"focal heights {min(zs):g}..{max(zs):g} mm leave the z travel 0..{self.travel_mm[2]:g} mm")
        return warnings

    def describe(self) -> str:
        """A short listing of the plan for the operator (what ``--list`` prints)."""
        fw, fh = self.frame_mm
        lines = [
            f"{self.n_positions} positions x {self.n_layers} focal layers = {self.n_positions * self.n_layers} frames "
            f"of {self.width}x{self.height} px ({fw:.3f} x {fh:.3f} mm at {self.pixel_size_um:g} µm/px)",
            f"focal offsets (µm): {', '.join(f'{v:g}' for v in self.focal_offsets_um)} around z = {self.z_mm:g} mm; "
            f"overlap {self.overlap:.0%}; settle {self.settle_s:g} s",
        ]
        for i, area in enumerate(self.plates):
            xs, ys = self.grid(area)
            lines.append(f"plate {i + 1}: x {area.x0_mm:g}..{area.x1_mm:g} mm, y {area.y0_mm:g}..{area.y1_mm:g} mm: "
                         f"{len(ys)} rows x {len(xs)} columns")
        return "\n".join(lines)

    # -- files ----------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["plates"] = [asdict(p) for p in self.plates]
        data["focal_offsets_um"] = list(self.focal_offsets_um)
        data["travel_mm"] = list(self.travel_mm) if self.travel_mm is not None else None
        return data

    def as_recorded(self) -> dict[str, Any]:
        """The plan as stored in a sample's ``acquire_settings`` (JSON types, so it compares equal when read back)."""
        return json.loads(json.dumps(self.to_dict()))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], **overrides: Any) -> ScanPlan:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known - {"n_plates"})
        if unknown:
            raise PlanError(f"unknown plan settings {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        values = {k: v for k, v in data.items() if k in known}
        try:
            if "plates" in values:
                values["plates"] = tuple(PlateArea(**p) if isinstance(p, Mapping) else PlateArea.parse(p)
                                         for p in values["plates"])
            plan = cls(**values)
        except (TypeError, ValueError) as err:
            raise PlanError(f"bad plan: {err}") from None
        n_plates = data.get("n_plates")
        if n_plates is not None:  # the same area on several plates loaded one after the other
            plan = replace(plan, plates=plan.plates[:1] * int(n_plates))
        return replace(plan, **overrides) if overrides else plan

    @classmethod
    def load(cls, path: str | Path, **overrides: Any) -> ScanPlan:
        """Read a plan from a YAML file (keys as in :meth:`to_dict`, plus ``n_plates``)."""
        import yaml

        path = Path(path)
        try:
            data = yaml.safe_load(path.read_text())
        except OSError as err:
            raise PlanError(f"cannot read plan {path}: {err.strerror}") from None
        except yaml.YAMLError as err:
            raise PlanError(f"plan {path} is not valid YAML: {str(err).splitlines()[0]}") from None
        if not isinstance(data, Mapping):
            raise PlanError(f"plan {path} must be a mapping of settings")
        try:
            return cls.from_dict(data, **overrides)
        except PlanError as err:
            raise PlanError(f"plan {path}: {err}") from None

    def save(self, path: str | Path) -> None:
        import yaml

        Path(path).write_text(yaml.safe_dump(self.to_dict(), sort_keys=False))


def _axis(lo: float, hi: float, frame: float, overlap: float) -> list[float]:
    """Frame centres from ``lo`` covering up to ``hi`` (at least one frame).

    Examples
    --------
    >>> _axis(0.0, 10.0, 4.0, 0.0)
    [2.0, 6.0, 10.0]
    """
    step = frame * (1.0 - overlap)
    n = max(1, math.ceil(round((hi - lo - frame) / step, 9)) + 1) if hi - lo > frame else 1
    return [lo + frame / 2 + i * step for i in range(n)]


#: Largest grain expected on a plate, mm (the upper end of the usual sieved fraction).
LARGEST_GRAIN_MM = 0.5


def overlap_for_grain(plan: ScanPlan, largest_grain_mm: float = LARGEST_GRAIN_MM) -> float:
    """The least overlap (rounded up to whole percent) whose shared strip is as wide as the largest grain.

    With it every grain lies whole in at least one frame (except at the border of the scanned
    area), so frame edges cut no grain out of the count and repeats can be joined.

    Examples
    --------
    >>> overlap_for_grain(ScanPlan(width=1280, height=1024, pixel_size_um=1.5), 0.5)
    0.33
    """
    if not largest_grain_mm > 0:
        raise PlanError(f"largest grain {largest_grain_mm} mm must be positive")
    side = min(plan.frame_mm)
    if largest_grain_mm >= side:
        raise PlanError(f"the largest grain ({largest_grain_mm:g} mm) does not fit in a frame "
                        f"({plan.frame_mm[0]:.3g} x {plan.frame_mm[1]:.3g} mm): no overlap can show it whole")
    return math.ceil(round(largest_grain_mm / side * 100, 6)) / 100


def overlap_warning(plan: ScanPlan, largest_grain_mm: float = LARGEST_GRAIN_MM) -> str:
    """One line when the plan's overlap is narrower than the largest grain expected, else ``""``."""
    shared = plan.overlap * min(plan.frame_mm)
    if shared + 1e-9 >= largest_grain_mm:
        return ""
    return (f"overlap {plan.overlap:.0%} shares {shared:.3g} mm between frames, less than the largest grain "
            f"expected ({largest_grain_mm:g} mm): grains cut by frame edges are then only estimated (edge "
            f"weights), not seen; --overlap auto would use {overlap_for_grain(plan, largest_grain_mm):.0%}")


def parse_offsets(text: str | Sequence[float]) -> tuple[float, ...]:
    """``"-50,-30,-10,10,30,50"`` (µm) to a tuple of floats."""
    if not isinstance(text, str):
        return tuple(float(v) for v in text)
    try:
        return tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise PlanError(f"focal offsets {text!r} are not numbers in µm separated by commas") from None
