"""The headline quality figure: class fractions in proportions.zarr against the plate's truth.

    python bench/accuracy.py              # 4 samples x 100 positions (30 % overlap), > 500 grains each
    python bench/accuracy.py --quick      # 4 samples x 16 positions (a smoke test of the benchmark)
    python bench/accuracy.py --json out.json

What it does, with the project's own code at every step:

1. simulates samples with different class mixes on continuous virtual plates (``simulate_sample``:
   class-dependent grain sizes, a grid of overlapping frames) and their plate truth: the class mix
   of the grains whose centre lies in the scanned area (``acquisition.sim.plate_truth``);
2. runs the real stages (``run_pipeline``: segment, train, encode, cluster at K = 100) with the
   ``cpu`` encoder preset and its default epochs; grain images are cropped at 64 px, the size
   that preset trains on (the default 280 px crops are for the ``paper`` preset and only cost time);
3. a simulated expert names each cluster by the majority true class of its whole grains (found
   grains matched to the simulator's objects by box IoU, ``bench/groundtruth.py``; a clump has the
   class of its largest grain, as in the simulator's truth) through ``sedarchive.counting.labels``
   (clusters whose grains are mostly not real grains are excluded as debris), recording what a
   check of up to 20 of its grains found, then ``write_proportions``;
4. compares ``proportions.zarr`` with the plate truth, per sample and class, and splits the error
   into the steps: *frame edges and overlaps* (a perfect segmenter's objects, counted per frame
   as before, or by ``sedarchive.counting``), *segmentation and flags* (the pipeline's grains, each
   named by its own true class: "perfect clusters"), and *clustering and naming* (the pipeline's
   clusters); and checks whether the truth lies inside the reported 95 % intervals. "Corrected"
   counts are ``proportions.zarr``'s: each grain once, edge-weighted, with the grains hidden in
   counted clumps added (``sedarchive.counting.clumps``); the signed errors per sample and class
   are printed for the corrected rows.
"""
from __future__ import annotations

from dataclasses import replace

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))  # groundtruth.py

from catalog import Archive, SampleKey, read_array  # noqa: E402

KINDS = ("quartz", "dark", "foram_intact", "foram_broken")
MIXES = (  # quartz, dark, foram_intact, foram_broken
    (0.40, 0.20, 0.30, 0.10), (0.15, 0.10, 0.45, 0.30), (0.30, 0.35, 0.15, 0.20), (0.10, 0.20, 0.25, 0.45),
    (0.55, 0.05, 0.20, 0.20), (0.25, 0.25, 0.25, 0.25),
)
FRAME = dict(height=256, width=320, pixel_size_um=8.0)
CHECKED_PER_CLUSTER = 20


def simulate(root: Path, n_samples: int, n_positions: int, overlap: float, density: float) -> Archive:
    from acquisition.sim import simulate_sample

    archive = Archive.create(root)
    for i in range(n_samples):
        simulate_sample(archive, SampleKey(f"ACC-{1 + i % 2}", 10.0 * i, 10.0 * i + 2), n_positions=n_positions,
                        seed=700 + i, kind_fractions=dict(zip(KINDS, MIXES[i % len(MIXES)])), overlap=overlap,
                        grains_per_mm2=density, **FRAME)
    return archive


def run_stages(archive: Archive, epochs: int | None, k: int, crop_size: int, preset_name: str = "cpu",
               morphometrics: float = 0.0) -> dict[str, float]:
    from sedarchive.clustering.stage import ClusterSettings
    from sedarchive.dask import dask_client
    from sedarchive.features.settings import EncodeSettings, preset
    from sedarchive.pipeline import STAGES, PipelineSettings, run_pipeline
    from sedarchive.segmentation.settings import SegmentSettings

    train = preset(preset_name)
    if epochs is not None:
        train = replace(train, epochs=epochs)
    settings = PipelineSettings(segment=SegmentSettings(crop_size=crop_size), train=train, encode=EncodeSettings(),
                                cluster=ClusterSettings(k=k, umap_points=0, morphometrics=morphometrics))
    upto = [s for s in STAGES if s.name in ("segment", "train", "encode", "cluster")]
    with dask_client(n_workers=2, quiet=True) as client:
        report = run_pipeline(archive, archive.keys(), client, settings, stages=upto, quiet=True)
    if not report.ok:
        raise SystemExit(f"pipeline stages failed:\n{report.summary()}")
    return {s.name: s.seconds for s in report.stages}


