"""Clustering benchmark: (a) the streamed K-means fit at archive scale, (b) quality on simulated grains.

    python bench/cluster.py                  # (a): 1,000,000 x 512 latents in 50 stores, UMAP of 50,000 (~3.5 min)
    python bench/cluster.py --part b         # (b): 6 simulated samples x 30 positions (~8-20 min: trains the encoder)
    python bench/cluster.py --quick --part all   # both, small (a smoke test)
    python bench/cluster.py --threads 1      # on a busy machine: BLAS threads fight less

(a) writes seeded synthetic float32 latents (100 Gaussian blobs of unequal sizes and spreads) into
sample stores in a temporary archive (about 2 GB on disk, deleted at the end), then fits K = 100 in a
fresh subprocess with the same code as ``sedarchive cluster`` (``fit_model``: sample -> k-means++
start -> MiniBatchKMeans ``partial_fit`` over shuffled blocks) and reports its wall time and peak
RSS; labels every grain (the per-sample task of the stage, run in one process); compares the mean
squared distance to the nearest centre on a random subset with scikit-learn's full ``KMeans`` fitted
on that subset; and times a 2-D UMAP of the UMAP subset size.

(b) simulates samples with the simulated microscope (ground truth per grain), segments, trains the
small CPU encoder, encodes and clusters them with the project's stages, matches found grains to the
true kinds (``bench/groundtruth.py``), and reports cluster purity with K = 100 and, after naming
each cluster by its majority kind, the error of every kind's fraction per sample; then the same on
downscaled raw pixels instead of the encoder's mu.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))  # groundtruth.py

from catalog import Archive, SampleKey, create_variables, update_attrs, write_region  # noqa: E402

FEATURES = 512
K = 100


# -- (a) archive scale ---------------------------------------------------------------------------
def write_latents(root: Path, n_total: int, n_stores: int, seed: int = 0, chunk: int = 4096) -> Archive:
    """Seeded blob latents written chunk by chunk (never all in memory)."""
    archive = Archive.create(root)
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 1.0, (K, FEATURES)).astype(np.float32)
    weights = rng.dirichlet(np.full(K, 2.0))
    spreads = rng.uniform(0.3, 0.7, K).astype(np.float32)
    per_store = n_total // n_stores
    for s in range(n_stores):
        n = per_store if s < n_stores - 1 else n_total - per_store * (n_stores - 1)
        key = SampleKey(f"BENCH-{s % 5}", 10.0 * (s // 5), 10.0 * (s // 5) + 2)
        path = archive.create_sample(key, 1, 1, 8, 8)
        create_variables(path, {
            "latent": (("particle", "feature"), (n, FEATURES), np.float32, (chunk, FEATURES)),
            "bbox": (("particle", "corner"), (n, 4), np.int64, (chunk, 4)),
        })
        for start in range(0, n, chunk):
            m = min(chunk, n - start)
            blob = rng.choice(K, size=m, p=weights)
            x = centres[blob] + rng.standard_normal((m, FEATURES), dtype=np.float32) * spreads[blob, None]
            write_region(path, "latent", start, x)
        update_attrs(path, encoder_id="bench-synthetic")
        archive.set_status(key, "encoded")
    return archive


def _fit_child(root: str, batch_size: int, threads: int) -> None:
    """Runs in a fresh process: the stage's fit, then labelling every grain; prints JSON."""
    import resource

    import sklearn.cluster  # noqa: F401 - counted in the baseline

    from sedarchive.clustering.latents import assign_sample, n_grains
    from sedarchive.clustering.model import model_dir, save_model
    from sedarchive.clustering.stage import ClusterSettings, fit_model

    import_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    archive = Archive.open(root)
    keys = archive.keys()
    settings = ClusterSettings(k=K, batch_size=batch_size, threads=threads)
    start = time.perf_counter()
    model = fit_model(archive, keys, settings, "bench-synthetic", quiet=True)
    fit_s = time.perf_counter() - start
    save_model(archive, model)
    fit_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    start = time.perf_counter()
    for key in keys:  # what the stage's Dask tasks do, one sample after another here
        path = archive.sample_path(key)
        create_variables(path, {"cluster": (("particle",), (n_grains(path),), np.int32, (4096,))},
                         fill_values={"cluster": -1})
        assign_sample(str(path), str(model_dir(archive, model.id)))
    assign_s = time.perf_counter() - start
    print(json.dumps({"fit_s": fit_s, "import_rss_mb": import_rss, "fit_peak_rss_mb": fit_rss, "assign_s": assign_s,
                      "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                      "epochs": model.info["n_epochs"], "batches": model.info["n_batches"],
                      "model_id": model.id}))


