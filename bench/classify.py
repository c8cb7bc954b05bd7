"""Classifier benchmark on simulated samples: corrected class fractions vs truth, interval coverage, expert loop.

    python bench/classify.py                 # 8 samples x 16 positions: 4 to train on, 4 never seen (~30 min)
    python bench/classify.py --quick         # 4 samples x 10 positions (a smoke test, ~7 min)
    python bench/classify.py --archive DIR   # simulate into DIR and keep it; an existing DIR is reused

Simulates samples with known kind fractions (``acquisition.sim``), runs the project's segment, train
(cpu preset), encode and cluster stages (the clustering is fitted on the training samples only),
names every cluster by the majority true kind of its matched grains (``bench/groundtruth.py``;
clusters of unmatched grains are excluded as debris), trains the classifier (``classify-train`` on
the training samples), classifies the unseen samples (``classify``) and compares, per unseen sample
and kind, the corrected fraction and its 95 % interval with (1) the plate truth (the truth table's
unflagged objects) and (2) the true kinds of the same found grains. Then the expert loop: the 50
grains of the training samples the classifier is least sure of are corrected to their true kind
(``corrections.yaml``), the classifier is retrained (new id), and its accuracy on the matched grains
of the unseen samples is compared before and after.
"""
from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))  # groundtruth.py

from catalog import Archive, SampleKey, read_array  # noqa: E402

FRACTIONS = (  # quartz, dark, foram_intact, foram_broken
    (0.4, 0.2, 0.3, 0.1), (0.2, 0.1, 0.4, 0.3), (0.3, 0.3, 0.2, 0.2), (0.1, 0.2, 0.3, 0.4),
    (0.5, 0.1, 0.2, 0.2), (0.25, 0.25, 0.25, 0.25), (0.15, 0.35, 0.1, 0.4), (0.35, 0.15, 0.35, 0.15),
)


def simulate(root: Path, n_samples: int, n_positions: int, epochs: int) -> Archive:
    from dataclasses import replace

    from acquisition.sim import GRAIN_KINDS, simulate_sample
    from sedarchive.dask import dask_client
    from sedarchive.features.settings import preset
    from sedarchive.pipeline import STAGES, PipelineSettings, run_pipeline

    archive = Archive.create(root)
    for i in range(n_samples):
        simulate_sample(archive, SampleKey(f"SIM-{1 + i % 2}", 10.0 * i, 10.0 * i + 2), n_positions=n_positions,
                        seed=500 + i, kind_fractions=dict(zip(GRAIN_KINDS, FRACTIONS[i % len(FRACTIONS)])))
    settings = PipelineSettings(train=replace(preset("cpu"), epochs=epochs))
    upto = [s for s in STAGES if s.name in ("segment", "train", "encode")]
    with dask_client(n_workers=2, quiet=True) as client:
        report = run_pipeline(archive, archive.keys(), client, settings, stages=upto, quiet=True)
    if not report.ok:
        raise SystemExit(f"upstream stages failed:\n{report.summary()}")
    return archive


def truths(archive: Archive, key: SampleKey) -> dict:
    from groundtruth import true_kinds

    from acquisition.sim import read_truth

    path = archive.sample_path(key)
    truth = read_truth(path)
    plain = truth[~truth["chopped"].astype(bool) & ~truth["clump"].astype(bool)]
    flagged = read_array(path, "chopped").astype(bool) | read_array(path, "clump").astype(bool)
    return {"kind": true_kinds(read_array(path, "position"), read_array(path, "bbox"), truth),
            "flagged": flagged, "plate": plain["kind"].value_counts(normalize=True).to_dict()}


def name_clusters(archive: Archive, keys: list[SampleKey], table: dict) -> int:
    from sedarchive.counting.labels import exclude_cluster, name_cluster

    cluster = np.concatenate([read_array(archive.sample_path(k), "cluster")[~table[k]["flagged"]] for k in keys])
    kind = np.concatenate([table[k]["kind"][~table[k]["flagged"]] for k in keys])
    named = 0
    for c in np.unique(cluster[cluster >= 0]):
        values, counts = np.unique(kind[cluster == c], return_counts=True)
        top = values[counts.argmax()]
        if top == "":
            exclude_cluster(archive, int(c), "debris")
        else:
            name_cluster(archive, int(c), str(top))
            named += 1
    return named


