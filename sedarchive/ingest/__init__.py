"""Ingest: existing photographs (a folder or a CSV manifest) into a new sample store."""
from __future__ import annotations

from sedarchive.ingest.photos import IngestPlan, ingest, plan_ingest

__all__ = ["IngestPlan", "ingest", "plan_ingest"]