def part_a(quick: bool, workdir: Path, batch_size: int, threads: int) -> list[tuple[str, str]]:
    from sklearn.cluster import KMeans

    from sedarchive.clustering.kmeans import nearest_centre
    from sedarchive.clustering.latents import LatentSource
    from sedarchive.clustering.model import current_model
    from sedarchive.clustering.umap_map import embed

    n_total, n_stores, n_subset, n_umap = (100_000, 10, 20_000, 10_000) if quick else (1_000_000, 50, 20_000, 50_000)
    rows = []
    start = time.perf_counter()
    archive = write_latents(workdir / "a", n_total, n_stores)
    size_gb = sum(f.stat().st_size for f in archive.samples_dir.rglob("*") if f.is_file()) / 1e9
    rows.append(("latents written", f"{n_total:,} x {FEATURES} float32 in {n_stores} stores, "
                                    f"{size_gb:.2f} GB on disk, {time.perf_counter() - start:.0f} s"))
    out = subprocess.run([sys.executable, __file__, "--_fit", str(archive.root), "--batch-size", str(batch_size),
                          "--threads", str(threads)],
                         capture_output=True, text=True, check=False)
    if out.returncode:
        raise SystemExit(f"fit subprocess failed:\n{out.stderr[-3000:]}")
    child = json.loads(out.stdout.strip().splitlines()[-1])
    rows.append(("streamed fit K=100", f"{child['fit_s']:.1f} s, {child['epochs']} epochs, {child['batches']} "
                                       f"batches of {batch_size} (target < 120 s)"))
    rows.append(("peak RSS of the fit process", f"{child['fit_peak_rss_mb']:.0f} MB (target < 1024 MB; "
                                                f"{child['import_rss_mb']:.0f} MB after imports)"))
    rows.append(("labelling every grain", f"{child['assign_s']:.1f} s in one process "
                                          f"({n_total / child['assign_s']:,.0f} grains/s); peak RSS "
                                          f"{child['peak_rss_mb']:.0f} MB"))

    rng = np.random.default_rng(1)
    subset = LatentSource([archive.sample_path(k) for k in archive.keys()]).sample(n_subset, rng)
    model = current_model(archive)
    start = time.perf_counter()
    full = KMeans(n_clusters=K, n_init=1, random_state=0).fit(subset)
    full_s = time.perf_counter() - start
    streamed = float(nearest_centre(subset, model.centres)[1].mean())
    in_memory = float(full.inertia_ / len(subset))
    rows.append((f"inertia on a {n_subset:,} subset", f"streamed {streamed:.2f} vs full KMeans on the subset "
                                                      f"{in_memory:.2f} per grain (ratio {streamed / in_memory:.3f}; "
                                                      f"full KMeans {full_s:.0f} s)"))
    points = LatentSource([archive.sample_path(k) for k in archive.keys()]).sample(n_umap, rng)
    start = time.perf_counter()
    embed(points, seed=0)
    rows.append((f"UMAP of {len(points):,} points", f"{time.perf_counter() - start:.0f} s (incl. numba compilation)"))
    shutil.rmtree(workdir / "a", ignore_errors=True)
    return rows


# -- (b) quality on simulated grains -----------------------------------------------------------
FRACTIONS = (  # kind fractions per simulated sample: quartz, dark, foram_intact, foram_broken
    (0.4, 0.2, 0.3, 0.1), (0.2, 0.1, 0.4, 0.3), (0.3, 0.3, 0.2, 0.2), (0.1, 0.2, 0.3, 0.4),
    (0.5, 0.1, 0.2, 0.2), (0.25, 0.25, 0.25, 0.25),
)


