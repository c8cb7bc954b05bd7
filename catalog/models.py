"""``ARCHIVE/models/current.json``: which trained models are in use (``encoder``, ``kmeans``, ...).

Several stages name their model there, so every change is a read-modify-write under a lock,
written to a temporary file and renamed into place.
"""
from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from catalog.errors import ArchiveError
from catalog.intake_catalog import locked_file

CURRENT_FILE = "current.json"


def read_current(models_dir: str | Path) -> dict[str, Any]:
    """The models in use (an empty dict before any model was saved)."""
    path = Path(models_dir) / CURRENT_FILE
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text())
    except ValueError as err:
        raise ArchiveError(f"{path} is not valid JSON: {err}") from None
    if not isinstance(data, dict):
        raise ArchiveError(f"{path} must hold a JSON object")
    return data


def update_current(models_dir: str | Path, changes: Mapping[str, Any]) -> dict[str, Any]:
    """Set keys of ``current.json``, keeping the others; returns the new content."""
    models_dir = Path(models_dir)
    models_dir.mkdir(parents=True, exist_ok=True)
    path = models_dir / CURRENT_FILE
    with locked_file(models_dir / ".current.lock"):
        data = read_current(models_dir)
        data.update(changes)
        tmp = path.with_name(f".{CURRENT_FILE}.tmp-{os.getpid()}")
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
        os.replace(tmp, path)
    return data
