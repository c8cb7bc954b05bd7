"""``sedarchive export ARCHIVE``: grains as an EcoTaxa import folder and as a plain table."""
from __future__ import annotations

import argparse

from sedarchive.commands import _options


def add_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("export", help="grains, measurements and labels for EcoTaxa (TSV + images) and as CSV/Parquet",
                       description="Write OUT/grains.csv (and grains.parquet when pyarrow is installed), one row "
                                   "per grain with its measurements, cluster and class, and OUT/ecotaxa_<archive>/ "
                                   "(a TSV in EcoTaxa's import format with the grain images), optionally zipped.")
    _options.add_archive(p)
    _options.add_selection(p)
    p.add_argument("--out", metavar="DIR", help="where to write (default ARCHIVE/export)")
    p.add_argument("--layers", choices=("sharpest", "all"), default="sharpest",
                   help="images per grain for EcoTaxa: the sharpest focal layer, or all (img_rank = layer)")
    p.add_argument("--categories", metavar="FILE",
                   help="class -> EcoTaxa category name (YAML, or two-column TSV/CSV); exclusion reasons may be "
                        "mapped too (default: cut_off/other -> artefact, touching -> multiple<other, "
                        "not_a_grain -> detritus); unmapped classes keep their name")
    p.add_argument("--excluded", choices=("category", "leave-out"), default="category",
                   help="grains of excluded clusters: as EcoTaxa's non-living categories (default), or left out")
    p.add_argument("--zip", action="store_true", help="also pack the EcoTaxa folder into one zip to upload")
    p.add_argument("--table-only", action="store_true", help="only the CSV/Parquet table, no EcoTaxa folder")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from catalog import Archive
    from sedarchive.export import export_ecotaxa, export_table
    from sedarchive.export.ecotaxa import read_category_map

    archive = Archive.open(args.archive)
    keys = _options.selected(args, archive)
    categories = read_category_map(args.categories) if args.categories else None
    out = Path(args.out) if args.out else archive.root / "export"
    for path in export_table(archive, out, keys):
        print(path)
    if not args.table_only:
        print(export_ecotaxa(archive, out, keys, layers=args.layers, make_zip=args.zip, quiet=args.quiet,
                             categories=categories, excluded=args.excluded))
    return 0
