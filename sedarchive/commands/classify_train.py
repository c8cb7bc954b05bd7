"""``sedarchive classify-train ARCHIVE``: a grain classifier from the expert's names of clusters."""
from __future__ import annotations

import argparse

from sedarchive.commands import _options


def add_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "classify-train", help="train a grain classifier from the named clusters (and corrected grains)",
        description="Train a logistic regression on the latents and morphometrics of the grains of named "
                    "clusters (excluded clusters are classes too, e.g. chopped or debris) plus the grains "
                    "corrected on the review page; it is measured out of fold (seeded folds, the repeats of a "
                    "grain in one fold: confusion matrix, precision and recall per class, reliability curve) "
                    "and its out-of-fold grains correct fractions against the clusters' checked impurity. "
                    "The model is saved in ARCHIVE/models/classifier-<id>/ and named current.")
    _options.add_archive(p)
    _options.add_selection(p)
    g = p.add_argument_group("training")
    g.add_argument("--held-out", type=float, metavar="F", help="share of the grains in each out-of-fold part: 1 / folds (default 0.25: 4 folds)")
    g.add_argument("--classify-seed", type=int, metavar="N", help="seed of the folds (default 0)")
    g.add_argument("--c", type=float, metavar="C", help="inverse regularisation of the logistic regression (default 1)")
    g.add_argument("--no-morphometrics", action="store_true", help="latents only (no size, shape, colour)")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    p.set_defaults(func=run)
    return p


def settings_from(args: argparse.Namespace):
    from sedarchive.classification.training import TrainSettings

    overrides = {"held_out": args.held_out, "seed": args.classify_seed, "c": args.c}
    settings = TrainSettings(**{k: v for k, v in overrides.items() if v is not None})
    if args.no_morphometrics:
        settings.morphometrics = False
    settings.check()
    return settings


def run(args: argparse.Namespace) -> int:
    from catalog import Archive
    from sedarchive.classification.training import train

    archive = Archive.open(args.archive)
    keys = _options.selected(args, archive, status="encoded")
    model = train(archive, keys, settings_from(args), quiet=args.quiet)
    report = model.info["held_out"]
    print(f"classifier {model.id} (encoder {model.encoder_id}): {model.info['n_train']} training grains, "
          f"{report['n_held_out']} measured out of fold, accuracy {report['accuracy']:.3f}")
    width = max(len(c) for c in model.classes)
    for c in model.classes:
        prec, rec = report["precision"][c], report["recall"][c]
        show = lambda v: "  -  " if v is None else f"{v:.3f}"  # noqa: E731
        print(f"  {c:<{width}}  precision {show(prec)}  recall {show(rec)}"
              f"{'' if c in _counted(model) else '  (not counted)'}")
    return 0


def _counted(model) -> set[str]:
    return {c for c, keep in zip(model.classes, model.counted) if keep}
