"""``ARCHIVE/models/current.json``: which trained models are in use (``encoder``, ``kmeans``, ...).

Several stages name their model there, so every change is a read-modify-write under a lock,
written to a temporary file and renamed into place.
"""
from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from catalog.errors import ArchiveError
from catalog.files import atomic_write
from catalog.intake_catalog import locked_file

CURRENT_FILE = "current.json"


def _models_dir(where: Any) -> Path:
    """``ARCHIVE/models`` of an :class:`~catalog.Archive`, or the folder itself."""
    return Path(getattr(where, "models_dir", where))


def read_current(models_dir: Any) -> dict[str, Any]:
    """The models in use (an empty dict before any model was saved); ``models_dir`` may be the Archive.

    The one reader of ``current.json`` (the encoder registry and the K-means model use it too).
    """
    path = _models_dir(models_dir) / CURRENT_FILE
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text())
    except ValueError as err:
        raise ArchiveError(f"{path} is not valid JSON: {err}") from None
    if not isinstance(data, dict):
        raise ArchiveError(f"{path} must hold a JSON object")
    return data


def update_current(models_dir: Any, changes: Mapping[str, Any]) -> dict[str, Any]:
    """Set keys of ``current.json``, keeping the others; returns the new content (``models_dir`` may be the Archive)."""
    models_dir = _models_dir(models_dir)
    models_dir.mkdir(parents=True, exist_ok=True)
    path = models_dir / CURRENT_FILE
    with locked_file(models_dir / ".current.lock"):
        data = read_current(models_dir)
        data.update(changes)
        atomic_write(path, json.dumps(data, indent=2, sort_keys=True) + "\n")
    return data
