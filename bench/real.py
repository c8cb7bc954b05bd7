"""Segmentation of real photographs against their labels: recall, precision, median box IoU, speed.

    python bench/real.py [--method slic|fast|both|boundary|all] [--weights FILE] [--image NAME ...]
                         [--data DIR] [--json FILE]

The photographs and instance labels of the open segmenteverygrain project (Apache-2.0; see
``SOURCE.txt`` and ``LICENSE.txt`` next to them) are read from ``../shared/data/real/segmenteverygrain``
relative to the repository root (``--data DIR`` or the environment variable
``SEDARCHIVE_REAL_DATA`` naming the ``real`` folder change it). Each photograph is one position of one
focal layer, segmented with the project's kernels exactly as ``sedarchive segment`` would
(:func:`~sedarchive.segmentation.extract_grains` on a one-layer stack, default settings unless
``--method``). Found and labelled grains are paired one to one by box IoU (Hungarian assignment,
``bench/groundtruth.py``); a pair counts at IoU >= 0.5. Labelled grains cut by the image edge count
like the others.

``--method boundary`` (or ``all``: slic, fast and boundary) needs ``--weights FILE`` (default: the
weights shipped in ``sedarchive/segmentation/weights/``, trained on other photographs of the same
project, never on these five; see ``bench/train_boundary.py``). Its grain scale is estimated from
each photograph (``grain_px`` reported next to the labels' own median grain diameter, ``true_px``)
unless ``--set grain_px=...``; the seconds include that estimate.

The label images hold one colour per grain (viridis), background ``(84, 1, 68)``; colours may
repeat, so each colour is split into connected components.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from groundtruth import box_iou  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
# ../shared/data/real from the repository root; from a git worktree one level deeper, ../../shared
_SHARED = next((p / "shared" / "data" / "real" for p in (REPO.parent, REPO.parent.parent)
                if (p / "shared" / "data" / "real").is_dir()), REPO.parent / "shared" / "data" / "real")
DATA = Path(os.environ.get("SEDARCHIVE_REAL_DATA", _SHARED)) / "segmenteverygrain"
IMAGES = ("20230511_132710955", "20210705_141816733", "2_1", "1_2", "2346")
BACKGROUND_LABEL = (84, 1, 68)
#: Labelled objects smaller than this (pixels) are slivers of a colour split by another grain.
MIN_LABEL_PX = 20
WEIGHTS = REPO / "sedarchive" / "segmentation" / "weights" / "boundary.pt"


def read_rgb(path: Path) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as img:
        return np.asarray(img.convert("RGB"), dtype=np.uint8)


def label_boxes(labels_rgb: np.ndarray) -> np.ndarray:
    """Boxes ``(n, 4)`` ``y0, x0, y1, x1`` of the labelled grains: each colour's connected components."""
    import cv2

    code = (labels_rgb[..., 0].astype(np.int64) << 16) | (labels_rgb[..., 1].astype(np.int64) << 8) | labels_rgb[..., 2]
    bg = (BACKGROUND_LABEL[0] << 16) | (BACKGROUND_LABEL[1] << 8) | BACKGROUND_LABEL[2]
    boxes = []
    for value in np.unique(code):
        if value == bg:
            continue
        n, _, stats, _ = cv2.connectedComponentsWithStats((code == value).astype(np.uint8), connectivity=8)
        for x, y, w, h, area in stats[1:]:
            if area >= MIN_LABEL_PX:
                boxes.append((y, x, y + h, x + w))
    return np.asarray(boxes, np.int64).reshape(-1, 4)


def instance_labels(labels_rgb: np.ndarray) -> np.ndarray:
    """Instance labels (int32) from a colour label image: each colour's connected components."""
    import cv2

    code = (labels_rgb[..., 0].astype(np.int64) << 16) | (labels_rgb[..., 1].astype(np.int64) << 8) | labels_rgb[..., 2]
    bg = (BACKGROUND_LABEL[0] << 16) | (BACKGROUND_LABEL[1] << 8) | BACKGROUND_LABEL[2]
    out = np.zeros(code.shape, np.int32)
    k = 0
    for value in np.unique(code):
        if value == bg:
            continue
        n, comps = cv2.connectedComponents((code == value).astype(np.uint8), connectivity=8)
        for i in range(1, n):
            mask = comps == i
            if mask.sum() >= MIN_LABEL_PX:
                k += 1
                out[mask] = k
    return out


