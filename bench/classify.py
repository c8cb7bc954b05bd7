"""Classifier benchmark on the accuracy benchmark's plates: corrected class fractions of unseen samples vs plate truth.

    python bench/classify.py --archive /tmp/c18/archive   # built once (~25 min), reused after (~2 min)
    python bench/classify.py --archive DIR --loop         # also the expert loop (50 least-sure grains)
    python bench/classify.py --quick                      # 4 samples x 25 positions (a smoke test)

The samples, their plate truth (``<name>.grains.csv``: the class mix of the grains whose centre
lies in the scanned area) and the simulated expert are ``bench/accuracy.py``'s own, imported
(``bench/plates.py``): 6 samples with different class mixes, 10 x 10 frames with 30 % overlap,
> 500 grains each on the plate. Samples 1, 3, 5 train, 2, 4, 6 are never seen: the encoder is trained
on the training samples only, K-means (K = 100) is fitted on them only, and the expert names each
cluster by the majority true class of its grains and records a check of up to 20 of them
(``accuracy.name_clusters``: ``checked`` in labels.yaml). ``classify-train`` learns from those
names; ``classify`` classifies the unseen samples, and ``classified.zarr``'s corrected fractions
are compared with the plate truth, per sample and class, with the error split into its sources:

- *counting*: each found grain named by its own true class, counted as ``classify`` and
  ``proportions.zarr`` count (edge-corrected weights, repeats and chopped grains out): what a
  perfect classifier would give;
- *raw*: classify and count, not corrected; *names*: corrected with the confusion against the
  cluster names (the method before, label noise not corrected); *oracle*: corrected with the
  classifier's actual confusion on the sample's own grains (the best a correction can do);
- *reported*: corrected against the truth (out-of-fold predictions and the clusters' checked impurity).
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))  # plates.py, accuracy.py, groundtruth.py

import plates  # noqa: E402
from plates import KINDS  # noqa: E402

from catalog import Archive, read_array, read_attrs  # noqa: E402


def fractions_of(kind_index: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """Weighted shares of the four kinds (-1: not a kind, not counted)."""
    keep = (kind_index >= 0) & (weight > 0)
    totals = np.bincount(kind_index[keep], weight[keep], len(KINDS))
    return totals / max(totals.sum(), 1e-12)


def in_kinds(values: np.ndarray, names: list[str]) -> np.ndarray:
    """Fractions over the model's classes -> the four kinds (a class the model lacks: 0)."""
    return np.array([values[names.index(k)] if k in names else 0.0 for k in KINDS])


def evaluate(archive: Archive, tables: list[dict], model) -> list[dict]:
    """Per unseen sample: plate truth, every estimate of the error split, the reported interval."""
    import xarray as xr

    from sedarchive.classification.adjust import adjusted_fractions, renormalised
    from sedarchive.classification.metrics import confusion_rates

    ds = xr.open_zarr(str(archive.classified_path), consolidated=False).load()
    names = list(model.classes)
    counted = np.asarray(model.counted, bool)
    names_rates = confusion_rates(np.asarray(model.info["held_out"]["confusion"], np.int64))
    rows = []
    for t in tables:
        row = ds.sel(sample=t["key"].name)
        code = np.asarray(read_array(t["path"], "grain_class"), np.int64)
        weight = t["weight"]
        keep = (code >= 0) & (weight > 0)
        q = np.bincount(code[keep], weight[keep], len(names))
        true = np.array([names.index(k) if k in names else -1 for k in t["kind"]])
        kind_idx = np.array([KINDS.index(k) if k in KINDS else -1 for k in t["kind"]])
        # the classifier's actual confusion on this sample's matched grains (true kind known), weighted
        have = keep & (true >= 0)
        own = np.zeros((len(names), len(names)))
        np.add.at(own, (true[have], code[have]), weight[have])
        oracle = renormalised(adjusted_fractions(confusion_rates(own), q), counted)
        sel = {"grain_class": names}
        rows.append({
            "sample": t["key"].name, "n_plate": t["n_plate"], "n_counted": int((weight > 0).sum()),
            "truth": plates.plate_truth_fractions(t),
            "counting": fractions_of(kind_idx, weight),
            "raw": in_kinds(row["raw_fraction"].sel(sel).values, names),
            "names": in_kinds(renormalised(adjusted_fractions(names_rates, q), counted), names),
            "oracle": in_kinds(oracle, names),
            "reported": in_kinds(row["classified_fraction"].sel(sel).values, names),
            "lower": in_kinds(row["classified_fraction_lower"].sel(sel).values, names),
            "upper": in_kinds(row["classified_fraction_upper"].sel(sel).values, names),
            "accuracy": float(np.average(code[have] == true[have], weights=weight[have])) if have.any() else np.nan,
        })
    return rows


