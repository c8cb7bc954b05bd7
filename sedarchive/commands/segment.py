"""``sedarchive segment ARCHIVE``: find, crop and flag every grain of the selected samples."""
from __future__ import annotations

import argparse
from pathlib import Path
import sys
import warnings

from sedarchive.commands import _options

DESCRIPTION = """\
Find every grain in every stack of the selected (acquired) samples, crop it from all focal layers
and describe it (box, area, chopped, clump, sharpness per layer, morphometrics). Runs on Dask over
chunks of stack positions; samples already segmented with the same settings are skipped, and a
killed run resumes where it stopped when started again."""


def add_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("segment", help="find, crop and flag the grains of every stack (resumable)",
                       description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    _options.add_archive(p)
    _options.add_selection(p)
    add_stage_options(p)
    p.add_argument("--force", action="store_true",
                   help="segment again samples already segmented with the same settings")
    _options.add_dask(p)
    p.set_defaults(func=run)
    return p


def add_stage_options(parser: argparse.ArgumentParser) -> None:
    """The segment stage's own options (also offered by ``sedarchive run``)."""
    group = parser.add_argument_group("segmentation")
    group.add_argument("--method", choices=("slic", "fast", "boundary"),
                       help="slic: the paper's superpixels (default); fast: per-pixel thresholds, same grains; "
                            "boundary: a small U-Net (plate / interior / boundary) and watershed, needs --boundary-weights")
    group.add_argument("--boundary-weights", metavar="FILE",
                       help="with --method boundary: the network's weights (bench/train_boundary.py makes them)")
    group.add_argument("--grain-px", type=float, metavar="PX",
                       help="with --method boundary: median grain diameter in pixels (default: estimated)")
    group.add_argument("--crop-size", type=int, metavar="PX", help="side of the square grain images (default 280)")
    group.add_argument("--pad", action="store_true", default=None,
                       help="pad each grain's box to a square instead of stretching it")
    group.add_argument("--background", metavar="PLATE",
                       help="the plate: auto (learnt from the sample, default), green, black, white, R,G,B, "
                            "or paper (the paper's saturation rule, green plates only)")
    group.add_argument("--min-diameter-um", type=float, metavar="UM",
                       help="objects smaller than a disc this wide are specks, not grains (default 40; "
                            "needs the sample's pixel size)")
    group.add_argument("--saturation-threshold", type=float, metavar="S",
                       help="with --background paper: plate saturation threshold 0..1 (default: automatic)")
    group.add_argument("--segment-settings", metavar="FILE",
                       help="YAML file of segmentation settings (options given here override it)")


def settings_from(args: argparse.Namespace):
    """:class:`~sedarchive.segmentation.settings.SegmentSettings` from the file and the options."""
    from sedarchive.segmentation.settings import SegmentSettings

    path = getattr(args, "segment_settings", None)
    settings = SegmentSettings.from_yaml(path) if path else SegmentSettings()
    changes = {}
    for option, name in (("method", "method"), ("crop_size", "crop_size"), ("pad", "pad"),
                         ("background", "background"), ("min_diameter_um", "min_diameter_um"),
                         ("saturation_threshold", "saturation_threshold"), ("boundary_weights", "weights"),
                         ("grain_px", "grain_px")):
        value = getattr(args, option, None)
        if value is not None:
            changes[name] = str(Path(value).expanduser().resolve()) if name == "weights" else value
    return SegmentSettings.from_dict({**settings.to_dict(), **changes},
                                     source="segment options") if changes else settings


def run(args: argparse.Namespace) -> int:
    from catalog import Archive
    from sedarchive.segmentation.stage import EmptyPlateWarning, run_stage

    settings = settings_from(args)  # bad settings fail before a cluster starts
    archive = Archive.open(args.archive)
    keys = _options.selected(args, archive, status="acquired")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with _options.client_from(args) as client:
            report = run_stage(archive, keys, client, settings, quiet=args.quiet, force=args.force)
    for warning in caught:
        if issubclass(warning.category, EmptyPlateWarning):
            print(f"sedarchive segment: warning: {warning.message}", file=sys.stderr)
        else:
            warnings.showwarning(warning.message, warning.category, warning.filename, warning.lineno)
    for key, result in sorted(report.results.items()):
        state = "already segmented" if result["skipped"] else "segmented"
        print(f"{key.name}: {result['n_particles']} grains ({state})")
    for key, reason in sorted(report.failures.items()):
        print(f"{key.name}: FAILED: {reason}", file=sys.stderr)
    return 0 if report.ok else 1
