"""Which grain features separate the classes: the candidates of issue 13 on the plate benchmark.

    python bench/features.py                       # 4 samples x 36 positions, 6 epochs per encoder
    python bench/features.py --positions 100 --epochs 20 --json out.json

The plates, segmentation, simulated expert and class-fraction errors are ``bench/accuracy.py``'s.
The plates are simulated and segmented once; then for each encoder candidate (``cpu-paper``: the
paper's VAE at CPU size; ``cpu-vae``: the same made orientation-free; ``cpu``: that network
trained SimCLR-style, orientation-free) the real train and encode stages
run on a copy, and for each clustering recipe (latent alone, latent + morphometrics at a share
``--weight`` of the variance) and K (20, 100) the real cluster stage runs on a copy of that. For
each it reports:

- purity: the share of grains in their cluster's majority true class, over the grains K-means fits
  on (not chopped, not a clump) that match a simulated object;
- ARI: the adjusted Rand index of clusters against the true classes, over the same grains;
- at K = 100: the end-to-end class-fraction error (proportions.zarr, edge-corrected, against the
  plate truth; clusters named by the simulated expert), max and mean over samples and classes.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import accuracy  # noqa: E402

from catalog import Archive  # noqa: E402

ENCODERS = ("cpu-paper", "cpu-vae", "cpu")


def run(archive: Archive, stages: list[str], settings: dict) -> dict[str, float]:
    from sedarchive.dask import dask_client
    from sedarchive.pipeline import STAGES, PipelineSettings, run_pipeline

    upto = [s for s in STAGES if s.name in stages]
    with dask_client(n_workers=2, quiet=True) as client:
        report = run_pipeline(archive, archive.keys(), client, PipelineSettings(**settings), stages=upto, quiet=True)
    if not report.ok:
        raise SystemExit(f"pipeline stages failed:\n{report.summary()}")
    return {s.name: s.seconds for s in report.stages}


def separation(tables: list[dict]) -> dict[str, float]:
    """Purity and ARI of the clusters against the true classes (fitted grains matched to an object)."""
    from sklearn.metrics import adjusted_rand_score

    keep = [(~t["flagged"]) & (t["kind"] != "") for t in tables]
    kind = np.concatenate([t["kind"][k] for t, k in zip(tables, keep)]).astype(str)
    cluster = np.concatenate([t["cluster"][k] for t, k in zip(tables, keep)])
    hits = 0
    for c in np.unique(cluster):
        _, counts = np.unique(kind[cluster == c], return_counts=True)
        hits += counts.max()
    return {"purity": hits / len(kind), "ari": float(adjusted_rand_score(kind, cluster)), "n_grains": int(len(kind))}


def cluster_candidate(encoded: Path, work: Path, k: int, weight: float) -> dict:
    from sedarchive.clustering.stage import ClusterSettings
    from sedarchive.counting.proportions import write_proportions

    shutil.rmtree(work, ignore_errors=True)
    shutil.copytree(encoded, work)
    archive = Archive.open(work)
    seconds = run(archive, ["cluster"], {"cluster": ClusterSettings(k=k, umap_points=0, morphometrics=weight)})
    tables = accuracy.grain_tables(archive)
    out = {**separation(tables), "cluster_s": seconds["cluster"]}
    if k == 100:
        accuracy.name_clusters(archive, tables)
        write_proportions(archive)
        rows = accuracy.evaluate(archive, tables)["rows"]
        err = np.abs(np.array([100 * (r["pipe_corr"] - r["truth"]) for r in rows]))
        out.update(max_err=float(err.max()), mean_err=float(err.mean()),
                   per_sample_max=[float(e) for e in err.max(axis=1)])
    shutil.rmtree(work, ignore_errors=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=4)
    parser.add_argument("--positions", type=int, default=36, help="positions per sample (default 36: 6 x 6 frames)")
    parser.add_argument("--density", type=float, default=2.5, help="grains per mm2 (default 2.5)")
    parser.add_argument("--overlap", type=float, default=0.3)
    parser.add_argument("--epochs", type=int, default=6, help="encoder epochs of every candidate (default 6)")
    parser.add_argument("--encoders", default=",".join(ENCODERS), help="encoder presets to compare")
    parser.add_argument("--weight", type=float, default=0.5,
                        help="share of the variance given to the morphometrics in the '+ morphometrics' candidates")
    parser.add_argument("--ks", default="20,100", help="cluster counts (default 20,100)")
    parser.add_argument("--workdir", help="where the temporary archives go")
    parser.add_argument("--segmented", help="keep the simulated, segmented archive here and reuse it when it exists")
    parser.add_argument("--json", help="also write the figures here")
    opts = parser.parse_args()
    from sedarchive.features.settings import EncodeSettings, preset
    from sedarchive.segmentation.settings import SegmentSettings

    root = Path(tempfile.mkdtemp(prefix="bench-features-", dir=opts.workdir))
    results = []
    start, load = time.perf_counter(), os.getloadavg()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            segmented = Path(opts.segmented) if opts.segmented else root / "segmented"
            if not (segmented.exists() and Archive.open(segmented).keys()):
                archive = accuracy.simulate(segmented, opts.samples, opts.positions, opts.overlap, opts.density)
            seg = run(Archive.open(segmented), ["segment"], {"segment": SegmentSettings(crop_size=64)})["segment"]
            print(f"segment {seg:.0f} s, load {os.getloadavg()[0]:.1f}", flush=True)
            for name in opts.encoders.split(","):
                encoded = root / f"encoded-{name}"
                shutil.copytree(segmented, encoded)
                train = replace(preset(name), epochs=opts.epochs)
                load_before = os.getloadavg()[0]
                times = run(Archive.open(encoded), ["train", "encode"], {"train": train, "encode": EncodeSettings()})
                for weight in (0.0, opts.weight):
                    for k in (int(v) for v in opts.ks.split(",")):
                        row = {"encoder": name, "morphometrics": weight, "k": k, "train_s": times["train"],
                               "encode_s": times["encode"], "load": [load_before, os.getloadavg()[0]],
                               **cluster_candidate(encoded, root / "work", k, weight)}
                        results.append(row)
                        print(json.dumps(row), flush=True)
                shutil.rmtree(encoded, ignore_errors=True)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(f"\nbench/features.py: {opts.samples} samples x {opts.positions} positions, density {opts.density}/mm2, "
          f"{opts.epochs} epochs; {time.perf_counter() - start:.0f} s; {os.cpu_count()} CPUs, load average at start "
          f"{load[0]:.1f}, at end {os.getloadavg()[0]:.1f}; {results[0]['n_grains'] if results else 0} grains scored\n")
    print("| encoder | morphometrics | K | purity | ARI | class-fraction error, pp, max / mean | train s | encode s |")
    print("|---|---|---|---|---|---|---|---|")
    for r in results:
        err = f"{r['max_err']:.1f} / {r['mean_err']:.1f}" if "max_err" in r else ""
        print(f"| {r['encoder']} | {r['morphometrics']:g} | {r['k']} | {r['purity']:.3f} | {r['ari']:.3f} | {err} | "
              f"{r['train_s']:.0f} | {r['encode_s']:.0f} |")
    if opts.json:
        Path(opts.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
