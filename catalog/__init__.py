"""The archive layer: sample stores, their layout, and the intake catalog that indexes them.

Bottom layer of sedarchive: imports numpy, zarr, xarray and intake only.
"""
from __future__ import annotations

from catalog.archive import Archive, SampleInfo
from catalog.errors import ArchiveError, SedarchiveError
from catalog.keys import SampleKey, format_depth, parse_depth_range
from catalog.store import (
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
