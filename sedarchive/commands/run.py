"""``sedarchive run ARCHIVE``: every stage in order (segment, train, encode, cluster, report), resumable."""
from __future__ import annotations

import argparse
import importlib
import sys

from sedarchive.commands import _options

DESCRIPTION = """\
Run segment, train (or reuse the current model), encode, cluster and report, in order, on the
selected samples. Each stage skips the work already done, so the same command resumes a run that
was killed. A sample that fails (a corrupt frame, say) is reported and skipped; the others go on,
and the command then exits with status 1 after listing the failures. Every stage's options are
accepted (see the groups below)."""


def _stage_modules():
    """The command modules of the stages that exist in this checkout, in pipeline order."""
    from sedarchive.pipeline import STAGES

    found = []
    for stage in STAGES:
        try:
            found.append((stage, importlib.import_module(stage.command)))
        except ModuleNotFoundError as err:
            if err.name != stage.command:
                raise
    return found


def add_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("run", help="all stages in order (segment, train, encode, cluster, report), resumable",
                       description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter,
                       conflict_handler="resolve")  # a clash of stage options must not break the CLI
    _options.add_archive(p)
    _options.add_selection(p)
    _options.add_dask(p)
    for _, module in _stage_modules():
        module.add_stage_options(p)
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    from catalog import Archive

    report = execute(args)
    if "report" in {s.name for s in report.stages if not s.error}:
        archive = Archive.open(args.archive)
        print(f"report:      {archive.report_dir / 'index.html'}")
        print(f"proportions: {archive.proportions_path}")
    return report.exit_code


def execute(args: argparse.Namespace):
    """Run the pipeline as ``args`` say; print its summary; return the :class:`PipelineReport`."""
    from catalog import Archive
    from catalog.errors import SedarchiveError
    from sedarchive.pipeline import STAGES, run_pipeline, stage_settings

    archive = Archive.open(args.archive)
    keys = _options.selected(args, archive, status="acquired")
    present = {stage.name for stage, _ in _stage_modules()}
    missing = [stage.name for stage in STAGES if stage.name not in present]
    if missing:
        raise SedarchiveError(f"this installation lacks the stage(s) {', '.join(missing)}; cannot run the pipeline")
    waiting = [row.name for row in archive.samples(core=args.core, depth=args.depth) if row.status == "acquiring"]
    if waiting and not args.quiet:
        print(f"run: skipping {len(waiting)} sample(s) still acquiring: {', '.join(waiting)}", file=sys.stderr)
    settings = stage_settings(args)
    with _options.client_from(args) as client:
        report = run_pipeline(archive, keys, client, settings, quiet=args.quiet)
    print(report.summary(), file=sys.stderr)
    return report
