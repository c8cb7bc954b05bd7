"""Whole-file writes that readers never see half done: one temporary file (or store), then a rename.

Every archive-level file (``labels.yaml``, ``run.json``, ``models/current.json``, ...) and every
archive-level result store (``proportions.zarr``, ``umap.zarr``) is written through these two
functions, so a crash leaves either the old or the new content, never a mixture.
"""
from __future__ import annotations

import os
import shutil
import warnings
from pathlib import Path
from typing import Any


def atomic_write(path: str | Path, data: str | bytes) -> Path:
    """Write ``data`` (text as UTF-8, or bytes) to ``path`` through a temporary file and a rename.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> target = pathlib.Path(tempfile.mkdtemp()) / "run.json"
    >>> atomic_write(target, '{"stages_s": {}}').read_text()
    '{"stages_s": {}}'
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    if isinstance(data, bytes):
        tmp.write_bytes(data)
    else:
        tmp.write_text(data, encoding="utf-8")
    os.replace(tmp, path)
    return path


def write_dataset(ds: Any, path: str | Path) -> Path:
    """Write an xarray Dataset as a whole Zarr v3 store beside ``path``, then swap it in."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    old = path.with_name(f".{path.name}.old-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zarr: consolidated metadata is not yet in the v3 spec
        ds.to_zarr(str(tmp), mode="w", zarr_format=3, consolidated=True)
    if path.exists():
        path.rename(old)
    tmp.rename(path)
    shutil.rmtree(old, ignore_errors=True)
    return path
