"""Errors that reach the user as one line.

Every package of sedarchive raises subclasses of :class:`SedarchiveError` for bad input or a
broken archive; the command line prints ``str(err)`` and exits non-zero.
"""
from __future__ import annotations


class SedarchiveError(Exception):
    """Base of every error whose message is meant for the user (one line, names the culprit)."""


class ArchiveError(SedarchiveError):
    """The archive or a sample store is missing, malformed, or asked for something it lacks."""