def grain_tables(archive: Archive) -> list[dict]:
    """Per sample: the truths, and for each found grain its matched true kind ('' where none)."""
    from groundtruth import match_pieces

    from acquisition.sim import plate_fractions, read_plate_truth, read_truth

    out = []
    for key in archive.keys():
        path = archive.sample_path(key)
        truth = read_truth(path)
        grains, appearances = read_plate_truth(path)
        appearances = appearances.merge(grains[["plate", "grain_id", "kind"]], on=["plate", "grain_id"])
        # a clump: the kind of its largest grain; a grain split off a clump: its own kind
        kind = match_pieces(read_array(path, "position"), read_array(path, "bbox"), truth, appearances)
        out.append({
            "key": key, "path": path, "truth": truth,
            "plate": plate_fractions(grains, KINDS), "n_plate": int(grains["in_scan"].sum()),
            "kind": kind,
            "chopped": read_array(path, "chopped").astype(bool),
            "flagged": read_array(path, "chopped").astype(bool) | read_array(path, "clump").astype(bool),
            "cluster": read_array(path, "cluster").astype(np.int64),
        })
    return out


def name_clusters(archive: Archive, tables: list[dict], seed: int = 0) -> dict[str, int]:
    """The simulated expert: majority true class of each cluster's whole grains, via the labels API.

    Clusters mostly of things that are no grain (no true object matches them) are excluded as debris.
    """
    from sedarchive.counting import labels as lab
    from sedarchive.clustering import current_model

    model = current_model(archive)
    cluster = np.concatenate([t["cluster"][~t["chopped"]] for t in tables])
    kind = np.concatenate([t["kind"][~t["chopped"]] for t in tables])
    rng = np.random.default_rng(seed)
    done = {"named": 0, "excluded": 0}
    for c in range(model.n_centres):
        members = kind[cluster == c]
        if not members.size:
            continue
        values, counts = np.unique(members, return_counts=True)
        majority = values[counts.argmax()]
        look = rng.choice(members, size=min(CHECKED_PER_CLUSTER, members.size), replace=False)
        checked = {(k or "debris"): int((look == k).sum()) for k in np.unique(look)}
        if majority == "":
            lab.exclude_cluster(archive, c, "debris", by="simulated expert")
            done["excluded"] += 1
        else:
            lab.name_cluster(archive, c, str(majority), by="simulated expert", checked=checked)
            done["named"] += 1
    return done


def per_frame_fractions(kind: np.ndarray, plain: np.ndarray) -> np.ndarray:
    """Class fractions of grains counted per frame, as before (repeats included, flagged grains out)."""
    k = kind[plain]
    k = k[np.isin(k, KINDS)]
    return np.array([np.mean(k == c) if k.size else np.nan for c in KINDS])


