"""End-to-end time of `sedarchive run` with 1 and 2 local workers on the same archive, per stage.

    python bench/scaling.py            # 4 samples x 6 positions of 256x320 frames (6 layers)
    python bench/scaling.py --quick    # 2 samples x 3 positions

The archive is simulated once and copied for each run, so both runs see the same frames. A first
run on one sample of two positions (2 workers) warms the caches (numba's JIT of UMAP, the file
cache) and shows each stage's cold start-up cost. The extrapolation to the paper's dataset
(58,302 frames of 1280x1024, 28,801 grains) takes each stage's rate in the whole 2-worker run:
segmentation per frame pixel, training, encoding, clustering and the report per grain (an upper
bound, since start-up costs are scaled with the work). Training is the cpu preset here, for the epochs
given; the paper configuration (ResNet-152 branches) needs a GPU and is not what runs here.
"""
from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from acquisition.sim import simulate_sample
from catalog import Archive, SampleKey
from sedarchive.clustering.stage import ClusterSettings
from sedarchive.dask import dask_client
from sedarchive.features.settings import preset
from sedarchive.pipeline import PipelineSettings, run_pipeline

PAPER_FRAMES = 58_302
PAPER_GRAINS = 28_801
PAPER_PIXELS = 1280 * 1024


def simulate(root: Path, n_samples: int, n_positions: int, height: int, width: int) -> Archive:
    """``n_samples`` simulated samples over two cores, each from its own seed."""
    archive = Archive.create(root)
    for i in range(n_samples):
        key = SampleKey(f"BENCH-{1 + i % 2}", 10 + 10 * (i // 2), 12 + 10 * (i // 2))
        simulate_sample(archive, key, n_positions=n_positions, height=height, width=width, seed=100 + i)
    return archive


def run_once(pristine: Path, workdir: Path, n_workers: int, settings: PipelineSettings) -> tuple[dict[str, float], float, int]:
    """Copy the archive, run the pipeline on it with ``n_workers``; per-stage seconds, total, grains."""
    root = workdir / f"workers-{n_workers}"
    shutil.copytree(pristine, root)
    archive = Archive.open(root)
    start = time.perf_counter()
    with dask_client(n_workers=n_workers, quiet=True) as client:
        report = run_pipeline(archive, archive.keys(), client, settings, quiet=True)
    total = time.perf_counter() - start
    if not report.ok:
        raise SystemExit(f"the pipeline failed with {n_workers} worker(s):\n{report.summary()}")
    grains = sum(row.n_particles for row in archive.samples())
    return {s.name: s.seconds for s in report.stages}, total, grains


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a tiny archive (a smoke test of the benchmark)")
    parser.add_argument("--epochs", type=int, default=2, help="training epochs of the cpu preset (default 2)")
    opts = parser.parse_args()
    n_samples, n_positions, (height, width) = (2, 3, (256, 320)) if opts.quick else (4, 6, (256, 320))
    settings = PipelineSettings(train=replace(preset("cpu"), epochs=opts.epochs), cluster=ClusterSettings(k=8))
    with tempfile.TemporaryDirectory(prefix="sedarchive-scaling-") as tmp:
        work = Path(tmp)
        tiny = simulate(work / "tiny", 1, 2, height, width)
        fixed, _, _ = run_once(tiny.root, work / "warm-up", 2, settings)
        archive = simulate(work / "pristine", n_samples, n_positions, height, width)
        frames = sum(row.n_positions for row in archive.samples()) * 6
        runs = {n: run_once(archive.root, work, n, settings) for n in (1, 2)}
    stages = list(runs[1][0])
    grains = runs[1][2]
    print(f"\narchive: {n_samples} samples, {frames} frames of {height}x{width}, {grains} grains; "
          f"cpu preset, {opts.epochs} epoch(s), K=8")
    print(f"{'stage':<10}{'1 worker s':>12}{'2 workers s':>13}{'speed-up':>10}")
    for name in stages:
        one, two = runs[1][0][name], runs[2][0].get(name, float("nan"))
        print(f"{name:<10}{one:>12.1f}{two:>13.1f}{one / two:>10.2f}")
    print(f"{'total':<10}{runs[1][1]:>12.1f}{runs[2][1]:>13.1f}{runs[1][1] / runs[2][1]:>10.2f}")

    # Extrapolation: each stage's rate in the whole 2-worker run (seconds per frame pixel for
    # segmentation, per grain for the rest) times the paper's work. Start-up costs are scaled with
    # the work too, so this is an upper bound; subtracting the warm-up run's cost instead goes wrong
    # when that cold run (imports, numba compilation) is slower than the measured run.
    estimate = {}
    for name, seconds in runs[2][0].items():
        if name == "segment":
            estimate[name] = seconds / (frames * height * width) * PAPER_FRAMES * PAPER_PIXELS
        else:
            estimate[name] = seconds / max(grains, 1) * PAPER_GRAINS
    print("\nstart-up cost per stage (cold warm-up run, 2 positions): "
          + ", ".join(f"{name} {seconds:.1f} s" for name, seconds in fixed.items()))
    print(f"\nextrapolated to the paper's {PAPER_FRAMES:,} frames of 1280x1024 and {PAPER_GRAINS:,} grains "
          f"(2 workers, this machine):")
    for name, seconds in estimate.items():
        print(f"  {name:<10}{seconds / 3600:>8.2f} h")
    print(f"  {'total':<10}{sum(estimate.values()) / 3600:>8.2f} h  (segmentation is per-frame work: it divides by "
          f"the number of workers on a cluster)")


if __name__ == "__main__":
    main()
