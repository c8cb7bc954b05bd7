"""Whole-file writes that readers never see half done: one temporary file (or store), then a rename.

Every archive-level file (``labels.yaml``, ``run.json``, ``models/current.json``, ...) and every
archive-level result store (``proportions.zarr``, ``umap.zarr``) is written through these two
functions, so a crash leaves either the old or the new content, never a mixture.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any


def atomic_write(path: str | Path, data: str | bytes | Callable[[Path], Any]) -> Path:
    """Write ``data`` to ``path`` through a temporary file in the same folder and a rename.

    ``data`` is text (UTF-8), bytes, or a function that writes the file it is given (``table.to_csv``,
    ``torch.save``, ...). The temporary name is unique, so threads and processes writing the same
    file at once never mix their bytes: the last rename wins, whole.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> target = pathlib.Path(tempfile.mkdtemp()) / "run.json"
    >>> atomic_write(target, '{"stages_s": {}}').read_text()
    '{"stages_s": {}}'
    """
    path = Path(path)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    tmp = Path(name)
    try:
        with os.fdopen(fd, "wb") as handle:
            if isinstance(data, (str, bytes)):
                handle.write(data.encode("utf-8") if isinstance(data, str) else data)
                handle.flush()
                os.fsync(handle.fileno())
        if callable(data):
            data(tmp)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    return path


def replace_dir(work: str | Path, path: str | Path) -> Path:
    """Swap a finished folder ``work`` in as ``path`` (the old one, if any, is moved aside, then removed).

    Readers see the old folder or the new one, never a half-written one (the report, an export,
    an archive-level Zarr store).
    """
    work, path = Path(work), Path(path)
    old = path.with_name(f".{path.name}.old-{os.getpid()}")
    shutil.rmtree(old, ignore_errors=True)
    if path.exists():
        os.replace(path, old)
    try:
        os.replace(work, path)
    except BaseException:
        if old.exists() and not path.exists():
            os.replace(old, path)  # the swap failed: the old folder takes its place again
        raise
    shutil.rmtree(old, ignore_errors=True)
    return path


def write_new_dir(path: str | Path, fill: Callable[[Path], Any]) -> Path:
    """Write a folder named by its content (a model) once: ``fill`` writes a temporary folder, renamed.

    Nothing happens when ``path`` exists; when another process writes the same folder meanwhile,
    its copy stays (same name, same content) and this one is dropped.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> target = pathlib.Path(tempfile.mkdtemp()) / "models" / "kmeans-1"
    >>> sorted(p.name for p in write_new_dir(target, lambda d: (d / "a.json").write_text("{}")).iterdir())
    ['a.json']
    """
    path = Path(path)
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        fill(tmp)
        tmp.rename(path)
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
        if not path.exists():
            raise
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return path


def write_dataset(ds: Any, path: str | Path) -> Path:
    """Write an xarray Dataset as a whole Zarr v3 store beside ``path``, then swap it in."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zarr: consolidated metadata is not yet in the v3 spec
        ds.to_zarr(str(tmp), mode="w", zarr_format=3, consolidated=True)
    return replace_dir(tmp, path)
