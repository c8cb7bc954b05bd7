"""The pipeline's bookkeeping: failed samples drop out of later stages, a failed whole-archive stage stops.

These use small stand-in stages defined here (plain functions returning TaskReports), so the rules of
:func:`run_pipeline` are checked apart from the real stages; the real pipeline is exercised by
``test_fault_tolerance.py``.
"""
from __future__ import annotations

import json

import pytest

from catalog import SampleKey
from catalog.errors import SedarchiveError
from sedarchive.dask.tasks import TaskReport
from sedarchive.pipeline import STAGES, PipelineReport, run_pipeline
from sedarchive.pipeline import Step as Stage

KEYS = [SampleKey("A", 0, 2), SampleKey("A", 2, 4), SampleKey("B", 0, 2)]
CALLS: list[tuple[str, list[str]]] = []


def _segment(archive, keys, client, settings, *, quiet=False):
    CALLS.append(("segment", [k.name for k in keys]))
    return TaskReport(results={k: 1 for k in keys if k != KEYS[1]},
                      failures={KEYS[1]: "InputError: frame 3 has no green background"})


def _encode(archive, keys, client, settings, *, quiet=False):
    CALLS.append(("encode", [k.name for k in keys]))
    return TaskReport(results={k: settings for k in keys}, failures={"B_0-2cm": "truncated chunk"})


def _train_fails(archive, keys, client, settings, *, quiet=False):
    CALLS.append(("train", [k.name for k in keys]))
    raise SedarchiveError("no grains to train on")


def _report(archive, keys, client, settings, *, quiet=False):
    CALLS.append(("report", [k.name for k in keys]))
    return TaskReport(results={"report": "index.html"})


def _stage(name, function, per_sample=True):
    return Stage(name, "unused", f"{__name__}:{function}", per_sample=per_sample)


@pytest.fixture(autouse=True)
def _clear_calls():
    CALLS.clear()


def test_failed_samples_are_skipped_by_later_stages_and_listed(archive):
    stages = [_stage("segment", "_segment"), _stage("encode", "_encode"), _stage("report", "_report", False)]
    report = run_pipeline(archive, KEYS, None, {"encode": "cpu"}, stages=stages, quiet=True)
    assert CALLS == [("segment", ["A_0-2cm", "A_2-4cm", "B_0-2cm"]),
                     ("encode", ["A_0-2cm", "B_0-2cm"]),          # A_2-4cm failed segmentation
                     ("report", ["A_0-2cm"])]                     # B_0-2cm failed encoding (by name)
    assert report.sample_failures == {"A_2-4cm": ("segment", "InputError: frame 3 has no green background"),
                                      "B_0-2cm": ("encode", "truncated chunk")}
    assert report.exit_code == 1
    text = report.summary()
    assert "2 sample(s) failed" in text and "A_2-4cm [segment]: InputError: frame 3" in text


def test_whole_archive_stage_failure_stops_the_run(archive):
    stages = [_stage("segment", "_segment"), _stage("train", "_train_fails", False), _stage("report", "_report", False)]
    report = run_pipeline(archive, KEYS, None, {}, stages=stages, quiet=True)
    assert [c[0] for c in CALLS] == ["segment", "train"]
    assert report.stage_failures == {"train": "no grains to train on"}
    assert "stage train failed, later stages not run: no grains to train on" in report.summary()
    assert report.exit_code == 1


def test_clean_run_exits_zero(archive):
    report = run_pipeline(archive, KEYS[:1], None, {}, stages=[_stage("report", "_report", False)], quiet=True)
    assert report.ok and report.exit_code == 0 and isinstance(report, PipelineReport)
    assert "no failures" in report.summary()
    assert list(json.loads((archive.root / "run.json").read_text())["stages_s"]) == ["report"]


def test_missing_stage_code_is_a_clear_error(archive):
    stage = Stage("segment", "unused", "sedarchive.no_such_module:run_stage")
    report = run_pipeline(archive, KEYS, None, {}, stages=[stage], quiet=True)
    assert "cannot load sedarchive.no_such_module:run_stage" in report.stage_failures["segment"]


def test_stage_order_is_the_papers():
    assert [s.name for s in STAGES] == ["segment", "train", "encode", "cluster", "report"]


def test_a_full_disk_for_run_json_is_a_warning_not_a_crash(archive, monkeypatch, capsys):
    import sedarchive.pipeline as pipeline

    def full(path, data):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(pipeline, "atomic_write", full)
    stages = [_stage("segment", "_segment"), _stage("report", "_report", False)]
    report = run_pipeline(archive, KEYS, None, {}, stages=stages, quiet=True)
    assert [s.name for s in report.stages] == ["segment", "report"]
    err = capsys.readouterr().err
    assert "cannot write run.json (No space left on device)" in err and err.count("\n") == 2
    assert not archive.run_path.exists()
