"""``sedarchive <verb> ARCHIVE [options]``: the command line.

Each verb lives in ``sedarchive/commands/<verb>.py`` with ``add_parser(subparsers)`` (which sets
``func``) and imports its heavy stacks (torch, skimage, ...) only when it runs, so ``--help`` stays fast.
Errors meant for the user (:class:`catalog.SedarchiveError`) print as one line and exit 2.
"""
from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from catalog.errors import SedarchiveError
from sedarchive.commands import (
    acquire,
    catalog as catalog_verb,
    cluster,
    demo,
    encode,
    export,
    ingest,
    report,
    review,
    run,
    segment,
    train,
)

#: verbs that change stage results: one at a time per archive (catalog.lock says who holds it)
LOCKED_VERBS = ("segment", "train", "encode", "cluster", "report", "run")

#: the verbs in the order ``--help`` lists them (each module imports its heavy stacks only when it runs)
COMMANDS = (demo, acquire, ingest, catalog_verb, segment, train, encode, cluster, report, run, review, export)
VERBS = tuple(module.__name__.rpartition(".")[2] for module in COMMANDS)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sedarchive",
        description="Sediment grains from microscope plate to paleo-proxy.",
    )
    from sedarchive import __version__

    parser.add_argument("--version", action="version", version=f"sedarchive {__version__}")
    sub = parser.add_subparsers(dest="verb", metavar="VERB", required=True)
    for module in COMMANDS:
        module.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code = _locked(args) if args.verb in LOCKED_VERBS else args.func(args)
    except SedarchiveError as err:
        print(f"sedarchive {args.verb}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"sedarchive {args.verb}: interrupted; run the same command again to resume", file=sys.stderr)
        return 130
    return int(code or 0)


def _locked(args: argparse.Namespace) -> int:
    """Run the verb holding the archive lock (an archive that does not exist is the verb's to report)."""
    from pathlib import Path

    from catalog.lock import archive_lock

    root = Path(args.archive).expanduser()
    if not root.is_dir():
        return args.func(args)
    with archive_lock(root, "sedarchive " + " ".join(sys.argv[1:])):
        return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
