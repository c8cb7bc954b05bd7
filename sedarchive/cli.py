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

_default_formatwarning = None

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


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """Warnings meant for the user (sedarchive's own) as one line, not as a source location."""
    module = getattr(category, "__module__", "")
    if module.startswith(("sedarchive", "catalog")):
        print(f"sedarchive: warning: {message}", file=sys.stderr)
    else:
        sys.stderr.write(_default_formatwarning(message, category, filename, lineno, line))


def main(argv: Sequence[str] | None = None) -> int:
    import warnings

    global _default_formatwarning
    _default_formatwarning = warnings.formatwarning
    parser = build_parser()
    args = parser.parse_args(argv)
    saved = warnings.showwarning
    warnings.showwarning = _show_warning
    try:
        code = args.func(args)
    except SedarchiveError as err:
        print(f"sedarchive {args.verb}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"sedarchive {args.verb}: interrupted; run the same command again to resume", file=sys.stderr)
        return 130
    finally:
        warnings.showwarning = saved
    return int(code or 0)


if __name__ == "__main__":
    sys.exit(main())
