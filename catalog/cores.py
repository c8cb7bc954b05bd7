"""The cores table of the catalog: where and when each core was taken (for EcoTaxa, OBIS, EMODnet).

Kept in ``catalog.yaml``'s metadata under ``cores`` (one mapping per core id), beside the sample
entries, so the catalog stays one file and ``intake.open_catalog`` still reads it::

    metadata:
      cores:
        AI-3352: {latitude: -45.12, longitude: 170.5, water_depth_m: 1250.0,
                  collection_date: "2019-03-14", cruise: "TAN1903"}

Import from CSV with :func:`read_cores_file` and :func:`set_cores` (``sedarchive catalog ARCHIVE
--import-cores cores.csv``); every field but ``core`` may be empty.
"""
from __future__ import annotations

import csv
import datetime as dt
import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from catalog import intake_catalog
from catalog.errors import ArchiveError

FIELDS = ("core", "latitude", "longitude", "water_depth_m", "collection_date", "cruise")


@dataclass(frozen=True)
class CoreInfo:
    """One core: id, position (decimal degrees, WGS84), water depth at the site (m), date, cruise."""

    core: str
    latitude: float | None = None
    longitude: float | None = None
    water_depth_m: float | None = None
    collection_date: str | None = None  # ISO 8601 date, YYYY-MM-DD
    cruise: str | None = None

    def __post_init__(self) -> None:
        where = f"core {self.core!r}"
        if not self.core or not isinstance(self.core, str):
            raise ArchiveError("a core needs an id")
        for name, low, high in (("latitude", -90, 90), ("longitude", -180, 180), ("water_depth_m", 0, 12000)):
            value = getattr(self, name)
            if value is None:
                continue
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value) \
                    or not low <= value <= high:
                raise ArchiveError(f"{where}: {name} {value!r} is not a number between {low} and {high}")
        if self.collection_date is not None:
            try:
                dt.date.fromisoformat(str(self.collection_date))
            except ValueError:
                raise ArchiveError(f"{where}: collection_date {self.collection_date!r} is not a date "
                                   f"like 2019-03-14") from None

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if k != "core" and v is not None}


def read_cores(root: str | Path) -> dict[str, CoreInfo]:
    """Core id -> :class:`CoreInfo` from the catalog (empty when none were imported)."""
    cat = intake_catalog.load(Path(root))
    raw = (cat.metadata or {}).get("cores") or {}
    if not isinstance(raw, dict):
        raise ArchiveError(f"{Path(root) / intake_catalog.CATALOG_FILE}: metadata.cores must map core ids to fields")
    return {str(k): CoreInfo(str(k), **{f: v for f, v in (v or {}).items() if f in FIELDS}) for k, v in raw.items()}


def set_cores(root: str | Path, cores: Iterable[CoreInfo]) -> dict[str, CoreInfo]:
    """Add or replace these cores in the catalog's table (under the catalog lock); returns the table."""
    root = Path(root)
    with intake_catalog.locked(root):
        cat = intake_catalog.load(root)
        table = dict((cat.metadata or {}).get("cores") or {})
        for info in cores:
            table[info.core] = info.to_dict()
        cat.metadata = {**(cat.metadata or {}), "cores": table}
        intake_catalog.save(root, cat)
    return read_cores(root)


def read_cores_file(path: str | Path) -> list[CoreInfo]:
    """Cores from a CSV file with a header row naming some of :data:`FIELDS` (``core`` required)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as err:
        raise ArchiveError(f"cannot read cores file {path}: {err}") from None
    reader = csv.DictReader(text.splitlines())
    header = reader.fieldnames or []
    unknown = [h for h in header if h not in FIELDS]
    if "core" not in header or unknown:
        raise ArchiveError(f"{path}: columns must be among {', '.join(FIELDS)} with 'core' "
                           f"(unknown: {', '.join(unknown) or 'none'})")
    out = []
    for line, row in enumerate(reader, start=2):
        fields: dict[str, Any] = {}
        for name in FIELDS[1:]:
            value = (row.get(name) or "").strip()
            if not value:
                continue
            if name in ("latitude", "longitude", "water_depth_m"):
                try:
                    fields[name] = float(value)
                except ValueError:
                    raise ArchiveError(f"{path}:{line}: {name} {value!r} is not a number") from None
            else:
                fields[name] = value
        try:
            out.append(CoreInfo((row.get("core") or "").strip(), **fields))
        except ArchiveError as err:
            raise ArchiveError(f"{path}:{line}: {err}") from None
    return out
