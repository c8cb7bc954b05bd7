"""``sedarchive train ARCHIVE``: train the grain encoder (the paper's VAE) on the selected samples."""
from __future__ import annotations

import argparse
import sys

from sedarchive.commands import _options


def add_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "train", allow_abbrev=False, help="train the grain encoder (variational autoencoder) on segmented samples",
        description="Train the variational autoencoder on the crops of the selected segmented samples "
                    "(chopped grains and clumps left out unless --include-flagged), checkpointing every "
                    "epoch; run it again to resume. The model goes to ARCHIVE/models/encoder-<id>/ and "
                    "becomes the current encoder. A model already trained with the same settings and "
                    "grains is reused.")
    _options.add_archive(p)
    _options.add_selection(p)
    add_stage_options(p)
    _options.add_dask(p)
    p.set_defaults(func=run)
    return p


def add_stage_options(parser: argparse.ArgumentParser) -> None:
    """The train stage's own options (also used by ``sedarchive run``)."""
    g = parser.add_argument_group("training the encoder")
    g.add_argument("--preset", choices=("default", "paper", "contrastive", "vae", "cpu", "cpu-vae", "cpu-paper"),
                   help="default (= contrastive): the paper's network (ResNet-152 branches, 280x280, latent 512) "
                        "trained self-supervised, SimCLR-style, orientation-free (latent averaged over the 8 "
                        "rotations and flips), the best measured; paper: exactly the paper's VAE; vae: the "
                        "paper's VAE made orientation-free; cpu: the default's recipe on a small ResNet on "
                        "64x64 that trains the demo on a laptop CPU; cpu-vae, cpu-paper: that network as an "
                        "orientation-free VAE and as the paper's VAE")
    g.add_argument("--encoder-settings", metavar="FILE",
                   help="YAML/JSON file with a preset and any fields to override (options below win)")
    g.add_argument("--epochs", type=int, metavar="N", help="training epochs")
    g.add_argument("--batch-size", type=int, metavar="N", help="grains per training batch")
    g.add_argument("--latent-dim", type=int, metavar="N", help="size of the latent vector (paper: 512)")
    g.add_argument("--weights", metavar="FILE",
                   help="a torchvision ImageNet ResNet state dict (.pth) loaded into every branch; never downloaded")
    g.add_argument("--include-flagged", action="store_true", default=None,
                   help="also learn from chopped grains and clumps")
    g.add_argument("--device", choices=("auto", "cpu", "cuda"),
                   help="where torch runs (default auto: a GPU when there is one)")
    g.add_argument("--seed", type=int, metavar="N", help="random seed (default 0)")
    g.add_argument("--train-threads", type=int, metavar="N",
                   help="torch CPU threads for training, applied wherever it runs and recorded with the model; "
                        "another count gives other weights, so keep it the same on every engine (default 1)")


def settings_from(args: argparse.Namespace):
    """The :class:`~sedarchive.features.settings.TrainSettings` of the parsed options.

    Precedence: the preset (``--preset``, else the file's ``preset``, else ``default``), then the
    settings file, then the options given.
    """
    from dataclasses import replace

    from sedarchive.features.settings import DEFAULT_PRESET, apply_overrides, preset, read_settings_file

    path = getattr(args, "encoder_settings", None)
    values = read_settings_file(path) if path else {}
    settings = preset(getattr(args, "preset", None) or values.get("preset") or DEFAULT_PRESET)
    settings = apply_overrides(settings, values, source=str(path))
    picked = {name: getattr(args, name, None) for name in
              ("epochs", "batch_size", "weights", "include_flagged", "device", "seed")}
    picked["threads"] = getattr(args, "train_threads", None)
    settings = replace(settings, **{k: v for k, v in picked.items() if v is not None})
    if getattr(args, "latent_dim", None) is not None:
        settings = replace(settings, encoder=replace(settings.encoder, latent_dim=args.latent_dim))
    return settings


def run(args: argparse.Namespace) -> int:
    import contextlib

    from catalog import Archive
    from sedarchive.features.stage import train_stage

    archive = Archive.open(args.archive)
    settings = settings_from(args)
    keys = _options.selected(args, archive, status="segmented")
    remote = getattr(args, "scheduler", None) or getattr(args, "cluster", None)
    # Training on a CPU-only local cluster happens in this process anyway: start no cluster for it.
    with _options.client_from(args) if remote else contextlib.nullcontext() as client:
        report = train_stage(archive, keys, client, settings, quiet=args.quiet)
    result = report.results["encoder"]
    final = f", final loss {result['history'][-1]['loss']:.5f}" if result["history"] else ""
    verb = "reused" if result.get("reused") else "trained"
    print(f"encoder {result['model_id']}: {verb} on {result['n_grains']} grains from "
          f"{len(result['samples'])} sample(s){final}")
    for key, reason in report.failures.items():
        print(f"sedarchive train: left out {getattr(key, 'name', key)}: {reason}", file=sys.stderr)
    return 0 if report.ok else 1
