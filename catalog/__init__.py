"""The archive layer: sample stores, their layout, and the intake catalog that indexes them.

Bottom layer of sedarchive: imports numpy, zarr, xarray and intake only.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from catalog.errors import ArchiveError, SedarchiveError
from catalog.keys import SampleKey, format_depth, parse_depth_range

#: names served on first use (PEP 562), so that ``import catalog`` and the command line's ``--help``
#: do not load zarr, xarray and Dask
_ARCHIVE_NAMES = ("Archive", "SampleInfo")
_STORE_NAMES = ("STATUSES", "array_chunks", "array_names", "array_shape", "create_variables", "open_sample",
                "positions_done", "read_array", "read_attrs", "record_stage", "status_rank", "update_attrs",
                "write_position", "write_region")

if TYPE_CHECKING:  # for type checkers and IDEs: the names as if imported at once
    from catalog.archive import Archive, SampleInfo  # noqa: F401
    from catalog.store import (  # noqa: F401
        STATUSES,
        array_chunks,
        array_names,
        array_shape,
        create_variables,
        open_sample,
        positions_done,
        read_array,
        read_attrs,
        record_stage,
        status_rank,
        update_attrs,
        write_position,
        write_region,
    )


def __getattr__(name: str):
    if name in _ARCHIVE_NAMES:
        from catalog import archive as module
    elif name in _STORE_NAMES:
        from catalog import store as module
    else:
        raise AttributeError(f"module 'catalog' has no attribute {name!r}")
    value = getattr(module, name)
    globals()[name] = value
    return value


__all__ = [
    "Archive",
    "ArchiveError",
    "SampleInfo",
    "SampleKey",
    "SedarchiveError",
    "STATUSES",
    "array_chunks",
    "array_names",
    "array_shape",
    "format_depth",
    "open_sample",
    "parse_depth_range",
    "positions_done",
    "status_rank",
    "write_position",
    "create_variables",
    "read_array",
    "read_attrs",
    "record_stage",
    "update_attrs",
    "write_region",
]
