"""``sedarchive <verb> ARCHIVE [options]``: the command line.

Each verb lives in ``sedarchive/commands/<verb>.py`` with ``add_parser(subparsers)`` (which sets
``func``) and imports its heavy stacks (torch, skimage, ...) only when it runs, so ``--help`` stays fast.
Errors meant for the user (:class:`catalog.SedarchiveError`) print as one line and exit 2.
"""
from __future__ import annotations

import argparse
import difflib
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

_default_formatwarning = None
#: verbs that change stage results: one at a time per archive (catalog.lock says who holds it)
LOCKED_VERBS = ("segment", "train", "encode", "cluster", "report", "run", "classify-train", "classify")

#: the verbs in the order ``--help`` lists them (each module imports its heavy stacks only when it runs)
COMMANDS = (demo, acquire, ingest, catalog_verb, segment, train, encode, cluster, report, run, review, export,
            classify_train, classify)
VERBS = tuple(module.__name__.rpartition(".")[2].replace("_", "-") for module in COMMANDS)


class Parser(argparse.ArgumentParser):
    """argparse without abbreviated options (``--cor`` is not ``--core``), and "did you mean" on typos."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs["allow_abbrev"] = False
        super().__init__(*args, **kwargs)

    def error(self, message: str):
        """One line (the project's rule for bad input), with a hint where a known name is close."""
        self.exit(2, f"{self.prog}: error: {message}{self._suggestion(message)} (see {self.prog} --help)\n")

    def _suggestion(self, message: str) -> str:
        if message.startswith("unrecognized arguments:"):
            words = [w for w in message.split(":", 1)[1].split() if w.startswith("-")]
            known = [o for action in self._actions for o in action.option_strings]
            for word in words:
                close = difflib.get_close_matches(word.split("=", 1)[0], known, n=1, cutoff=0.6)
                if close:
                    return f" (did you mean {close[0]}?)"
        if "invalid choice:" in message:
            wrong = message.split("invalid choice:", 1)[1].split("(", 1)[0].strip().strip("'\"")
            choices = [c for action in self._actions for c in (action.choices or [])]
            close = difflib.get_close_matches(wrong, [str(c) for c in choices], n=1, cutoff=0.6)
            if close:
                return f" (did you mean {close[0]}?)"
        return ""

    def parse_args(self, args=None, namespace=None):
        parsed, extras = self.parse_known_args(args, namespace)
        if extras:  # name the verb's own options in the hint, not the top level's
            verb = getattr(parsed, "verb", None)
            subparser = self._verbs.get(verb) if verb else None
            (subparser or self).error(f"unrecognized arguments: {' '.join(extras)}")
        return parsed

    _verbs: dict[str, argparse.ArgumentParser] = {}


class _Version(argparse.Action):
    """``--version`` that reads the version only when asked (no package metadata read for --help)."""

    def __init__(self, option_strings, dest=argparse.SUPPRESS, default=argparse.SUPPRESS, help=None):  # noqa: A002
        super().__init__(option_strings, dest=dest, default=default, nargs=0, help=help)

    def __call__(self, parser, namespace, values, option_string=None):
        from sedarchive import __version__

        print(f"sedarchive {__version__}")
        parser.exit()


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="sedarchive",
        description="Sediment grains from microscope plate to paleo-proxy.",
    )
    parser.add_argument("--version", action=_Version, help="show the version and exit")
    sub = parser.add_subparsers(dest="verb", metavar="VERB", required=True)
    for module in COMMANDS:
        module.add_parser(sub)
    parser._verbs = dict(sub.choices)
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
        code = _locked(args) if args.verb in LOCKED_VERBS else args.func(args)
    except SedarchiveError as err:
        print(f"sedarchive {args.verb}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"sedarchive {args.verb}: interrupted; run the same command again to resume", file=sys.stderr)
        return 130
    finally:
        warnings.showwarning = saved
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
