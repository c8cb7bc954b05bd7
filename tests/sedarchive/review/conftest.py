"""Fixtures of the review tests: the clustered archive of the report tests, and a running server."""
from __future__ import annotations

import importlib.util
import sys
import threading
from pathlib import Path

import pytest

_spec = importlib.util.spec_from_file_location(
    "sedarchive_test_report_conftest", Path(__file__).parents[1] / "report" / "conftest.py")
_report = importlib.util.module_from_spec(_spec)
sys.modules.setdefault(_spec.name, _report)
_spec.loader.exec_module(_report)

clustered_template = _report.clustered_template
clustered_archive = _report.clustered_archive
archive_factory = _report.archive_factory


class RunningServer:
    def __init__(self, archive, user="tester"):
        from sedarchive.review import make_server

        self.archive = archive
        self.server = make_server(archive, "127.0.0.1", 0, user=user, quiet=True)
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        if self.thread is None:
            return
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)
        self.thread = None


@pytest.fixture(scope="module")
def shared_server(clustered_template, tmp_path_factory):
    """One server for tests that must not change anything (they check that nothing changed)."""
    import shutil

    from catalog import Archive

    root = tmp_path_factory.mktemp("shared") / "cores"
    shutil.copytree(clustered_template.root, root)
    running = RunningServer(Archive.open(root))
    yield running
    running.stop()


@pytest.fixture
def start_server():
    """Start another server on an archive (a restart, another user); stopped after the test."""
    started = []

    def start(archive, user="tester"):
        started.append(RunningServer(archive, user))
        return started[-1]

    yield start
    for running in started:
        running.stop()


@pytest.fixture
def review_server(clustered_archive):
    running = RunningServer(clustered_archive)
    yield running
    running.stop()
