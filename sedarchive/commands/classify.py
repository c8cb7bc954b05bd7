"""``sedarchive classify ARCHIVE``: classify every grain with the current classifier, corrected class fractions."""
from __future__ import annotations

import argparse

from sedarchive.commands import _options


def add_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "classify", help="classify every grain with the trained classifier; class fractions with intervals",
        description="On Dask, give every grain of the selected (encoded) samples a class and a probability "
                    "(grain_class, class_probability in the store) with the current classifier, then write "
                    "ARCHIVE/classified.zarr: class fractions corrected for the classifier's measured "
                    "confusion, with 95% intervals covering sampling and classifier error. Neither the "
                    "encoder nor the clustering is refitted.")
    _options.add_archive(p)
    _options.add_selection(p)
    _options.add_dask(p)
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    from catalog import Archive
    from sedarchive.classification.apply import run_stage

    archive = Archive.open(args.archive)
    keys = _options.selected(args, archive, status="encoded")
    with _options.client_from(args) as client:
        report = run_stage(archive, keys, client, quiet=args.quiet)
    for key, reason in report.failures.items():
        print(f"sedarchive classify: {getattr(key, 'name', key)}: {reason}")
    if not args.quiet:
        print(f"classified {len(report.results)} samples, {len(report.failures)} failed; "
              f"fractions in {archive.classified_path}")
    return 1 if report.failures else 0
