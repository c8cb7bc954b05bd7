"""A failed report leaves the previous one whole: failures injected at the start, middle and end."""
from __future__ import annotations

import hashlib

import pytest

from sedarchive.report import ReportSettings, write_report
from sedarchive.report import build as build_module


def _tree(folder):
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("where, name", [("start", "grain_table"), ("middle", "_galleries"),
                                         ("end", "replace_dir")])
def test_a_failed_report_leaves_the_previous_one(clustered_archive, monkeypatch, where, name):
    write_report(clustered_archive, ReportSettings(examples_per_cluster=2))
    before = _tree(clustered_archive.report_dir)

    def fail(*args, **kwargs):
        raise OSError(28, f"No space left on device (injected at the {where})")

    monkeypatch.setattr(build_module, name, fail)
    with pytest.raises(OSError, match="injected"):
        write_report(clustered_archive, ReportSettings(examples_per_cluster=3))
    assert _tree(clustered_archive.report_dir) == before
    assert not list(clustered_archive.root.glob(".report*"))


def test_a_failed_swap_puts_the_previous_report_back(clustered_archive, monkeypatch):
    import catalog.files

    write_report(clustered_archive, ReportSettings(examples_per_cluster=2))
    before = _tree(clustered_archive.report_dir)
    real, calls = catalog.files.os.replace, []

    def second_fails(src, dst):
        calls.append(dst)
        if len(calls) == 2:  # the old report is aside, the new one not yet in
            raise OSError(5, "I/O error (injected)")
        return real(src, dst)

    monkeypatch.setattr(catalog.files.os, "replace", second_fails)
    with pytest.raises(OSError, match="injected"):
        write_report(clustered_archive, ReportSettings(examples_per_cluster=3))
    monkeypatch.undo()
    assert _tree(clustered_archive.report_dir) == before
    assert not list(clustered_archive.root.glob(".report*"))
