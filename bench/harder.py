"""Segmentation on the simulator's harder plates: recall, precision, median box IoU per condition.

    python bench/harder.py [--method slic|fast|both] [--condition NAME ...] [--positions N] [--json FILE]

Each condition of issue 14 (other plate colours, sensor noise, dark and saturated grains, uneven
light, dense touching grains; and, measured only, grains whose outlines really touch) is rendered at ``--positions`` positions of 3 focal layers, 384x480 at
1.5 µm per pixel, with the truth of touching grains apart, and segmented by ``extract_grains`` with
default settings (the plate colour learnt from all positions). The scenes and the scoring are those of
``tests/sedarchive/segmentation/test_harder_plates.py`` (``harder_plates.py`` next to it), which
asserts floors on the same figures.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests" / "sedarchive" / "segmentation"))
sys.path.insert(0, str(REPO / "bench"))

from harder_plates import CONDITIONS, MEASURED_ONLY, render, score  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--method", default="both", choices=("slic", "fast", "both"))
    every = [*CONDITIONS, *MEASURED_ONLY]
    parser.add_argument("--condition", nargs="*", default=every, choices=every)
    parser.add_argument("--positions", type=int, default=8)
    parser.add_argument("--json", type=Path, help="also write the figures as JSON")
    args = parser.parse_args(argv)
    from sedarchive.segmentation import SegmentSettings

    methods = ["slic", "fast"] if args.method == "both" else [args.method]
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    print(f"{'condition':36} {'method':6} {'true':>5} {'recall':>6} {'prec':>6} {'medIoU':>6} {'1-clump':>7} {'s':>6}")
    rows = []
    for condition in args.condition:
        stacks, truth = render(condition, n_positions=args.positions)
        for method in methods:
            start = time.perf_counter()
            found = score(stacks, truth, SegmentSettings(method=method, crop_size=16))
            seconds = time.perf_counter() - start
            rows.append({"condition": condition, "method": method, "n_true": len(truth), "seconds": seconds, **found})
            print(f"{condition:36} {method:6} {len(truth):5d} {found['recall']:6.3f} {found['precision']:6.3f} "
                  f"{found['median_iou']:6.3f} {found['single_flagged_clump']:7.3f} {seconds:6.1f}", flush=True)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