def scores(found: np.ndarray, truth: np.ndarray, min_iou: float = 0.5) -> dict[str, float]:
    """Recall, precision and median IoU of the matched pairs (one to one, Hungarian on box IoU)."""
    from scipy.optimize import linear_sum_assignment

    if len(found) == 0 or len(truth) == 0:
        return {"recall": 0.0, "precision": 0.0, "median_iou": float("nan"),
                "n_found": len(found), "n_true": len(truth)}
    iou = box_iou(found, truth)
    rows, cols = linear_sum_assignment(-iou)
    hit = iou[rows, cols] >= min_iou
    n_hit = int(hit.sum())
    return {"recall": n_hit / len(truth), "precision": n_hit / len(found),
            "median_iou": float(np.median(iou[rows, cols][hit])) if n_hit else float("nan"),
            "n_found": int(len(found)), "n_true": int(len(truth))}


def run_image(name: str, data: Path, method: str, settings_changes: dict) -> dict:
    from sedarchive.segmentation import SegmentSettings, extract_grains

    image = read_rgb(data / "images" / f"{name}_image.png")
    truth = label_boxes(read_rgb(data / "labels" / f"{name}_labels.png"))
    changes = {k: v for k, v in settings_changes.items() if method == "boundary" or k not in ("weights", "grain_px")}
    settings = SegmentSettings(method=method, crop_size=32, **changes)
    start = time.perf_counter()
    _, table = extract_grains(image[None], settings, what=name)
    seconds = time.perf_counter() - start
    found = table.columns["bbox"].astype(np.int64)
    out = scores(found, truth)
    out.update(image=name, method=method, seconds=seconds, megapixels=image.shape[0] * image.shape[1] / 1e6,
               n_clump=int(table.columns["clump"].sum()))
    if method == "boundary":
        from sedarchive.segmentation.boundary import estimate_grain_px, load_weights

        from sedarchive.segmentation.boundary import median_diameter

        out["true_px"] = median_diameter(instance_labels(read_rgb(data / "labels" / f"{name}_labels.png")))
        out["grain_px"] = settings.grain_px or estimate_grain_px(load_weights(settings.weights), image)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--method", default="default", choices=("default", "slic", "fast", "both", "boundary", "all"))
    parser.add_argument("--weights", type=Path, default=WEIGHTS, help="boundary method's weights file")
    parser.add_argument("--image", nargs="*", default=list(IMAGES), help="image names (default: all five)")
    parser.add_argument("--data", type=Path, default=DATA, help="folder with images/ and labels/")
    parser.add_argument("--set", nargs="*", default=[], metavar="NAME=VALUE",
                        help="other SegmentSettings, e.g. background=black")
    parser.add_argument("--json", type=Path, help="also write the figures as JSON")
    args = parser.parse_args(argv)
    if not (args.data / "images").is_dir():
        print(f"bench/real.py: no photographs under {args.data} (see its docstring)", file=sys.stderr)
        return 2
    import yaml

    from sedarchive.segmentation import SegmentSettings

    changes = {k: yaml.safe_load(v) for k, v in (s.split("=", 1) for s in args.set)}
    methods = {"default": [SegmentSettings().method], "both": ["slic", "fast"],
               "all": ["slic", "fast", "boundary"]}.get(args.method, [args.method])
    if "boundary" in methods:
        changes.setdefault("weights", str(args.weights))
    rows = []
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    print(f"{'image':20} {'method':6} {'true':>5} {'found':>5} {'recall':>6} {'prec':>6} {'medIoU':>6} "
          f"{'clump':>5} {'s':>6} {'MP/s':>5}")
    for method in methods:
        for name in args.image:
            r = run_image(name, args.data, method, changes)
            rows.append(r)
            print(f"{name:20} {method:6} {r['n_true']:5d} {r['n_found']:5d} {r['recall']:6.3f} {r['precision']:6.3f} "
                  f"{r['median_iou']:6.3f} {r['n_clump']:5d} {r['seconds']:6.2f} {r['megapixels'] / r['seconds']:5.2f}"
                  + (f"  grain_px {r['grain_px']:.0f} (labels ~{r['true_px']:.0f})" if "grain_px" in r else ""),
                  flush=True)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
