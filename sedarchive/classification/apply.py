"""``classify``: every grain gets a class from the current classifier, and every sample corrected fractions.

One Dask task per sample reads the features in blocks and writes ``grain_class (particle) int16``
(code into the store attribute ``grain_classes``; -1: not classified) and ``class_probability
(particle) float32``; it returns the sample's predicted counts and summed probabilities. Grains are
counted as in ``proportions.zarr`` (:func:`sedarchive.counting.sample.count_sample`): each grain
once across overlapping frames (repeats and chopped grains weigh 0), whole grains weighted by the
inverse of their chance to be seen whole, clump-flagged grains kept; grains predicted in a class
that is not counted (debris, clump, ...) are left out of the fractions. The client records the
classifier id in the store and writes ``classified.zarr`` (dims ``sample`` and ``grain_class``)
for every sample the current classifier has classified: predicted counts, the raw classify-and-count
fractions, the mean of the probabilities, and the fractions corrected for the classifier's confusion
against the grains' true classes (:mod:`sedarchive.classification.truth`: out-of-fold predictions
and the clusters' checked impurity) with 95% intervals that include the sampling and the
classifier's error (:mod:`sedarchive.classification.adjust`).

Neither the encoder nor the K-means model is touched: a sample only needs latents.
"""
from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from catalog import (Archive, SampleKey, create_variables, read_array, read_attrs, status_rank, update_attrs,
                     write_region)
from catalog.files import write_dataset
from catalog.intake_catalog import register_results
from catalog.store import array_chunks, array_names, array_shape
from sedarchive.classification.adjust import count_replicates, renormalised, weighted_fraction_intervals
from sedarchive.classification.metrics import confusion_rates
from sedarchive.classification.features import morphometrics_of, read_features
from sedarchive.classification.model import (
    ClassificationError,
    ClassifierModel,
    current_classifier,
    load_model_dir,
    model_dir,
)
from sedarchive.classification.truth import called_weights, cluster_mix, draw_truth_rates, truth_rates
from sedarchive.counting.sample import count_sample
from sedarchive.dask.tasks import TaskReport, one_line, run_tasks

N_BOOT = 400


