"""The report: ``ARCHIVE/report/index.html`` with the map, cluster galleries and down-core series.

Public: :func:`write_report`, :class:`ReportSettings` and :func:`run_stage` (the pipeline's step); :func:`grain_table` (one row per grain)
is shared with the review page and the export.
"""
from __future__ import annotations

from sedarchive.report.build import ReportSettings, run_stage, write_report
from sedarchive.gallery.grains import grain_table, read_grain_images

__all__ = ["ReportSettings", "grain_table", "read_grain_images", "run_stage", "write_report"]
