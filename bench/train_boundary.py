"""Train the ``boundary`` segmentation method's weights from labelled photographs (CPU).

    nice -n 5 python bench/train_boundary.py DATA OUT.pt [--minutes 18] [--tile 256] [--batch 6]
        [--init WEIGHTS] [--export-from SEGMENTEVERYGRAIN_GIT_DIR]

``DATA`` holds photographs in segmenteverygrain's layout: ``images/<name>_image.png`` (or ``.jpg``)
with ``labels/<name>_labels.png`` (instance labels as colours, background ``(84, 1, 68)``, each
colour split into connected components, as ``bench/real.py`` reads them) or ``masks/<name>_mask.png``
(0 plate, 1 grain interior, 2 grain boundary). The five photographs that ``bench/real.py`` scores
are refused: they are the test set and never seen in training.

The weights shipped in ``sedarchive/segmentation/weights/`` were made from the segmenteverygrain
project's own labelled photographs (Apache-2.0), taken from its git history
(``github:zsylvester/segmenteverygrain``: ``images/`` at commits 5245f82 / 8aa18fb, ``examples/``
at 1ab65cc); see ``sedarchive/segmentation/weights/SOURCE.txt`` for the list and the exact command.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from real import IMAGES, instance_labels, read_rgb  # noqa: E402


#: The training set of the shipped weights: (path in the segmenteverygrain repository, commit, where here).
TRAINING_FILES = [
    *[(f"images/{n}_{kind}.png", commit, f"{folder}/{n}_{kind}.png")
      for n in ("A003_20201229_103823", "IMG_5208", "IMG_5217", "IMG_5220", "california_gravel", "california_gravel_2")
      for kind, commit, folder in (("image", "5245f82", "images"), ("labels", "8aa18fb", "labels"))],
    ("examples/barton_creek/barton_creek_image.jpg", "1ab65cc", "images/barton_creek_image.jpg"),
    ("examples/barton_creek/barton_creek_image_mask.png", "1ab65cc", "masks/barton_creek_mask.png"),
    ("examples/torrey_pines_beach/torrey_pines_beach_image.jpg", "1ab65cc", "images/torrey_pines_beach_image.jpg"),
    ("examples/torrey_pines_beach/torrey_pines_beach_mask.png", "1ab65cc", "masks/torrey_pines_beach_mask.png"),
]


def export_training_set(git_dir: Path, data: Path) -> None:
    """Write :data:`TRAINING_FILES` from a git clone (or mirror) of segmenteverygrain into ``data``."""
    import subprocess

    for path, commit, target in TRAINING_FILES:
        blob = subprocess.run(["git", "--git-dir", str(git_dir), "show", f"{commit}:{path}"], capture_output=True,
                              check=True).stdout
        (data / target).parent.mkdir(parents=True, exist_ok=True)
        (data / target).write_bytes(blob)


def read_photographs(data: Path, allow_test: bool = False) -> list:
    from PIL import Image

    from sedarchive.segmentation.boundary_train import Photograph

    photos = []
    for image in sorted((data / "images").glob("*_image.*")):
        name = image.name.rsplit("_image.", 1)[0]
        if name in IMAGES and not allow_test:
            print(f"skipping {name}: one of bench/real.py's test photographs", file=sys.stderr)
            continue
        rgb = read_rgb(image)
        labels, mask = data / "labels" / f"{name}_labels.png", data / "masks" / f"{name}_mask.png"
        if labels.is_file():
            photos.append(Photograph(name, rgb, labels=instance_labels(read_rgb(labels))))
        elif mask.is_file():
            with Image.open(mask) as m:
                photos.append(Photograph(name, rgb, classes=np.asarray(m.convert("L"), np.uint8)))
        else:
            print(f"skipping {name}: no labels/{name}_labels.png nor masks/{name}_mask.png", file=sys.stderr)
    return photos


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--minutes", type=float, default=18.0)
    parser.add_argument("--tile", type=int, default=256)
    parser.add_argument("--batch", type=int, default=6)
    parser.add_argument("--widths", default="16,32,64,96")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--init", type=Path, help="start from these weights (same widths)")
    parser.add_argument("--allow-test", action="store_true", help="do not refuse the five test photographs")
    parser.add_argument("--export-from", type=Path, metavar="GIT_DIR",
                        help="first write the shipped weights' training set into DATA from a git clone of "
                             "segmenteverygrain (its .git folder)")
    args = parser.parse_args(argv)
    if args.export_from:
        export_training_set(args.export_from, args.data)
    from sedarchive.segmentation.boundary_train import TrainSettings, train_boundary

    photos = read_photographs(args.data, args.allow_test)
    for p in photos:
        print(f"{p.name:32} {p.rgb.shape[1]}x{p.rgb.shape[0]}  median grain {p.median_grain_px():.1f} px")
    settings = TrainSettings(tile=args.tile, batch=args.batch, seconds=args.minutes * 60, threads=args.threads,
                             widths=tuple(int(w) for w in args.widths.split(",")), seed=args.seed,
                             info={"command": " ".join(sys.argv), "load_start": os.getloadavg()[0]})
    print(f"load average {os.getloadavg()[0]:.2f}; training {args.minutes} min on {len(photos)} photographs",
          flush=True)
    model = train_boundary(photos, settings, init=args.init, log=lambda s: print(s, flush=True))
    model.save(args.out)
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e6:.2f} MB) after {model.info['steps']} steps; "
          f"load average {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
