"""``sedarchive encode ARCHIVE``: write every grain's latent vector with the current encoder."""
from __future__ import annotations

import argparse
import sys

from sedarchive.commands import _options


def add_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "encode", allow_abbrev=False, help="write each grain's latent vector (mu of the encoder) into its sample",
        description="Encode the crops of the selected segmented samples with the current encoder (or "
                    "--encoder ID), one Dask task per sample (on GPU workers when the cluster has them). "
                    "Samples already encoded by that model are skipped.")
    _options.add_archive(p)
    _options.add_selection(p)
    add_stage_options(p)
    p.add_argument("--force", action="store_true", help="encode again samples already encoded by this model")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"),
                   help="where torch runs on the workers (default auto: a GPU when there is one)")
    _options.add_dask(p)
    p.set_defaults(func=run)
    return p


def add_stage_options(parser: argparse.ArgumentParser) -> None:
    """The encode stage's own options for ``sedarchive run`` too (which takes ``--device`` from train;
    ``--force`` belongs to the ``encode`` verb alone)."""
    g = parser.add_argument_group("encoding")
    g.add_argument("--encoder", metavar="ID", help="the encoder to use (default: models/current.json)")
    g.add_argument("--encode-batch-size", type=int, metavar="N", help="grains per encoding batch (default 64)")


def settings_from(args: argparse.Namespace):
    """The :class:`~sedarchive.features.settings.EncodeSettings` of the parsed options."""
    from sedarchive.features.settings import EncodeSettings

    return EncodeSettings(
        model=getattr(args, "encoder", None),
        batch_size=getattr(args, "encode_batch_size", None) or 64,
        device=getattr(args, "device", None) or "auto",
        force=bool(getattr(args, "force", False)),
    )


def run(args: argparse.Namespace) -> int:
    from catalog import Archive
    from sedarchive.features.registry import resolve_encoder
    from sedarchive.features.stage import run_stage

    archive = Archive.open(args.archive)
    settings = settings_from(args)
    resolve_encoder(archive.models_dir, settings.model)  # a missing model fails before a cluster starts
    keys = _options.selected(args, archive, status="segmented")
    with _options.client_from(args) as client:
        report = run_stage(archive, keys, client, settings, quiet=args.quiet)
    encoded = {k: n for k, n in report.results.items() if n != "skipped"}
    skipped = len(report.results) - len(encoded)
    print(f"encoded {len(encoded)} sample(s), {sum(encoded.values())} grains; {skipped} already done; "
          f"{len(report.failures)} failed")
    for key, reason in report.failures.items():
        print(f"sedarchive encode: {getattr(key, 'name', key)}: {reason}", file=sys.stderr)
    return 0 if report.ok else 1
