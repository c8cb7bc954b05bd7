"""Export: labelled grains as a table, and EcoTaxa import archives."""
from __future__ import annotations

from sedarchive.export.ecotaxa import export_ecotaxa, export_table, labelled_grains

__all__ = ["export_ecotaxa", "export_table", "labelled_grains"]
