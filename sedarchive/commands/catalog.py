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
    rows = archive.samples(core=args.core, depth=args.depth)
    header = ("sample", "core", "depth_cm", "positions", "particles", "status")
    table = [header] + [
        (r.name, r.key.core, r.key.depth, str(r.n_positions), str(r.n_particles), r.status) for r in rows
    ]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    for row in table:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
    return 1 if problems else 0