def summarise(rows: list[dict]) -> list[str]:
    pp = lambda a: 100 * np.asarray(a)  # noqa: E731
    head = ("| class fraction error vs plate truth, pp: max / mean over classes | "
            + " | ".join(r["sample"] for r in rows) + " | worst | mean |")
    lines = [head, "|---" * (len(rows) + 3) + "|"]
    for key, what in (("reported", "**corrected against the truth (classified.zarr)**"),
                      ("names", "corrected against the cluster names (before)"), ("raw", "classify and count, raw"),
                      ("oracle", "corrected with the sample's own true confusion (best possible)"),
                      ("counting", "perfect classifier (counting alone)")):
        e = np.abs(np.array([pp(r[key] - r["truth"]) for r in rows]))
        lines.append(f"| {what} | " + " | ".join(f"{m:.1f} / {a:.1f}" for m, a in zip(e.max(axis=1), e.mean(axis=1)))
                     + f" | {e.max():.1f} | {e.mean():.1f} |")
    inside = sum(int(((r["lower"] <= r["truth"]) & (r["truth"] <= r["upper"])).sum()) for r in rows)
    cells = len(rows) * len(KINDS)
    width = np.mean([pp(r["upper"] - r["lower"]) for r in rows])
    lines += ["", f"truth inside the reported 95 % interval: {inside} of {cells} (sample, class) pairs "
                  f"({100 * inside / cells:.0f} %, target >= 90 %); mean interval width {width:.1f} pp",
              "accuracy on the unseen samples' matched grains (weighted): "
              + ", ".join(f"{r['sample']} {r['accuracy']:.3f}" for r in rows),
              "unseen samples: " + "; ".join(f"{r['sample']} {r['n_plate']} grains on the plate, {r['n_counted']} "
                                             f"counted" for r in rows)]
    return lines