def simulate_and_encode(root: Path, n_samples: int, n_positions: int, epochs: int) -> Archive:
    """Simulated samples, segmented, encoded by the small CPU encoder (the project's own stages)."""
    from acquisition.sim import GRAIN_KINDS, simulate_sample
    from dataclasses import replace

    from sedarchive.dask import dask_client
    from sedarchive.features.settings import preset
    from sedarchive.pipeline import STAGES, PipelineSettings, run_pipeline

    archive = Archive.create(root)
    for i in range(n_samples):
        fractions = dict(zip(GRAIN_KINDS, FRACTIONS[i % len(FRACTIONS)]))
        simulate_sample(archive, SampleKey(f"SIM-{1 + i % 2}", 10.0 * i, 10.0 * i + 2), n_positions=n_positions,
                        seed=300 + i, kind_fractions=fractions)
    settings = PipelineSettings(train=replace(preset("cpu"), epochs=epochs))
    upto = [s for s in STAGES if s.name in ("segment", "train", "encode")]
    with dask_client(n_workers=2, quiet=True) as client:
        report = run_pipeline(archive, archive.keys(), client, settings, stages=upto, quiet=True)
    if not report.ok:
        raise SystemExit(f"upstream stages failed:\n{report.summary()}")
    return archive


def grain_table(archive: Archive) -> list[dict]:
    """Per sample: true kind of every found grain ('' unmatched), flags, latents, small raw pixels."""
    from groundtruth import true_kinds

    from acquisition.sim import read_truth
    from catalog import read_array

    out = []
    for key in archive.keys():
        path = archive.sample_path(key)
        truth = read_truth(path)
        images = read_array(path, "particle_images")  # (particle, layer, py, px, 3)
        step = max(1, images.shape[2] // 16)
        raw = images[:, :, ::step, ::step].mean(axis=1).reshape(len(images), -1).astype(np.float32)
        plain_truth = truth[~truth["chopped"].astype(bool) & ~truth["clump"].astype(bool)]
        out.append({
            "key": key,
            "kind": true_kinds(read_array(path, "position"), read_array(path, "bbox"), truth),
            "flagged": read_array(path, "chopped").astype(bool) | read_array(path, "clump").astype(bool),
            "latent": read_array(path, "latent").astype(np.float32),
            "raw": raw,
            "truth_fraction": plain_truth["kind"].value_counts(normalize=True).to_dict(),
        })
    return out


def quality(table: list[dict], labels_per_sample: list[np.ndarray], kinds: tuple[str, ...]) -> dict[str, float]:
    """Purity over matched unflagged grains; per-sample kind-fraction errors after majority naming."""
    lab = np.concatenate([l[~t["flagged"]] for l, t in zip(labels_per_sample, table)])
    kind = np.concatenate([t["kind"][~t["flagged"]] for t in table])
    matched = kind != ""
    hits, name = 0, {}
    for c in np.unique(lab[matched]):
        values, counts = np.unique(kind[matched & (lab == c)], return_counts=True)
        hits += counts.max()
        name[c] = values[counts.argmax()]
    errors_same, errors_truth = [], []
    for l, t in zip(labels_per_sample, table):
        keep = ~t["flagged"]
        predicted = np.array([name.get(c, "") for c in l[keep]], dtype=object)
        same = t["kind"][keep] != ""
        for k in kinds:
            if same.any():
                errors_same.append(abs(np.mean(predicted[same] == k) - np.mean(t["kind"][keep][same] == k)))
            errors_truth.append(abs(np.mean(predicted == k) - t["truth_fraction"].get(k, 0.0)))
    return {"purity": hits / max(1, matched.sum()), "grains": int(matched.sum()),
            "max_err_same": 100 * max(errors_same), "mean_err_same": 100 * float(np.mean(errors_same)),
            "max_err_truth": 100 * max(errors_truth), "mean_err_truth": 100 * float(np.mean(errors_truth))}


def part_b(quick: bool, workdir: Path) -> list[tuple[str, str]]:
    from sklearn.cluster import KMeans
    from sklearn.preprocessing import StandardScaler

    from acquisition.sim import GRAIN_KINDS
    from catalog import read_array
    from sedarchive.clustering import ClusterSettings, run_stage

    n_samples, n_positions, epochs = (3, 10, 3) if quick else (6, 30, 8)
    start = time.perf_counter()
    archive = simulate_and_encode(workdir / "b", n_samples, n_positions, epochs)
    upstream_s = time.perf_counter() - start
    table = grain_table(archive)
    n_grains = sum(len(t["kind"]) for t in table)
    k = min(K, max(2, sum(int((~t["flagged"]).sum()) for t in table) // 5))
    start = time.perf_counter()
    run_stage(archive, archive.keys(), None, ClusterSettings(k=k, umap_points=0, refit=True), quiet=True)
    cluster_s = time.perf_counter() - start
    mu = [read_array(archive.sample_path(t["key"]), "cluster") for t in table]
    raw_all = np.concatenate([t["raw"] for t in table])
    raw_fit = StandardScaler().fit_transform(raw_all)
    raw_lab = KMeans(n_clusters=k, n_init=1, random_state=0).fit_predict(raw_fit)
    bounds = np.cumsum([0] + [len(t["raw"]) for t in table])
    raw = [raw_lab[bounds[i]:bounds[i + 1]] for i in range(len(table))]
    rows = [("simulated archive", f"{n_samples} samples x {n_positions} positions, {n_grains} grains found; "
                                  f"segment+train({epochs} epochs, cpu preset)+encode {upstream_s:.0f} s; "
                                  f"cluster stage {cluster_s:.0f} s")]
    runs = [(f"K-means on encoder mu, K={k} (cluster stage)", mu), (f"K-means on 16x16 raw pixels, K={k}", raw)]
    few = min(20, k)
    latent_all = np.nan_to_num(np.concatenate([t["latent"] for t in table]))
    for name, x in (("encoder mu", latent_all), ("16x16 raw pixels", raw_fit)):
        lab = KMeans(n_clusters=few, n_init=4, random_state=0).fit_predict(x)
        runs.append((f"K-means on {name}, K={few} (for scale)", [lab[bounds[i]:bounds[i + 1]] for i in range(len(table))]))
    for name, labels in runs:
        q = quality(table, labels, tuple(GRAIN_KINDS))
        rows.append((name, f"purity {q['purity']:.3f} over {q['grains']} matched grains (target >= 0.9)"))
        rows.append(("  kind-fraction error per sample", f"same grains: max {q['max_err_same']:.1f}, mean "
                                                          f"{q['mean_err_same']:.1f} pp; vs truth table: max "
                                                          f"{q['max_err_truth']:.1f}, mean {q['mean_err_truth']:.1f} "
                                                          f"pp (target <= 3 pp)"))
    shutil.rmtree(workdir / "b", ignore_errors=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller data (a smoke test of the benchmark)")
    parser.add_argument("--part", choices=("a", "b", "all"), default="a",
                        help="a: archive-scale fit (default); b: quality on simulated grains; all: both")
    parser.add_argument("--batch-size", type=int, default=4096, help="mini-batch size of the fit (default 4096)")
    parser.add_argument("--threads", type=int, default=0,
                        help="BLAS/OpenMP threads (default 0: the libraries' choice; 1 is faster on a loaded machine)")
    parser.add_argument("--workdir", help="where the temporary archives go (default: the system temp folder)")
    parser.add_argument("--_fit", help=argparse.SUPPRESS)
    opts = parser.parse_args()
    if opts._fit:
        _fit_child(opts._fit, opts.batch_size, opts.threads)
        return
    workdir = Path(tempfile.mkdtemp(prefix="bench-cluster-", dir=opts.workdir))
    rows = []
    from threadpoolctl import threadpool_limits

    try:
        with threadpool_limits(opts.threads or None):
            if opts.part in ("a", "all"):
                rows += part_a(opts.quick, workdir, opts.batch_size, opts.threads)
            if opts.part in ("b", "all"):
                rows += part_b(opts.quick, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print(f"\nbench/cluster.py{' --quick' if opts.quick else ''} ({os.cpu_count()} CPUs; shared machine, figures under load)")
    width = max(len(r[0]) for r in rows)
    for what, value in rows:
        print(f"  {what.ljust(width)}  {value}")


if __name__ == "__main__":
    main()
