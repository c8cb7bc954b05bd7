"""Grains as a table and as pictures, for the report, the review page and the exports.

:func:`grain_table` gathers the per-grain arrays of the stores (position, box, flags, cluster, size)
into one pandas table; :mod:`.thumbnails` turns grain crops into small JPEGs. Reads stores through
``catalog`` only; the consumers above (``report``, ``review``, ``export``) share it.
"""
from __future__ import annotations

from sedarchive.gallery.grains import MEASUREMENTS, grain_table, read_grain_images

__all__ = ["MEASUREMENTS", "grain_table", "read_grain_images"]
