"""The archive lock: one command that changes stage results at a time, and who holds it.

``sedarchive segment``, ``train``, ``encode``, ``cluster``, ``report`` and ``run`` take an exclusive
``flock`` on ``ARCHIVE/.sedarchive.lock`` for as long as they run. The kernel drops the lock when
the holding process ends, however it ends (a kill leaves no stale lock on a local disk). The
holder writes its pid, host, command and start time into the file, so a second command is
refused with one line that says who is at work.
"""
from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import os
import socket
import sys
from collections.abc import Iterator
from pathlib import Path

from catalog.errors import ArchiveError

LOCK_FILE = ".sedarchive.lock"


class ArchiveBusyError(ArchiveError):
    """Another command holds the archive lock."""


def holder(root: str | Path) -> dict | None:
    """Who holds (or last held) the lock of the archive at ``root``, as written in the lock file."""
    try:
        return json.loads((Path(root) / LOCK_FILE).read_text() or "null")
    except (OSError, ValueError):
        return None


@contextlib.contextmanager
def archive_lock(root: str | Path, command: str | None = None) -> Iterator[None]:
    """Hold the archive's lock for the block; :class:`ArchiveBusyError` if another process has it."""
    path = Path(root) / LOCK_FILE
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as err:
        raise ArchiveError(f"cannot take the archive lock {path}: {err.strerror or err}") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            who = holder(root) or {}
            raise ArchiveBusyError(
                f"archive {Path(root)} is in use by pid {who.get('pid', '?')} on {who.get('host', '?')} "
                f"since {who.get('since', '?')} ({who.get('command', '?')}); wait until it ends, or stop it "
                f"(a killed command leaves no lock behind)") from None
        me = {"pid": os.getpid(), "host": socket.gethostname(), "command": command or " ".join(sys.argv),
              "since": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(me).encode(), 0)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