def accuracy(archive: Archive, keys: list[SampleKey], table: dict) -> float:
    from catalog import read_attrs

    hits = total = 0
    for k in keys:
        path = archive.sample_path(k)
        classes = np.array(read_attrs(path)["grain_classes"] + [""], dtype=object)
        predicted = classes[read_array(path, "grain_class")]
        keep = ~table[k]["flagged"] & (table[k]["kind"] != "")
        hits += int((predicted[keep] == table[k]["kind"][keep]).sum())
        total += int(keep.sum())
    return hits / max(1, total)


def fractions_vs_truth(archive: Archive, test: list[SampleKey], table: dict, kinds: tuple[str, ...]) -> dict:
    import xarray as xr

    ds = xr.open_zarr(str(archive.classified_path), consolidated=False).load()
    out = {"plate": [], "same": [], "raw_same": [], "cover_plate": [], "cover_same": [], "width": []}
    for k in test:
        row = ds.sel(sample=k.name)
        keep = ~table[k]["flagged"] & (table[k]["kind"] != "")
        for kind in kinds:
            est = float(row["classified_fraction"].sel(grain_class=kind)) if kind in ds.grain_class else 0.0
            lo = float(row["classified_fraction_lower"].sel(grain_class=kind)) if kind in ds.grain_class else 0.0
            hi = float(row["classified_fraction_upper"].sel(grain_class=kind)) if kind in ds.grain_class else 0.0
            raw = float(row["raw_fraction"].sel(grain_class=kind)) if kind in ds.grain_class else 0.0
            plate = table[k]["plate"].get(kind, 0.0)
            same = float(np.mean(table[k]["kind"][keep] == kind))
            out["plate"].append(abs(est - plate))
            out["same"].append(abs(est - same))
            out["raw_same"].append(abs(raw - same))
            out["cover_plate"].append(lo <= plate <= hi)
            out["cover_same"].append(lo <= same <= hi)
            out["width"].append(hi - lo)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller data (a smoke test of the benchmark)")
    parser.add_argument("--workdir", help="where the temporary archive goes (default: the system temp folder)")
    parser.add_argument("--archive", help="simulate into this folder and keep it; an existing one is reused")
    opts = parser.parse_args()
    from acquisition.sim import GRAIN_KINDS
    from sedarchive.classification.apply import run_stage as classify
    from sedarchive.classification.corrections import add_correction, least_sure
    from sedarchive.classification.training import train
    from sedarchive.clustering import ClusterSettings, run_stage as cluster

    n_samples, n_positions, epochs = (4, 10, 3) if opts.quick else (8, 16, 4)
    workdir = Path(tempfile.mkdtemp(prefix="bench-classify-", dir=opts.workdir))
    rows = []
    try:
        start = time.perf_counter()
        if opts.archive and Path(opts.archive, "samples").is_dir():
            archive = Archive.open(opts.archive)
            n_samples = len(archive.keys())
            for done in (archive.corrections_path, archive.labels_path):  # start the naming and the loop afresh
                done.unlink(missing_ok=True)
        else:
            archive = simulate(Path(opts.archive) if opts.archive else workdir / "archive", n_samples, n_positions,
                               epochs)
        keys = archive.keys()
        train_keys, test = keys[: n_samples // 2], keys[n_samples // 2:]
        table = {k: truths(archive, k) for k in keys}
        n_grains = sum(len(t["kind"]) for t in table.values())
        rows.append(("simulated archive", f"{n_samples} samples x {n_positions} positions, {n_grains} grains found; "
                                          f"segment+train({epochs} epochs)+encode {time.perf_counter() - start:.0f} s"))
        n_train_grains = sum(int((~table[k]["flagged"]).sum()) for k in train_keys)
        k = min(40, max(4, n_train_grains // 12))
        cluster(archive, train_keys, None, ClusterSettings(k=k, umap_points=0, refit=True), quiet=True)
        named = name_clusters(archive, train_keys, table)
        start = time.perf_counter()
        model = train(archive, train_keys, quiet=True)
        train_s = time.perf_counter() - start
        start = time.perf_counter()
        classify(archive, keys, None, quiet=True)
        classify_s = time.perf_counter() - start
        rep = model.info["held_out"]
        rows.append(("clusters / classifier", f"K = {k} on the {len(train_keys)} training samples, {named} named by "
                                              f"majority true kind; classifier {model.id}: {model.info['n_train']} "
                                              f"training grains, held-out accuracy {rep['accuracy']:.3f}, ECE "
                                              f"{rep['reliability']['ece']:.3f}; train {train_s:.1f} s, classify "
                                              f"{len(keys)} samples {classify_s:.1f} s"))
        f = fractions_vs_truth(archive, test, table, GRAIN_KINDS)
        n_pairs = len(f["plate"])
        rows.append(("unseen samples: corrected fraction - plate truth",
                     f"max {100 * max(f['plate']):.1f}, mean {100 * np.mean(f['plate']):.1f} pp over {n_pairs} "
                     f"(sample, kind) pairs (target <= 3 pp)"))
        rows.append(("unseen samples: corrected - true kinds of the same grains",
                     f"max {100 * max(f['same']):.1f}, mean {100 * np.mean(f['same']):.1f} pp (uncorrected: max "
                     f"{100 * max(f['raw_same']):.1f}, mean {100 * np.mean(f['raw_same']):.1f} pp)"))
        n_test = [int((~table[t]["flagged"]).sum()) for t in test]
        rows.append(("unseen samples: unflagged grains", f"{min(n_test)} to {max(n_test)} per sample (binomial 95% "
                                                          f"half-width at p = 0.25: "
                                                          f"{196 * np.sqrt(0.25 * 0.75 / np.mean(n_test)):.1f} pp)"))
        rows.append(("95% interval coverage",
                     f"plate truth {100 * np.mean(f['cover_plate']):.0f} %, same grains "
                     f"{100 * np.mean(f['cover_same']):.0f} % (target >= 90 %); mean width "
                     f"{100 * np.mean(f['width']):.1f} pp"))
        before = accuracy(archive, test, table)
        asked = [g for g in least_sure(archive, 400) if g["sample"] in {t.name for t in train_keys}][:50]
        fixed = 0
        for g in asked:
            key = next(t for t in train_keys if t.name == g["sample"])
            kind = table[key]["kind"][g["particle"]]
            add_correction(archive, g["sample"], g["particle"], str(kind) if kind else "debris", by="bench")
            fixed += int(kind != g["class"] and not (kind == "" and g["class"] == "debris"))
        retrained = train(archive, train_keys, quiet=True)
        classify(archive, test, None, quiet=True)
        after = accuracy(archive, test, table)
        rows.append(("expert loop: 50 least-sure training grains corrected",
                     f"{fixed} of them were wrong; model {model.id} -> {retrained.id}; accuracy on the matched "
                     f"grains of the unseen samples {before:.3f} -> {after:.3f}"))
        g = fractions_vs_truth(archive, test, table, GRAIN_KINDS)
        rows.append(("  after retraining: corrected - plate truth",
                     f"max {100 * max(g['plate']):.1f}, mean {100 * np.mean(g['plate']):.1f} pp; same grains max "
                     f"{100 * max(g['same']):.1f}, mean {100 * np.mean(g['same']):.1f} pp; coverage plate "
                     f"{100 * np.mean(g['cover_plate']):.0f} %, same grains {100 * np.mean(g['cover_same']):.0f} %"))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    width = max(len(r[0]) for r in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value}")


if __name__ == "__main__":
    main()
