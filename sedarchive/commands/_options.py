"""Options shared by the verbs, and turning them into archive selections."""
from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from catalog.errors import SedarchiveError
from catalog.keys import parse_depth_range

if TYPE_CHECKING:  # the archive layer loads zarr and xarray: only when a verb runs, not for --help
    from catalog import Archive, SampleKey


def add_archive(parser: argparse.ArgumentParser, must_exist: bool = True) -> None:
    parser.add_argument("archive", metavar="ARCHIVE", help="the archive folder")


def add_selection(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--core", action="append", metavar="C",
                        help="only samples of this core (repeat for several)")
    parser.add_argument("--depth", metavar="TOP-BOTTOM", type=depth_option,
                        help="only samples whose depth interval in cm overlaps this one, e.g. 100-150 "
                             "(a trailing 'cm' is allowed; other units are refused)")


def add_dask(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("where it runs")
    group.add_argument("--scheduler", metavar="ADDRESS",
                       help="an existing Dask scheduler, e.g. tcp://host:8786 (default: a local cluster)")
    group.add_argument("--cluster", metavar="RECIPE",
                       help="a cluster recipe from deploy/ (YAML), e.g. deploy/slurm.yaml")
    group.add_argument("--workers", type=int, metavar="N",
                       help="workers of the local cluster (default: one per core)")
    group.add_argument("--quiet", action="store_true", help="no progress lines")


def client_from(args: argparse.Namespace):
    from sedarchive.dask.tasks import dask_client

    return dask_client(scheduler=getattr(args, "scheduler", None), cluster=getattr(args, "cluster", None),
                       n_workers=getattr(args, "workers", None), quiet=getattr(args, "quiet", False))


def selected(args: argparse.Namespace, archive: Archive, status: str | None = None) -> list[SampleKey]:
    """Samples picked by --core/--depth (all when neither is given); an error when none match."""
    rows = archive.samples(core=getattr(args, "core", None), depth=getattr(args, "depth", None), status=status)
    if not rows:
        what = []
        if getattr(args, "core", None):
            what.append("core " + ",".join(args.core))
        if getattr(args, "depth", None):
            what.append(f"depth {args.depth} cm")
        need = f" with status {status} or later" if status else ""
        raise SedarchiveError(f"no samples{need} in {archive.root}" + (f" for {' and '.join(what)}" if what else ""))
    return [row.key for row in rows]


def depth_option(text: str) -> str:
    """``--depth``: an interval in cm (``100-150`` or ``100-150cm``), checked when the options are read."""
    try:
        parse_depth_range(text)
    except SedarchiveError as err:
        raise argparse.ArgumentTypeError(f"{err} (centimetres: 100-150 or 100-150cm)") from None
    return text