def expert_loop(archive: Archive, train_keys: list, train_tables: list[dict], test_tables: list[dict]) -> tuple:
    """Correct the 50 least-sure training grains to their true kind, retrain, compare accuracy on the unseen samples."""
    from sedarchive.classification.apply import run_stage as classify
    from sedarchive.classification.corrections import add_correction, least_sure
    from sedarchive.classification.training import train

    def acc() -> float:
        hits = total = 0.0
        for t in test_tables:
            classes = np.array(read_attrs(t["path"])["grain_classes"] + [""], dtype=object)
            predicted = classes[read_array(t["path"], "grain_class")]
            keep = (t["weight"] > 0) & (t["kind"] != "")
            hits += float(t["weight"][keep][predicted[keep] == t["kind"][keep]].sum())
            total += float(t["weight"][keep].sum())
        return hits / max(total, 1e-12)

    before = acc()
    names = {t["key"].name: t for t in train_tables}
    asked = [g for g in least_sure(archive, 400) if g["sample"] in names][:50]
    wrong = 0
    for g in asked:
        kind = names[g["sample"]]["kind"][g["particle"]]
        add_correction(archive, g["sample"], g["particle"], str(kind) if kind else "debris", by="bench")
        wrong += int((kind or "debris") != g["class"])
    model = train(archive, train_keys, quiet=True)
    classify(archive, [t["key"] for t in test_tables], None, quiet=True)
    return [f"expert loop: 50 least-sure training grains corrected ({wrong} were wrong), retrained as {model.id}: "
            f"weighted accuracy on the unseen samples' matched grains {before:.3f} -> {acc():.3f}"], model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--archive", help="build the plates here once and reuse them (kept)")
    parser.add_argument("--quick", action="store_true", help="4 samples x 25 positions (a smoke test)")
    parser.add_argument("--k", type=int, default=100, help="clusters fitted on the training samples (default 100)")
    parser.add_argument("--c", type=float, default=None, help="inverse regularisation of the classifier")
    parser.add_argument("--loop", action="store_true", help="also the expert loop, then the figures again")
    parser.add_argument("--swap", action="store_true",
                        help="the other half of the samples trains (use another --archive: the encoder differs)")
    opts = parser.parse_args()
    plates.SWAP = opts.swap
    from sedarchive.classification.apply import run_stage as classify
    from sedarchive.classification.training import TrainSettings, train

    load = os.getloadavg()
    workdir = Path(tempfile.mkdtemp(prefix="bench-classify-"))
    root = Path(opts.archive) if opts.archive else workdir / "archive"
    n_samples, n_positions = (4, 25) if opts.quick else (6, 100)
    try:
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            built = plates.build(root, n_samples, n_positions)
            archive = Archive.open(root)
            for done in (archive.corrections_path, archive.labels_path):  # the naming and the loop afresh
                done.unlink(missing_ok=True)
            train_keys, test_keys = plates.split(archive.keys())
            plates.cluster_training(archive, opts.k)
            train_tables = [plates.sample_table(archive, k) for k in train_keys]
            named = plates.name_clusters(archive, train_tables)
            upstream = time.perf_counter() - start
            start = time.perf_counter()
            settings = TrainSettings() if opts.c is None else TrainSettings(c=opts.c)
            model = train(archive, train_keys, settings, quiet=True)
            train_s = time.perf_counter() - start
            start = time.perf_counter()
            classify(archive, train_keys + test_keys, None, quiet=True)  # the training ones for the loop's questions
            classify_s = time.perf_counter() - start
            test_tables = [plates.sample_table(archive, k) for k in test_keys]
            rows = evaluate(archive, test_tables, model)
            lines = summarise(rows)
            if opts.loop:
                loop, retrained = expert_loop(archive, train_keys, train_tables, test_tables)
                lines += ["", *loop, "after the loop:", *summarise(evaluate(archive, test_tables, retrained))]
    finally:
        if not opts.archive:
            shutil.rmtree(workdir, ignore_errors=True)
    held = model.info["held_out"]
    print(f"\nbench/classify.py: {len(train_keys)} training samples ({', '.join(k.name for k in train_keys)}), "
          f"{len(test_keys)} unseen; K = {opts.k}, {named['named']} clusters named, {named['excluded']} excluded, "
          f"{model.info.get('n_checked_clusters', 0)} checked")
    print(f"classifier {model.id}: {model.info['n_train']} training grains, out-of-fold accuracy against the names "
          f"{held['accuracy']:.3f}, ECE {held['reliability']['ece']:.3f}")
    print(f"time: upstream {upstream:.0f} s (" + ", ".join(f"{k} {v:.0f} s" for k, v in built.items())
          + f"), classify-train {train_s:.1f} s, classify {len(archive.keys())} samples {classify_s:.1f} s; "
          f"{os.cpu_count()} CPUs, load average at start {load[0]:.1f}, at end {os.getloadavg()[0]:.1f}\n")
    for line in lines:
        print(line)


if __name__ == "__main__":
    main()
