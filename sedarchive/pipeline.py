"""The whole pipeline, in order: segment, train, encode, cluster, report.

Orchestration only: every stage is its own ``run_stage(archive, keys, client, settings, *, quiet)``
(CONTRIBUTING.md); this module calls them in order, passes on only the samples that are still
healthy, and gathers what went wrong into one :class:`PipelineReport`.

- A sample that fails in a stage (a corrupt frame, a store it cannot read) is reported with its
  one-line reason and left out of the later stages; the other samples go on.
- A stage that fails as a whole (training with no grains, a missing model) stops the run: the
  later stages would only fail the same way.
- Every stage skips finished work itself, so running the pipeline again after a crash or a kill
  resumes where it stopped and ends with the result of an uninterrupted run.
"""
from __future__ import annotations

import importlib
import json
import os
import sys
import time
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from catalog import Archive, SampleKey
from catalog.errors import SedarchiveError
from sedarchive.dask.tasks import TaskReport, one_line


@dataclass(frozen=True)
class Stage:
    """One step of the pipeline: its name, its command module, and its ``run_stage`` function.

    ``runner`` is ``"module:function"``, imported only when the step runs (torch and friends load late).
    ``per_sample`` steps get the healthy samples; the others (training, clustering, the report) see
    the archive as a whole and a failure of theirs stops the run.
    """

    name: str
    command: str
    runner: str
    per_sample: bool = True

    def load(self) -> Callable[..., TaskReport]:
        module, _, function = self.runner.partition(":")
        try:
            return getattr(importlib.import_module(module), function)
        except (ImportError, AttributeError) as err:
            raise SedarchiveError(f"pipeline stage {self.name}: cannot load {self.runner} ({one_line(err)})") from None


STAGES: tuple[Stage, ...] = (
    Stage("segment", "sedarchive.commands.segment", "sedarchive.segmentation.stage:run_stage"),
    Stage("train", "sedarchive.commands.train", "sedarchive.features.stage:train_stage", per_sample=False),
    Stage("encode", "sedarchive.commands.encode", "sedarchive.features.stage:run_stage"),
    Stage("cluster", "sedarchive.commands.cluster", "sedarchive.counting.stage:run_stage", per_sample=False),
    Stage("report", "sedarchive.commands.report", "sedarchive.report.build:run_stage", per_sample=False),
)


@dataclass
class StageOutcome:
    """What one stage did: its task report (or the error that stopped it) and how long it took."""

    name: str
    report: TaskReport | None
    seconds: float
    error: str | None = None


@dataclass
class PipelineReport:
    """The outcome of a run: every stage's outcome, and the failures by sample and stage."""

    stages: list[StageOutcome] = field(default_factory=list)
    sample_failures: dict[str, tuple[str, str]] = field(default_factory=dict)
    stage_failures: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.sample_failures and not self.stage_failures

    @property
    def exit_code(self) -> int:
        """0 when everything worked, 1 when some sample or stage failed."""
        return 0 if self.ok else 1

    def summary(self) -> str:
        """A few lines for the terminal: time per stage, then each failure with its reason."""
        lines = ["pipeline: " + ", ".join(f"{s.name} {s.seconds:.1f} s" + (" FAILED" if s.error else "")
                                         for s in self.stages)]
        if self.ok:
            lines.append("pipeline: every stage finished, no failures")
            return "\n".join(lines)
        if self.sample_failures:
            lines.append(f"pipeline: {len(self.sample_failures)} sample(s) failed and were skipped:")
            lines += [f"  {name} [{stage}]: {reason}" for name, (stage, reason) in sorted(self.sample_failures.items())]
        for stage, reason in self.stage_failures.items():
            lines.append(f"pipeline: stage {stage} failed, later stages not run: {reason}")
        return "\n".join(lines)


def stage_settings(args: Any, stages: Sequence[Stage] = STAGES) -> dict[str, Any]:
    """Each stage's settings from parsed command-line options (its module's ``settings_from``)."""
    return {stage.name: importlib.import_module(stage.command).settings_from(args) for stage in stages}


def run_pipeline(
    archive: Archive,
    keys: Sequence[SampleKey],
    client: Any,
    settings: Mapping[str, Any],
    *,
    stages: Sequence[Stage] = STAGES,
    quiet: bool = False,
) -> PipelineReport:
    """Run ``stages`` in order on ``keys``; failed samples drop out, a failed whole-archive stage stops.

    Parameters
    ----------
    archive, keys
        The archive and the samples to process (the report and clustering look at the archive).
    client
        A ``distributed.Client``; the stages submit their tasks to it.
    settings
        Settings per stage name (what ``settings_from`` gave); a missing one means the stage's defaults.
    """
    outcome = PipelineReport()
    healthy = list(keys)
    for stage in stages:
        if stage.per_sample and not healthy:
            _say(quiet, f"pipeline: {stage.name}: no sample left to process")
            break
        _say(quiet, f"pipeline: {stage.name} ({len(healthy)} sample(s))")
        start = time.monotonic()
        try:
            report = stage.load()(archive, list(healthy), client, settings.get(stage.name), quiet=quiet)
        except SedarchiveError as err:
            outcome.stages.append(StageOutcome(stage.name, None, time.monotonic() - start, one_line(err)))
            outcome.stage_failures[stage.name] = one_line(err)
            break
        outcome.stages.append(StageOutcome(stage.name, report, time.monotonic() - start))
        _record_timings(archive, outcome)
        failed = _sample_failures(report, healthy)
        for key, reason in failed.values():
            outcome.sample_failures[key.name] = (stage.name, reason)
        failed_keys = {key for key, _ in failed.values()}
        healthy = [key for key in healthy if key not in failed_keys]
        whole = {k: r for k, r in report.failures.items() if k not in failed}
        if whole:
            outcome.stages[-1].error = "; ".join(f"{_name(k)}: {r}" for k, r in whole.items())
            outcome.stage_failures[stage.name] = outcome.stages[-1].error
            break
    return outcome


def _record_timings(archive: Archive, outcome: PipelineReport) -> None:
    """``ARCHIVE/run.json``: seconds per stage of the latest run (the report's timings table reads it)."""
    data = {"stages_s": {s.name: round(s.seconds, 3) for s in outcome.stages}}
    tmp = archive.root / ".run.json.tmp"
    tmp.write_text(json.dumps(data, indent=1))
    os.replace(tmp, archive.root / "run.json")


def _sample_failures(report: TaskReport, keys: Sequence[SampleKey]) -> dict[Hashable, tuple[SampleKey, str]]:
    """Failures that belong to one of ``keys`` (reported by SampleKey or by sample name), by report key."""
    by_name = {key.name: key for key in keys}
    found: dict[Hashable, tuple[SampleKey, str]] = {}
    for k, reason in report.failures.items():
        key = by_name.get(k.name if isinstance(k, SampleKey) else str(k))
        if key is not None:
            found[k] = (key, reason)
    return found


def _name(key: Hashable) -> str:
    return getattr(key, "name", None) or str(key)


def _say(quiet: bool, message: str) -> None:
    if not quiet:
        print(message, file=sys.stderr, flush=True)
