"""``sedarchive report ARCHIVE``: write ``ARCHIVE/report/index.html`` (opens without a server)."""
from __future__ import annotations

import argparse

from sedarchive.commands import _options


def add_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("report", help="write the report: map, cluster galleries, down-core series, run summary",
                       description="Write ARCHIVE/report/index.html with the files it shows beside it: the map "
                                   "of the latent space by cluster (and class), a gallery per cluster, down-core "
                                   "class fractions and proxies with their intervals, and a run summary.")
    _options.add_archive(p)
    _options.add_selection(p)
    add_stage_options(p)
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    p.set_defaults(func=run)
    return p


def add_stage_options(parser: argparse.ArgumentParser) -> None:
    """The report's own options (``sedarchive run`` adds them too)."""
    group = parser.add_argument_group("report")
    group.add_argument("--report-settings", metavar="FILE", help="report settings (YAML)")
    group.add_argument("--report-examples", type=int, metavar="N",
                       help="example grains shown per cluster (default 12)")
    group.add_argument("--report-map-points", type=int, metavar="N",
                       help="most grains drawn on the map (default 50000)")


def settings_from(args: argparse.Namespace):
    from sedarchive.report import ReportSettings

    overrides = {"examples_per_cluster": getattr(args, "report_examples", None),
                 "map_points": getattr(args, "report_map_points", None)}
    if getattr(args, "report_settings", None):
        return ReportSettings.from_file(args.report_settings, **overrides)
    return ReportSettings(**{k: v for k, v in overrides.items() if v is not None})


def run(args: argparse.Namespace) -> int:
    from catalog import Archive
    from sedarchive.report import write_report

    archive = Archive.open(args.archive)
    keys = _options.selected(args, archive) if (args.core or args.depth) else None
    path = write_report(archive, settings_from(args), keys=keys, quiet=args.quiet)
    print(path)
    return 0
