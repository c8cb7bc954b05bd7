"""``sedarchive run ARCHIVE``: every stage in order (segment, train, encode, cluster, report), resumable."""
from __future__ import annotations

import argparse
import sys

from sedarchive.commands import _options, cluster, encode, report, segment, train

#: the command module of each pipeline stage: its own options and ``settings_from`` (light imports only)
#: in pipeline order (tests check it against sedarchive.pipeline.STAGES; the parsers use this dict so that
#: --help does not import the pipeline, which loads Dask and xarray)
STAGE_COMMANDS = {"segment": segment, "train": train, "encode": encode, "cluster": cluster, "report": report}

DESCRIPTION = """\
Run segment, train (or reuse the current model), encode, cluster and report, in order, on the
selected samples. Each stage skips the work already done, so the same command resumes a run that
was killed. A sample that fails (a corrupt frame, say) is reported and skipped; the others go on,
and the command then exits with status 1 after listing the failures. Every stage's options are
accepted (see the groups below)."""


def _stage_modules():
    """``(stage, command module)`` of every pipeline stage, in pipeline order."""
    from sedarchive.pipeline import STAGES

    return [(stage, STAGE_COMMANDS[stage.name]) for stage in STAGES]


def pipeline_settings(args: argparse.Namespace):
    """The :class:`~sedarchive.pipeline.PipelineSettings` of the parsed options (each stage's ``settings_from``)."""
    from sedarchive.pipeline import PipelineSettings

    return PipelineSettings(**{name: module.settings_from(args) for name, module in STAGE_COMMANDS.items()})


def add_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("run", help="all stages in order (segment, train, encode, cluster, report), resumable",
                       description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    _options.add_archive(p)
    _options.add_selection(p)
    _options.add_dask(p)
    for module in STAGE_COMMANDS.values():
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
    from sedarchive.pipeline import check_stores, run_pipeline

    archive = Archive.open(args.archive)
    keys = _options.selected(args, archive, status="acquired")
    check_stores(archive, keys)  # a stale catalog entry fails here, before any stage changes anything
    waiting = [row.name for row in archive.samples(core=args.core, depth=args.depth) if row.status == "acquiring"]
    if waiting and not args.quiet:
        print(f"run: skipping {len(waiting)} sample(s) still acquiring: {', '.join(waiting)}", file=sys.stderr)
    settings = pipeline_settings(args)
    with _options.client_from(args) as client:
        report = run_pipeline(archive, keys, client, settings, quiet=args.quiet)
    print(report.summary(), file=sys.stderr)
    return report
