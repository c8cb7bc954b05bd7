"""``sedarchive catalog ARCHIVE``: list the samples, one row each."""
from __future__ import annotations

import argparse
import sys

from sedarchive.commands import _options


def add_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("catalog", help="list samples (name, core, depth, positions, particles, status)",
                       description="List the archive's samples whose core and depth match, one row each.")
    _options.add_archive(p)
    _options.add_selection(p)
    p.add_argument("--rebuild", action="store_true", help="rebuild catalog.yaml from the sample stores first")
    p.add_argument("--import-cores", metavar="CSV",
                   help="add or replace core metadata (columns: core, latitude, longitude, water_depth_m, "
                        "collection_date, cruise); exported to EcoTaxa as object_lat/lon/date and water depth")
    p.add_argument("--cores", action="store_true", help="list the cores table instead of the samples")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    from catalog import Archive

    archive = Archive.open(args.archive)
    problems: list[str] = []
    if args.rebuild:
        archive.rebuild_catalog(problems)
        for line in problems:
            print(f"sedarchive catalog: left out {line}", file=sys.stderr)
    if args.import_cores or args.cores:
        return _cores(archive, args)
    rows = archive.samples(core=args.core, depth=args.depth)
    if not rows and (args.core or args.depth):
        what = " and ".join(filter(None, ["core " + ",".join(args.core) if args.core else "",
                                          f"depth {args.depth} cm" if args.depth else ""]))
        print(f"sedarchive catalog: no sample matched{' ' + what if what else ''} in {archive.root}", file=sys.stderr)
        return 1
    header = ("sample", "core", "depth_cm", "positions", "particles", "status")
    table = [header] + [
        (r.name, r.key.core, r.key.depth, str(r.n_positions), str(r.n_particles), r.status) for r in rows
    ]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    for row in table:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
    return 1 if problems else 0


def _cores(archive, args: argparse.Namespace) -> int:
    from catalog.cores import FIELDS, read_cores, read_cores_file, set_cores

    table = set_cores(archive.root, read_cores_file(args.import_cores)) if args.import_cores else read_cores(archive.root)
    rows = [FIELDS] + [tuple("" if getattr(c, f) is None else str(getattr(c, f)) for f in FIELDS)
                       for c in sorted(table.values(), key=lambda c: c.core)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(FIELDS))]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
    return 0
