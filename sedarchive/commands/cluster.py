"""``sedarchive cluster ARCHIVE``: K-means over the whole archive's latents, labels, proportions, map."""
from __future__ import annotations

import argparse

from sedarchive.commands import _options


def add_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "cluster", help="cluster the grains' latents (K-means), count them per sample, map them (UMAP)",
        description="Fit MiniBatchKMeans over the latents of the selected samples (streamed, bounded memory), "
                    "or reuse the model of the current encoder; label every grain; write proportions.zarr "
                    "and umap.zarr. Resumable: samples already labelled by the current model are skipped.")
    _options.add_archive(p)
    _options.add_selection(p)
    add_stage_options(p)
    _options.add_dask(p)
    p.set_defaults(func=run)
    return p


def add_stage_options(parser: argparse.ArgumentParser) -> None:
    """The cluster stage's own options (``sedarchive run`` adds them too, so names carry the stage)."""
    g = parser.add_argument_group("clustering")
    g.add_argument("--k", type=int, metavar="K", help="number of clusters (default 100, the paper's overclustering)")
    mode = g.add_mutually_exclusive_group()
    mode.add_argument("--refit", action="store_true", default=None,
                      help="fit a new model even when one exists for the current encoder")
    mode.add_argument("--assign-only", action="store_true", default=None,
                      help="only label grains with the existing model (the default when one exists)")
    g.add_argument("--cluster-batch-size", type=int, metavar="N", help="grains per K-means mini-batch (default 4096)")
    g.add_argument("--umap-points", type=int, metavar="N",
                   help="grains the UMAP map is fitted on (default 50000; 0: no map)")
    g.add_argument("--umap-all", action="store_true", default=None,
                   help="also place every other grain on the map (slow on large archives)")
    g.add_argument("--cluster-settings", metavar="FILE",
                   help="YAML or TOML file of cluster settings (k, batch_size, max_epochs, proxies, ...)")
    g.add_argument("--cluster-seed", type=int, metavar="N", help="random seed of the fit and the map (default 0)")
    g.add_argument("--morphometrics", type=float, metavar="W",
                   help="share of the clustering features' variance given to the standardised size, elongation, "
                        "solidity and colour of the grains beside the latent (default 0: the latent alone, as the paper "
                        "and as measured best with the default encoder; 0.5 helped the VAEs; "
                        "recorded in the model, so assigning new samples uses the same recipe)")


def settings_from(args: argparse.Namespace):
    from sedarchive.clustering.stage import ClusterSettings

    overrides = {
        "k": getattr(args, "k", None),
        "refit": getattr(args, "refit", None),
        "assign_only": getattr(args, "assign_only", None),
        "batch_size": getattr(args, "cluster_batch_size", None),
        "umap_points": getattr(args, "umap_points", None),
        "umap_all": getattr(args, "umap_all", None),
        "seed": getattr(args, "cluster_seed", None),
        "morphometrics": getattr(args, "morphometrics", None),
    }
    if getattr(args, "cluster_settings", None):
        settings = ClusterSettings.from_file(args.cluster_settings, **overrides)
    else:
        settings = ClusterSettings(**{k: v for k, v in overrides.items() if v is not None})
    settings.check()
    return settings


def run(args: argparse.Namespace) -> int:
    from catalog import Archive
    from sedarchive.counting.stage import run_stage

    archive = Archive.open(args.archive)
    settings = settings_from(args)
    keys = _options.selected(args, archive, status="encoded")
    with _options.client_from(args) as client:
        report = run_stage(archive, keys, client, settings, quiet=args.quiet)
    for key, reason in report.failures.items():
        print(f"sedarchive cluster: {getattr(key, 'name', key)}: {reason}")
    if not args.quiet:
        print(f"clustered {len(report.results)} samples, {len(report.failures)} failed; "
              f"proportions in {archive.proportions_path}")
    return 1 if report.failures else 0
