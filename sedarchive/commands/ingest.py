"""``sedarchive ingest ARCHIVE SRC --core C --depth 120-122``: import existing photographs."""
from __future__ import annotations

import argparse

from sedarchive.commands import _options


def add_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "ingest",
        help="import existing photographs into a new sample",
        description="Import a folder of frames named NAME_p<position>_z<layer>.(png|jpg|tif), or a CSV "
                    "manifest with columns path,position,layer[,x_mm,y_mm], as a new sample. Frames are "
                    "decoded and written on Dask workers; an interrupted ingest resumes when run again.",
    )
    _options.add_archive(p)
    p.add_argument("source", metavar="SRC", help="folder of frames or CSV manifest")
    p.add_argument("--core", required=True, help="core name, e.g. AI-3352")
    p.add_argument("--depth", required=True, metavar="TOP-BOTTOM", help="depth interval in cm, e.g. 120-122")
    p.add_argument("--pixel-size-um", type=float, help="pixel size in µm, when known")
    p.add_argument("--layers", type=int, metavar="N",
                   help="focal layers per position; 1: single-layer photographs, any file names "
                        "(each image one position, in name order)")
    p.add_argument("--focal-offsets-um", metavar="LIST",
                   help="comma-separated focal offsets of the layers in µm (default 0,1,2,...)")
    _options.add_dask(p)
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    from catalog import Archive, SampleKey
    from sedarchive.errors import InputError
    from sedarchive.ingest import ingest, plan_ingest

    key = SampleKey.parse(args.core, args.depth)
    offsets = None
    if args.focal_offsets_um:
        try:
            offsets = [float(v) for v in args.focal_offsets_um.split(",")]
        except ValueError:
            raise InputError(f"--focal-offsets-um {args.focal_offsets_um!r}: expected numbers separated by commas") from None
    plan = plan_ingest(args.source, layers=args.layers)  # checked before a cluster starts or the archive is touched
    archive = Archive.create(args.archive)
    with _options.client_from(args) as client:
        written = ingest(archive, key, plan, client, focal_offsets_um=offsets,
                         pixel_size_um=args.pixel_size_um, quiet=args.quiet)
    row = archive.samples(core=key.core, depth=(key.top_cm, key.bottom_cm))
    info = next(r for r in row if r.key == key)
    print(f"{key.name}: {info.n_positions} positions ingested ({written} written now) into {info.path}")
    return 0
