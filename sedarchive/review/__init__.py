"""The expert's review page: name, merge, exclude and split clusters, each decision saved at once.

Public: :func:`make_server` (a ready, bounded ``ThreadingHTTPServer``) and :class:`ReviewState` (what the
page reads and changes, usable without HTTP).
"""
from __future__ import annotations

from sedarchive.review.server import make_server
from sedarchive.review.state import ReviewState, check_decision

__all__ = ["ReviewState", "check_decision", "make_server"]
