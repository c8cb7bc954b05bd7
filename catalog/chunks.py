"""A chunk missing from a sample store is damage, never zeros.

Zarr reads a chunk that is not on disk as the array's fill value, so a deleted ``bbox`` chunk
would read as boxes 0,0,0,0 and a deleted ``particle_images`` chunk as black thumbnails. Arrays
written by this version carry the attribute :data:`EVERY_CHUNK` (their writers store every chunk,
even one equal to the fill value), and reads of them check that each chunk they touch exists.

The one place where the contract allows unwritten elements: arrays along ``position``
(``stacks``, ``stage_xy_mm``) of positions that ``position_done`` does not mark (not acquired
yet) read as fill values.
"""
from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import numpy as np

from catalog.errors import ArchiveError

#: array attribute marking arrays whose every chunk is written (arrays of older stores lack it and
#: are read as before: there a missing chunk cannot be told from an all-fill one)
EVERY_CHUNK = "every_chunk_written"


class MissingChunkError(ArchiveError):
    """A chunk that was written is gone from the store (deleted, or lost with a disk)."""


def _rows(selection: Any, n: int) -> np.ndarray | None:
    """The indices along the first axis that ``selection`` reads, or None for all of them."""
    first = selection[0] if isinstance(selection, tuple) and selection else selection
    if isinstance(first, slice):
        return np.arange(*first.indices(n))
    if isinstance(first, (int, np.integer)):
        i = int(first)
        return np.array([i + n if i < 0 else i])
    if first is Ellipsis or (isinstance(selection, tuple) and not selection):
        return None
    arr = np.asarray(first)
    if arr.dtype == bool and arr.shape == (n,):
        return np.flatnonzero(arr)
    if arr.dtype.kind in "iu":
        arr = arr.ravel().astype(np.int64)
        return np.where(arr < 0, arr + n, arr)
    return None


def check_chunks(path: str | Path, group: Any, name: str, selection: Any = slice(None)) -> None:
    """Raise :class:`MissingChunkError` if a chunk that ``selection`` of ``group[name]`` reads is missing.

    Only file names are looked at (no data read). Arrays without the :data:`EVERY_CHUNK` mark
    (older stores) are not checked.
    """
    array = group[name]
    if not array.attrs.get(EVERY_CHUNK) or array.size == 0:
        return
    grid = array.cdata_shape
    rows_per_chunk = int(array.chunks[0])
    rows = _rows(selection, int(array.shape[0]))
    first = (np.arange(grid[0]) if rows is None
             else np.unique(rows[(rows >= 0) & (rows < array.shape[0])] // rows_per_chunk))
    dims = getattr(array.metadata, "dimension_names", None) or ()
    # positions not acquired yet may lack chunks: ``position_done`` is read only for a missing chunk
    # (it has one chunk per position, so reading all of it for every read grew with the sample)
    by_position = bool(dims) and dims[0] == "position" and name != "position_done" and "position_done" in group
    folder = Path(path) / name
    for c0 in first:
        for rest in itertools.product(*(range(g) for g in grid[1:])):
            coords = (int(c0), *rest)
            if (folder / array.metadata.encode_chunk_key(coords)).exists():
                continue
            lo = int(c0) * rows_per_chunk
            hi = min(lo + rows_per_chunk, int(array.shape[0]))
            if by_position and not np.asarray(group["position_done"][lo:hi], dtype=bool).any():
                continue  # not acquired yet: fill values are the contract
            where = f"rows {lo}-{hi - 1}" if hi - lo > 1 else f"row {lo}"
            raise MissingChunkError(
                f"sample {Path(path).name}: chunk {'.'.join(map(str, coords))} of {name!r} ({where}) "
                f"is missing from the store; the sample is damaged (run the stage that writes "
                f"{name!r} again with --force, or restore the sample from a backup)"
            )


class CheckedArray:
    """A read-only array of a store whose slicing checks its chunks first (shape, dtype, ... pass through)."""

    def __init__(self, path: str | Path, group: Any, name: str) -> None:
        self._path, self._group, self._name = path, group, name
        self._array = group[name]

    def __getitem__(self, selection: Any) -> np.ndarray:
        check_chunks(self._path, self._group, self._name, selection)
        return self._array[selection]

    def __getattr__(self, attr: str) -> Any:
        return getattr(self._array, attr)

    def __len__(self) -> int:
        return int(self._array.shape[0])
