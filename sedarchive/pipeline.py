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

import json
import sys
import time
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any

from catalog import Archive, SampleKey
from catalog.errors import SedarchiveError
from catalog.files import atomic_write
from sedarchive.dask import TaskReport, one_line

if TYPE_CHECKING:
    from sedarchive.clustering.stage import ClusterSettings
    from sedarchive.features.settings import EncodeSettings, TrainSettings
    from sedarchive.report.build import ReportSettings
    from sedarchive.segmentation.settings import SegmentSettings

StageRunner = Callable[..., TaskReport]


# -- the stages: each runner imports its stage when it runs (torch and friends load late) ----------
def run_segment(archive: Archive, keys: list[SampleKey], client: Any, settings: SegmentSettings | None, *,
                quiet: bool = False) -> TaskReport:
    """Segmentation (:func:`sedarchive.segmentation.stage.run_stage`)."""
    from sedarchive.segmentation.stage import run_stage

    return run_stage(archive, keys, client, settings if settings is not None else default_settings("segment"),
                     quiet=quiet)


def run_train(archive: Archive, keys: list[SampleKey], client: Any, settings: TrainSettings | None, *,
              quiet: bool = False) -> TaskReport:
    """Training of the encoder (:func:`sedarchive.features.stage.train_stage`)."""
    from sedarchive.features.stage import train_stage

    return train_stage(archive, keys, client, settings if settings is not None else default_settings("train"),
                       quiet=quiet)


def run_encode(archive: Archive, keys: list[SampleKey], client: Any, settings: EncodeSettings | None, *,
               quiet: bool = False) -> TaskReport:
    """Encoding (:func:`sedarchive.features.stage.run_stage`)."""
    from sedarchive.features.stage import run_stage

    return run_stage(archive, keys, client, settings if settings is not None else default_settings("encode"),
                     quiet=quiet)


def run_cluster(archive: Archive, keys: list[SampleKey], client: Any, settings: ClusterSettings | None, *,
                quiet: bool = False) -> TaskReport:
    """Clustering, then counting (:func:`sedarchive.counting.stage.run_stage`): clustering never counts."""
    from sedarchive.counting.stage import run_stage

    return run_stage(archive, keys, client, settings if settings is not None else default_settings("cluster"),
                     quiet=quiet)


def run_report(archive: Archive, keys: list[SampleKey], client: Any, settings: ReportSettings | None, *,
               quiet: bool = False) -> TaskReport:
    """The report (:func:`sedarchive.report.build.run_stage`)."""
    from sedarchive.report.build import run_stage

    return run_stage(archive, keys, client, settings if settings is not None else default_settings("report"),
                     quiet=quiet)


@dataclass(frozen=True)
class Step:
    """One step of the pipeline: its name, the verb that runs it alone, and its runner.

    ``runner`` is a function ``(archive, keys, client, settings, *, quiet) -> TaskReport``; a
    ``"module:function"`` string names a runner from outside the project (a plug-in or a stand-in
    of a test), imported when the step runs. ``per_sample`` steps get the healthy samples; the others
    (training, clustering, the report) see the archive as a whole and a failure of theirs stops the run.
    """

    name: str
    command: str
    runner: StageRunner | str
    per_sample: bool = True

    def load(self) -> StageRunner:
        if callable(self.runner):
            return self.runner
        module, _, function = self.runner.partition(":")
        if module.partition(".")[0] in PROJECT_PACKAGES:
            raise SedarchiveError(f"pipeline stage {self.name}: cannot load {self.runner} (project stages are "
                                  f"functions, imported statically)")
        try:
            return getattr(_import_external(module), function)
        except (ImportError, AttributeError) as err:
            raise SedarchiveError(f"pipeline stage {self.name}: cannot load {self.runner} ({one_line(err)})") from None


#: the import packages of this project: never loaded by name (tests/test_layers.py checks it)
PROJECT_PACKAGES = ("catalog", "acquisition", "sedarchive")


def _import_external(module: str) -> Any:
    import importlib

    return importlib.import_module(module)


STAGES: tuple[Step, ...] = (
    Step("segment", "sedarchive segment", run_segment),
    Step("train", "sedarchive train", run_train, per_sample=False),
    Step("encode", "sedarchive encode", run_encode),
    Step("cluster", "sedarchive cluster", run_cluster, per_sample=False),
    Step("report", "sedarchive report", run_report, per_sample=False),
)


