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
    classify,
    classify_train,
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

#: the verbs in the order ``--help`` lists them (each module imports its heavy stacks only when it runs)
COMMANDS = (demo, acquire, ingest, catalog_verb, segment, train, encode, cluster, report, run, review, export,
            classify_train, classify)
VERBS = tuple(module.__name__.rpartition(".")[2].replace("_", "-") for module in COMMANDS)


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
        code = args.func(args)
    except SedarchiveError as err:
        print(f"sedarchive {args.verb}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"sedarchive {args.verb}: interrupted; run the same command again to resume", file=sys.stderr)
        return 130
    return int(code or 0)


if __name__ == "__main__":
    sys.exit(main())
