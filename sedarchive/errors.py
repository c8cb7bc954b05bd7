"""Errors of the processing layer (all one line for the user)."""
from __future__ import annotations

from catalog.errors import ArchiveError, SedarchiveError


class InputError(SedarchiveError):
    """Bad input data: an unreadable image, wrong shapes, a missing layer, a frame without background."""


__all__ = ["ArchiveError", "InputError", "SedarchiveError"]