def weighted_fractions(kind: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """Class fractions of weighted grains; debris (no true kind) is not counted (the expert excludes it)."""
    w = np.where(np.isin(kind, KINDS), weight, 0.0)
    return np.array([w[kind == c].sum() for c in KINDS]) / max(w.sum(), 1e-12)


def clump_corrected_fractions(kind: np.ndarray, weight: np.ndarray, area: np.ndarray, clump: np.ndarray) -> np.ndarray:
    """:func:`weighted_fractions` plus the grains hidden in clumps, as ``proportions.zarr`` counts them."""
    from sedarchive.counting.clumps import hidden_counts, size_model

    cls = np.array([KINDS.index(k) if k in KINDS else -1 for k in kind], np.int64)
    w = np.where(cls >= 0, weight, 0.0)
    counts = np.array([w[cls == i].sum() for i in range(len(KINDS))])
    counts = counts + hidden_counts(area, cls, w, clump, size_model(area, cls, w, ~clump, len(KINDS)))
    return counts / max(counts.sum(), 1e-12)


def perfect_segmentation_counts(table: dict, *, exclude_clumps: bool = False,
                                clump_grains: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Step 1: the simulator's objects (a perfect segmenter), per frame and with sedarchive.counting."""
    from sedarchive.counting import count_weights, join_appearances, whole_view_probability
    from sedarchive.counting.sample import layout_of

    truth = table["truth"]
    kind = truth["kind"].to_numpy().astype(object)
    chopped, clump = truth["chopped"].to_numpy(bool), truth["clump"].to_numpy(bool)
    bbox = truth[["y0", "x0", "y1", "x1"]].to_numpy()
    layout = layout_of(table["path"])
    dup = join_appearances(truth["position"].to_numpy(), bbox, layout, chopped=chopped,
                           sharpness=truth["area_px"].to_numpy(float))
    p = whole_view_probability(bbox[:, 3] - bbox[:, 1], bbox[:, 2] - bbox[:, 0], layout)
    weight = count_weights(chopped, dup, p, excluded=clump if exclude_clumps else None)
    if clump_grains and not exclude_clumps:
        corrected = clump_corrected_fractions(kind, weight, truth["area_px"].to_numpy(float), clump)
    else:
        corrected = weighted_fractions(kind, weight)
    return per_frame_fractions(kind, ~chopped & ~clump), corrected


def evaluate(archive: Archive, tables: list[dict]) -> dict:
    """Errors (percentage points) per step, per sample and class; interval coverage."""
    import xarray as xr

    from sedarchive.counting.class_estimates import corrected_estimates

    ds = xr.open_zarr(str(archive.proportions_path), consolidated=False).load()
    rows = []
    for t in tables:
        row = ds.sel(sample=t["key"].name)
        truth = np.array([t["plate"][k] for k in KINDS])
        edges_raw, edges_corr = perfect_segmentation_counts(t)
        weight = read_array(t["path"], "count_weight").astype(float)
        seg_raw = per_frame_fractions(t["kind"], ~t["flagged"])
        area = read_array(t["path"], "area_px").astype(float)
        clump = read_array(t["path"], "clump").astype(bool)
        seg_corr = clump_corrected_fractions(t["kind"], weight, area, clump)
        # perfect clusters' intervals: each grain its own class, no impurity
        idx = np.array([KINDS.index(k) if k in KINDS else -1 for k in t["kind"]])
        perfect = corrected_estimates([(idx, np.where(idx >= 0, weight, 0.0), area, clump)], np.eye(len(KINDS)))
        sel = {"grain_class": list(KINDS)}
        pipe_raw = row["class_fraction"].sel(sel).values
        pipe_corr = row["class_fraction_corrected"].sel(sel).values
        lo, hi = row["class_fraction_corrected_lower"].sel(sel).values, row["class_fraction_corrected_upper"].sel(sel).values
        wlo, whi = row["class_fraction_lower"].sel(sel).values, row["class_fraction_upper"].sel(sel).values
        rows.append({
            "sample": t["key"].name, "n_plate": t["n_plate"], "n_found": int(len(t["kind"])),
            "n_repeats": int(row["n_repeats"]), "counting": str(row["counting"].values),
            "truth": truth, "edges_raw": edges_raw, "edges_corr": edges_corr, "seg_raw": seg_raw,
            "seg_corr": seg_corr, "pipe_raw": pipe_raw, "pipe_corr": pipe_corr,
            "inside": (lo <= truth) & (truth <= hi), "inside_wilson": (wlo <= truth) & (truth <= whi),
            "inside_perfect": (perfect["class_fraction_lower"][0] <= truth) & (truth <= perfect["class_fraction_upper"][0]),
        })
    return {"rows": rows}


def edges_only(archive: Archive) -> list[str]:
    """Step 1 alone (no pipeline): perfect segmentation, counted per frame, corrected, clumps in or out."""
    from acquisition.sim import plate_fractions, read_plate_truth, read_truth

    lines = ["| perfect segmentation: class fraction error, pp, max / mean | per frame, flagged out (before) "
             "| corrected, clump grains added (default) | corrected, clumps as one grain | corrected, clumps left out |",
             "|---|---|---|---|---|"]
    for key in archive.keys():
        path = archive.sample_path(key)
        grains, _ = read_plate_truth(path)
        table = {"truth": read_truth(path), "path": path}
        truth = np.array([plate_fractions(grains, KINDS)[k] for k in KINDS])
        raw, corrected = perfect_segmentation_counts(table)
        _, as_one = perfect_segmentation_counts(table, clump_grains=False)
        _, without = perfect_segmentation_counts(table, exclude_clumps=True)
        cells = [np.abs(100 * (f - truth)) for f in (raw, corrected, as_one, without)]
        lines.append(f"| {key.name} ({int(grains['in_scan'].sum())} grains) | "
                     + " | ".join(f"{e.max():.1f} / {e.mean():.1f}" for e in cells) + " |")
    return lines


def summarise(result: dict) -> list[str]:
    rows = result["rows"]
    pp = lambda a: 100 * np.asarray(a)  # noqa: E731
    lines = []
    err = lambda key: np.array([pp(r[key] - r["truth"]) for r in rows])  # noqa: E731
    for key, what in (("pipe_corr", "pipeline K=100, corrected (reported)"), ("pipe_raw", "pipeline K=100, raw (as before)"),
                      ("seg_corr", "perfect clusters, corrected"), ("seg_raw", "perfect clusters, raw"),
                      ("edges_corr", "perfect segmentation, corrected"), ("edges_raw", "perfect segmentation, raw")):
        e = np.abs(err(key))
        lines.append(f"| {what} | " + " | ".join(f"{m:.1f} / {a:.1f}" for m, a in zip(e.max(axis=1), e.mean(axis=1)))
                     + f" | {e.max():.1f} | {e.mean():.1f} |")
    head = ("| class fraction error, pp: max / mean over classes | "
            + " | ".join(r["sample"] for r in rows) + " | worst | mean |")
    lines = [head, "|---" * (len(rows) + 3) + "|"] + lines
    steps = [("frame edges and overlaps", "edges_raw", None, "edges_corr", None),
             ("segmentation and flags", "seg_raw", "edges_raw", "seg_corr", "edges_corr"),
             ("clustering and naming", "pipe_raw", "seg_raw", "pipe_corr", "seg_corr")]
    lines += ["", "| step (mean over samples, pp; raw -> corrected) | " + " | ".join(KINDS) + " |",
              "|---" * (len(KINDS) + 1) + "|"]
    for name, raw, raw_before, corr, corr_before in steps:
        d_raw = np.mean([pp(r[raw] - (r[raw_before] if raw_before else r["truth"])) for r in rows], axis=0)
        d_corr = np.mean([pp(r[corr] - (r[corr_before] if corr_before else r["truth"])) for r in rows], axis=0)
        lines.append(f"| {name} | " + " | ".join(f"{a:+.1f} -> {b:+.1f}" for a, b in zip(d_raw, d_corr)) + " |")
    lines += ["", "| signed error per sample, pp (" + ", ".join(KINDS) + ") | perfect segmentation, corrected "
              "| perfect clusters, corrected | pipeline, corrected |", "|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['sample']} | " + " | ".join(" ".join(f"{v:+.1f}" for v in pp(r[key] - r["truth"]))
                                                      for key in ("edges_corr", "seg_corr", "pipe_corr")) + " |")
    cells = len(rows) * len(KINDS)
    lines += ["",
              f"truth inside the reported 95 % interval (corrected, bootstrap): "
              f"{sum(int(r['inside'].sum()) for r in rows)} of {cells} (sample, class) cells (target >= 90 %)",
              f"truth inside the raw 95 % Wilson interval: {sum(int(r['inside_wilson'].sum()) for r in rows)} of {cells}",
              f"truth inside the perfect-cluster bootstrap interval: {sum(int(r['inside_perfect'].sum()) for r in rows)} of {cells}",
              "samples: " + "; ".join(f"{r['sample']} {r['n_plate']} grains on the scanned plate, {r['n_found']} found, "
                                      f"{r['n_repeats']} repeats, counted {r['counting']}" for r in rows)]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="16 positions per sample (a smoke test)")
    parser.add_argument("--samples", type=int, default=4, help="samples (default 4, at most 6 mixes then repeat)")
    parser.add_argument("--positions", type=int, default=100, help="positions per sample (default 100: 10 x 10 frames)")
    parser.add_argument("--overlap", type=float, default=0.3, help="shared fraction of neighbouring frames (default 0.3)")
    parser.add_argument("--density", type=float, default=2.0, help="grains per mm2 (default 2.0)")
    parser.add_argument("--epochs", type=int, default=None, help="encoder epochs (default: the cpu preset's)")
    parser.add_argument("--k", type=int, default=100, help="clusters (default 100, the paper's)")
    parser.add_argument("--preset", default="cpu", help="encoder preset (default cpu; cpu-paper: the paper's VAE)")
    parser.add_argument("--morphometrics", type=float, default=0.0,
                        help="share of the clustering features' variance given to the morphometrics (default 0)")
    parser.add_argument("--crop-size", type=int, default=64, help="grain image side in px (default 64, the cpu preset's input)")
    parser.add_argument("--workdir", help="where the temporary archive goes (default: the system temp folder)")
    parser.add_argument("--keep", action="store_true", help="keep the archive")
    parser.add_argument("--archive", help="use (and keep) this archive: simulated here when empty, else resumed "
                                          "(every stage skips finished work)")
    parser.add_argument("--json", help="also write the per-sample figures here")
    parser.add_argument("--edges-only", action="store_true",
                        help="only the first step (a perfect segmenter's objects counted): no pipeline, a minute or two")
    opts = parser.parse_args()
    positions = 16 if opts.quick else opts.positions
    workdir = Path(tempfile.mkdtemp(prefix="bench-accuracy-", dir=opts.workdir))
    load = os.getloadavg()
    start = time.perf_counter()
    try:
        if opts.archive and Archive.create(opts.archive).keys():
            archive = Archive.open(opts.archive)
        else:
            archive = simulate(Path(opts.archive) if opts.archive else workdir / "archive", opts.samples, positions,
                               opts.overlap, opts.density)
        simulate_s = time.perf_counter() - start
        if opts.edges_only:
            print("\n".join(edges_only(archive)))
            return
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            stages = run_stages(archive, opts.epochs, opts.k, opts.crop_size, opts.preset, opts.morphometrics)
            tables = grain_tables(archive)
            named = name_clusters(archive, tables)
            from sedarchive.counting.proportions import write_proportions

            write_proportions(archive)
        result = evaluate(archive, tables)
    finally:
        if not opts.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    total = time.perf_counter() - start
    print(f"\nbench/accuracy.py: {opts.samples} samples x {positions} positions of {FRAME['width']}x{FRAME['height']} px "
          f"at {FRAME['pixel_size_um']} um/px, overlap {opts.overlap:.0%}, K = {opts.k}; {named['named']} clusters named, "
          f"{named['excluded']} excluded as debris")
    print(f"time {total:.0f} s (simulate {simulate_s:.0f} s, " + ", ".join(f"{k} {v:.0f} s" for k, v in stages.items())
          + f"); {os.cpu_count()} CPUs, load average at start {load[0]:.1f}, at end {os.getloadavg()[0]:.1f}\n")
    for line in summarise(result):
        print(line)
    if opts.json:
        Path(opts.json).write_text(json.dumps(
            [{k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in r.items()} for r in result["rows"]], indent=1))


if __name__ == "__main__":
    main()