def classify_sample(path: str, model_folder: str, block_rows: int = 65536) -> dict[str, list[float]]:
    """Dask task: classify every grain of one store; returns counted grains and weighted totals per class."""
    model = load_model_dir(model_folder)
    morph = morphometrics_of(model.features)
    n = int(array_shape(path, "latent")[0])
    k = len(model.classes)
    counts = np.zeros(k, np.int64)
    totals = np.zeros(k)
    sums = np.zeros(k)
    if n == 0:
        return {"counts": counts.tolist(), "weighted_counts": totals.tolist(), "probability_sums": sums.tolist(),
                "weight": np.zeros(0)}
    weight = np.asarray(count_sample(path, write=False, warn=False).weight, float)
    chunk = array_chunks(path, "grain_class")[0]
    step = max(chunk, (block_rows // chunk) * chunk)
    for start in range(0, n, step):
        stop = min(start + step, n)
        x = read_features(path, morph, slice(start, stop))
        finite = np.isfinite(x).all(axis=1)
        code = np.full(stop - start, -1, np.int16)
        best = np.full(stop - start, np.nan, np.float32)
        if finite.any():
            proba = model.predict_proba(x[finite])
            code[finite] = proba.argmax(axis=1)
            best[finite] = proba.max(axis=1)
            w = weight[start:stop][finite]
            counts += np.bincount(proba.argmax(axis=1)[w > 0], minlength=k)
            totals += np.bincount(proba.argmax(axis=1), weights=w, minlength=k)
            sums += (proba * w[:, None]).sum(axis=0)
        write_region(path, "grain_class", start, code)
        write_region(path, "class_probability", start, best)
    return {"counts": counts.tolist(), "weighted_counts": totals.tolist(), "probability_sums": sums.tolist(),
            "weight": weight}


def run_stage(archive: Archive, keys: Sequence[SampleKey], client: Any, *, quiet: bool = False,
              n_boot: int = N_BOOT) -> TaskReport:
    """Classify ``keys`` with the current classifier (``client=None``: here), then write ``classified.zarr``."""
    model = current_classifier(archive)
    if model is None:
        raise ClassificationError(f"{archive.root}: no classifier yet; run `sedarchive classify-train` first")
    keys = list(keys)
    for key in keys:  # refuse before any work: every sample must hold latents of the model's encoder
        path = archive.sample_path(key)
        attrs = read_attrs(path)
        if status_rank(attrs.get("status", "acquiring")) < status_rank("encoded") or "latent" not in array_names(path):
            raise ClassificationError(f"sample {key.name} is not encoded yet; run `sedarchive encode` first")
        model.check_encoder(attrs.get("encoder_id"), f"sample {key.name}")
        missing = [m for m in morphometrics_of(model.features) if m not in array_names(path)]
        if missing:
            raise ClassificationError(f"sample {key.name} has no {missing[0]}, which classifier {model.id} uses")
    todo = {}
    for key in keys:
        path = archive.sample_path(key)
        n = int(array_shape(path, "latent")[0])
        chunk = array_chunks(path, "latent")[0] if n else 1
        create_variables(path, {"grain_class": (("particle",), (n,), np.int16, (chunk,)),
                                "class_probability": (("particle",), (n,), np.float32, (chunk,))},
                         fill_values={"grain_class": -1, "class_probability": np.nan})
        update_attrs(path, classifier_id="", grain_classes=list(model.classes))
        todo[key] = (str(path), str(model_dir(archive, model.id)))
    report = TaskReport()
    if client is None:
        for key, args in todo.items():
            try:
                report.results[key] = classify_sample(*args)
            except Exception as err:  # noqa: BLE001 - one bad sample does not stop the others
                report.failures[key] = one_line(err)
    else:
        done = run_tasks(client, classify_sample, todo, label="classify", quiet=quiet)
        report.results.update(done.results)
        report.failures.update(done.failures)
    for key, result in report.results.items():
        update_attrs(archive.sample_path(key), classifier_id=model.id, grain_classes=list(model.classes),
                     classified_counts=result["counts"], weighted_counts=result["weighted_counts"],
                     probability_sums=result["probability_sums"])
    weights = {key: result.pop("weight") for key, result in report.results.items() if "weight" in result}
    write_results(archive, model, n_boot=n_boot, weights=weights)
    return report


def write_results(archive: Archive, model: ClassifierModel, *, n_boot: int = N_BOOT,
                  weights: dict[SampleKey, np.ndarray] | None = None) -> Path | None:
    """(Re)write ``classified.zarr`` for every sample classified by ``model``; None when there is none.

    ``weights``: count weights the classify tasks already computed, by sample; the others are counted here.
    """
    weights = weights or {}
    rows = []
    for row in archive.samples(status="encoded"):
        attrs = read_attrs(row.path)
        if attrs.get("classifier_id") == model.id and "weighted_counts" in attrs:
            rows.append((row.key, row.path, attrs))
    if not rows:
        return None
    grains = [(np.asarray(read_array(path, "grain_class"), np.int64),
               np.asarray(weights[key] if key in weights else count_sample(path, write=False, warn=False).weight,
                          float)) for key, path, _ in rows]
    ds = results_dataset(model, [k for k, _, _ in rows], np.array([a["classified_counts"] for *_, a in rows], np.int64),
                         np.array([a["probability_sums"] for *_, a in rows], float), grains, n_boot=n_boot)
    path = write_dataset(ds, archive.classified_path)
    register_results(archive.root)  # an intake entry `classified` (consolidated metadata)
    return path


def confusion_of(model: ClassifierModel, n_boot: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, str]:
    """``P(predicted | true)``, its bootstrap replicates and what it was measured against."""
    k = len(model.classes)
    rng = np.random.default_rng(seed)
    t = model.truth
    if t is not None and len(t["oof_weight"]):
        naming, checked = np.asarray(t["naming"]), np.asarray(t["checked"])
        called = called_weights(t["oof_cluster"], t["oof_predicted"], t["oof_weight"], len(naming), k)
        rates = truth_rates(cluster_mix(naming, checked, k), called)
        reps = draw_truth_rates(t["oof_cluster"], t["oof_predicted"], t["oof_weight"], naming, checked, k, n_boot, rng)
        against = (f"the truth: out-of-fold predictions of the grains of each named cluster and the clusters' checked "
                   f"impurity ({int((checked.sum(axis=1) > 0).sum())} clusters checked)")
        return rates, reps, against
    counts = np.asarray(model.info["held_out"]["confusion"], np.int64)
    return confusion_rates(counts), count_replicates(counts, n_boot, rng), "the names of the held-out grains"


def results_dataset(model: ClassifierModel, keys: Sequence[SampleKey], counts: np.ndarray, sums: np.ndarray,
                    grains: Sequence[tuple[np.ndarray, np.ndarray]], *, n_boot: int = N_BOOT) -> xr.Dataset:
    """The ``classified.zarr`` Dataset (in memory); ``grains``: each sample's predicted codes and count weights."""
    counted = np.asarray(model.counted, bool)
    k = len(model.classes)
    rates, reps, against = confusion_of(model, n_boot)
    est, lo, hi = (np.full((len(keys), k), np.nan) for _ in range(3))
    totals = np.zeros((len(keys), k))
    for i, (code, weight) in enumerate(grains):
        est[i], lo[i], hi[i] = weighted_fraction_intervals(rates, reps, code, weight, counted, seed=i)
        keep = (code >= 0) & (weight > 0)
        totals[i] = np.bincount(code[keep], weight[keep], k)
    dims = ("sample", "grain_class")
    ds = xr.Dataset(
        {
            "predicted_count": (dims, counts),
            "predicted_count_corrected": (dims, totals),
            "n_classified": ("sample", counts.sum(axis=1)),
            "raw_fraction": (dims, renormalised(totals, counted)),
            "probability_fraction": (dims, renormalised(sums, counted)),
            "classified_fraction": (dims, est),
            "classified_fraction_lower": (dims, lo),
            "classified_fraction_upper": (dims, hi),
            "counted": ("grain_class", counted),
        },
        coords={
            "sample": np.array([key.name for key in keys], dtype=object),
            "core": ("sample", np.array([key.core for key in keys], dtype=object)),
            "depth_top_cm": ("sample", np.array([key.top_cm for key in keys], float)),
            "depth_bottom_cm": ("sample", np.array([key.bottom_cm for key in keys], float)),
            "depth_mid_cm": ("sample", np.array([(key.top_cm + key.bottom_cm) / 2 for key in keys], float)),
            "grain_class": np.array(model.classes, dtype=object),
        },
        attrs={
            "classifier_id": model.id,
            "encoder_id": model.encoder_id or "",
            "kmeans_id": model.info.get("kmeans_id") or "",
            "written_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "method": "adjusted classify-and-count on edge-corrected counts (repeats 0, whole grains 1 / P(seen "
                      "whole)): C^T p = q by non-negative least squares, sum p = 1, renormalised over counted classes",
            "confusion_against": against,
            "interval": f"95% percentile bootstrap ({n_boot} replicates) redrawing the sample's grains (Poisson, "
                        f"with their count weights) and the confusion (see confusion_against)",
            "confusion": json.dumps(np.round(rates, 6).tolist()),
        },
    )
    ds["classified_fraction"].attrs["description"] = "fractions among counted classes, corrected for the confusion"
    ds["raw_fraction"].attrs["description"] = ("edge-corrected fractions of predicted classes among counted classes, "
                                               "not corrected for the confusion")
    describe = {"predicted_count": "grains counted (each grain once, chopped left out) per predicted class",
                "predicted_count_corrected": "edge-corrected (weighted) grains per predicted class",
                "probability_fraction": "weighted mean class probability, renormalised over counted classes"}
    for name, text in describe.items():
        ds[name].attrs["description"] = text
    return ds
