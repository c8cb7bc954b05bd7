"""Training threads: speed of the ``cpu`` preset per torch thread count, and whether the weights change.

    python bench/train_threads.py                  # threads 1, 2, 4 on 512 grains, 2 epochs
    python bench/train_threads.py --threads 1 8    # other counts
    python bench/train_threads.py --grains 2048

Each count trains the same seeded model on the same synthetic grains (``bench/encode.py``'s
``synthetic_archive``) in a fresh child process (no ``OMP_NUM_THREADS`` inherited) and prints the
grains/s of the last epoch and the model id (a digest of the weights). Different ids for different
counts are why ``--train-threads`` is a fixed setting recorded with the model, not "all cores":
the same archive must give the same model on a laptop, a login node and a GPU worker.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import replace
from pathlib import Path


def _child(root: str, threads: int, epochs: int) -> None:
    from catalog import Archive
    from sedarchive.features.data import build_index
    from sedarchive.features.settings import preset
    from sedarchive.features.train import train_and_save

    archive = Archive.open(root)
    settings = replace(preset("cpu"), epochs=epochs, threads=threads, device="cpu")
    index = build_index([row.path for row in archive.samples()], False, None, settings.seed)
    out = train_and_save(index, settings, Path(root) / f"models-{threads}")
    print(json.dumps({"threads": threads, "grains_per_s": out["history"][-1]["grains_per_s"],
                      "model_id": out["model_id"]}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--grains", type=int, default=512)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--_child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args._child:
        _child(args._child[0], int(args._child[1]), args.epochs)
        return
    sys.path.insert(0, str(Path(__file__).parent))
    from encode import synthetic_archive

    workdir = Path(tempfile.mkdtemp(prefix="bench-threads-"))
    env = {k: v for k, v in os.environ.items() if not k.endswith("_NUM_THREADS")}
    try:
        synthetic_archive(workdir / "archive", args.grains, 64)
        load = os.getloadavg()[0]
        print(f"machine: {os.cpu_count()} CPU cores, load average {load:.1f}; {args.grains} grains, "
              f"{args.epochs} epochs, cpu preset")
        for threads in args.threads:
            out = subprocess.run([sys.executable, __file__, "--epochs", str(args.epochs), "--_child",
                                  str(workdir / "archive"), str(threads)], env=env, capture_output=True, text=True,
                                 check=True)
            row = json.loads(out.stdout.strip().splitlines()[-1])
            print(f"threads {row['threads']:>2}: {row['grains_per_s']:8.1f} grains/s  model {row['model_id']}",
                  flush=True)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
