"""One stage command at a time per archive; the second is refused in one line naming the holder."""
from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest

from catalog import Archive
from catalog.lock import ArchiveBusyError, archive_lock, holder


def test_a_second_holder_is_refused_with_who_holds_it(tmp_path):
    archive = Archive.create(tmp_path / "a")
    with archive_lock(archive.root, "sedarchive run A"):
        who = holder(archive.root)
        assert who["pid"] == os.getpid() and who["host"] == socket.gethostname()
        # a second open file (as another process would have) cannot take it
        proc = subprocess.run([sys.executable, "-c", (
            "import sys; from catalog.lock import archive_lock\n"
            "try:\n  cm = archive_lock(sys.argv[1], 'x'); cm.__enter__()\n"
            "except Exception as e: print(e); sys.exit(3)\n"), str(archive.root)],
            capture_output=True, text=True, timeout=120, env={**os.environ})
        assert proc.returncode == 3
        assert f"in use by pid {os.getpid()} on {socket.gethostname()}" in proc.stdout
        assert "sedarchive run A" in proc.stdout
    with archive_lock(archive.root):  # released: taken again
        pass


def test_the_command_line_refuses_a_second_stage_command(tmp_path):
    archive = Archive.create(tmp_path / "a")
    with archive_lock(archive.root, "sedarchive run (test)"):
        proc = subprocess.run([sys.executable, "-m", "sedarchive", "cluster", str(archive.root)],
                              capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0
    assert f"in use by pid {os.getpid()}" in proc.stderr and "sedarchive run (test)" in proc.stderr


def test_the_lock_is_dropped_when_its_holder_is_killed(tmp_path):
    archive = Archive.create(tmp_path / "a")
    proc = subprocess.Popen([sys.executable, "-c", (
        "import sys, time; from catalog.lock import archive_lock\n"
        "with archive_lock(sys.argv[1], 'sleeper'):\n  print('held', flush=True); time.sleep(600)\n"),
        str(archive.root)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "held"
        with pytest.raises(ArchiveBusyError, match="sleeper"):
            with archive_lock(archive.root):
                pass
        proc.kill()
        proc.wait(timeout=60)
        with archive_lock(archive.root):
            pass
    finally:
        proc.kill()