def default_settings(stage: str) -> Any:
    """The settings a stage runs with when none are given (each stage's own defaults)."""
    if stage == "segment":
        from sedarchive.segmentation.settings import SegmentSettings

        return SegmentSettings()
    if stage == "train":
        from sedarchive.features.settings import DEFAULT_PRESET, preset

        return preset(DEFAULT_PRESET)
    if stage == "encode":
        from sedarchive.features.settings import EncodeSettings

        return EncodeSettings()
    if stage == "cluster":
        from sedarchive.clustering.stage import ClusterSettings

        return ClusterSettings()
    if stage == "report":
        from sedarchive.report.build import ReportSettings

        return ReportSettings()
    raise SedarchiveError(f"no pipeline stage {stage!r}; stages: {', '.join(s.name for s in STAGES)}")


@dataclass
class PipelineSettings:
    """One settings object per stage; a stage left at None runs with its own defaults.

    Examples
    --------
    >>> from sedarchive.features.settings import preset
    >>> settings = PipelineSettings(train=preset("cpu"))
    >>> settings.for_stage("segment").method
    'slic'
    """

    segment: SegmentSettings | None = None
    train: TrainSettings | None = None
    encode: EncodeSettings | None = None
    cluster: ClusterSettings | None = None
    report: ReportSettings | None = None

    def for_stage(self, name: str) -> Any:
        """The settings of stage ``name``: those given, else the stage's defaults."""
        given = getattr(self, name, None) if name in {f.name for f in fields(self)} else None
        return given if given is not None else default_settings(name)

    @classmethod
    def from_mapping(cls, settings: Mapping[str, Any]) -> PipelineSettings:
        """From ``{stage name: settings}`` (unknown names are an error)."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(settings) - known)
        if unknown:
            raise SedarchiveError(f"pipeline settings: unknown stage(s) {', '.join(unknown)}; "
                                  f"stages: {', '.join(sorted(known))}")
        return cls(**dict(settings))


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


def run_pipeline(
    archive: Archive,
    keys: Sequence[SampleKey],
    client: Any,
    settings: PipelineSettings | Mapping[str, Any] | None = None,
    *,
    stages: Sequence[Step] = STAGES,
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
        A :class:`PipelineSettings` (or ``{stage name: settings}``); a stage without settings runs
        with its own defaults.
    """
    given = dict(settings or {}) if not isinstance(settings, PipelineSettings) else {
        f.name: getattr(settings, f.name) for f in fields(settings) if getattr(settings, f.name) is not None}
    outcome = PipelineReport()
    healthy = list(keys)
    for stage in stages:
        if stage.per_sample and not healthy:
            _say(quiet, f"pipeline: {stage.name}: no sample left to process")
            break
        _say(quiet, f"pipeline: {stage.name} ({len(healthy)} sample(s))")
        start = time.monotonic()
        try:
            report = stage.load()(archive, list(healthy), client, given.get(stage.name), quiet=quiet)
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


def check_stores(archive: Archive, keys: Sequence[SampleKey]) -> None:
    """Before any stage changes anything: every selected sample, and every catalogued one (the
    cluster stage and the report look at the whole archive), has a readable store (``sedarchive
    run`` calls it before :func:`run_pipeline`).

    A stale catalog entry (a store deleted or damaged since) would otherwise let the early stages
    retrain and relabel on the remaining samples, then fail half-way through the run.
    """
    from catalog import read_attrs

    wanted = {key.name: key for key in keys}
    for row in archive.samples():
        wanted.setdefault(row.name, row.key)
    bad = []
    for name, key in sorted(wanted.items()):
        try:
            read_attrs(archive.sample_path(key))
        except SedarchiveError as err:
            bad.append(f"{name} ({one_line(err)})")
    if bad:
        raise SedarchiveError(f"{len(bad)} catalogued sample(s) cannot be read, nothing was changed: "
                              f"{'; '.join(bad[:3])}{' ...' if len(bad) > 3 else ''}; restore them, or run "
                              f"`sedarchive catalog ARCHIVE --rebuild` to drop stale entries")


def _record_timings(archive: Archive, outcome: PipelineReport) -> None:
    """``ARCHIVE/run.json``: seconds per stage of the latest run (the report's timings table reads it).

    A full disk here costs only the timings table, so it is a warning line, not a failed run.
    """
    data = {"stages_s": {s.name: round(s.seconds, 3) for s in outcome.stages}}
    try:
        atomic_write(archive.run_path, json.dumps(data, indent=1))
    except OSError as err:
        print(f"pipeline: warning: cannot write {archive.run_path.name} ({err.strerror or err}); "
              f"the report's timings table will be out of date", file=sys.stderr, flush=True)


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
