"""``classify-train``: a grain classifier from the expert's names of clusters (and corrections of grains).

The training set is every unflagged grain of a named cluster (class: the cluster's class, after
merges) or of an excluded cluster (class: the reason, e.g. ``chopped`` or ``debris``; such classes
are predicted but not counted in fractions), in the selected samples labelled by the current K-means
model; then every grain the expert corrected one by one (``corrections.yaml``) is added or relabelled.
A seeded, stratified part is held out: the model is fitted on the rest, and the held-out grains
measure it (confusion, per-class precision and recall, reliability curve), saved with it.
"""
from __future__ import annotations

import hashlib
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from catalog import Archive, SampleKey, read_array, read_attrs
from catalog.store import array_names, array_shape, read_flags
from sedarchive.classification.corrections import load_corrections
from sedarchive.classification.features import common_morphometrics, feature_names, read_features
from sedarchive.classification.metrics import held_out_report, stratified_split
from sedarchive.classification.model import ClassificationError, ClassifierModel, save_model
from sedarchive.clustering.model import current_model
from sedarchive.counting.decisions import EXCLUDE_REASONS, OLD_EXCLUDE_REASONS
from sedarchive.counting.labels import load_labels, resolve_cluster, stale_note


@dataclass
class TrainSettings:
    """Settings of ``classify-train`` (logistic regression on standardised latents + morphometrics)."""

    held_out: float = 0.25  # share of every class held out to measure the model
    seed: int = 0
    c: float = 1.0  # inverse regularisation strength of the logistic regression
    max_iter: int = 2000
    morphometrics: bool = True  # add the store's morphometrics to the latent
    max_per_class: int = 50_000  # at most this many grains of one class (random, seeded); 0: all

    def check(self) -> None:
        if not 0 < self.held_out < 1 or self.c <= 0 or self.max_iter < 1 or self.max_per_class < 0:
            raise ClassificationError(f"classify-train settings: need 0 < held_out < 1, c > 0, max_iter >= 1 "
                                      f"(got held_out={self.held_out}, c={self.c}, max_iter={self.max_iter})")


def is_counted(class_name: str) -> bool:
    """Classes that count in fractions: all but exclusion reasons (chopped, clump, debris, other, excluded)."""
    return class_name not in (*EXCLUDE_REASONS, *OLD_EXCLUDE_REASONS, "excluded")


@dataclass
class TrainingSet:
    x: np.ndarray  # (grain, feature)
    y: np.ndarray  # class names, object
    source: list[tuple[str, int]]  # (sample, particle) of each row
    features: list[str]
    encoder_id: str | None
    n_corrections: int


def training_set(archive: Archive, keys: Sequence[SampleKey], *, morphometrics: bool = True) -> TrainingSet:
    """Grains of named and excluded clusters in ``keys``, plus the corrected grains of the whole archive."""
    model = current_model(archive)
    labels = load_labels(archive)
    corrections = load_corrections(archive)
    clustered = []
    if model is not None and labels.belongs_to(model):
        clustered = [k for k in keys if read_attrs(archive.sample_path(k)).get("kmeans_id") == model.id
                     and "cluster" in array_names(archive.sample_path(k))]
    by_name = {k.name: k for k in archive.keys()}
    corrected_keys = [by_name[s] for s in sorted({s for s, _ in corrections}) if s in by_name]
    used = sorted(set(clustered) | set(corrected_keys))
    if not used:
        if model is not None and labels.clusters and not labels.belongs_to(model):
            raise ClassificationError(f"{archive.root}: {stale_note(labels, model)}; no corrected grains either")
        raise ClassificationError(f"{archive.root}: no named clusters in the selected samples and no corrected grains; "
                                  f"name clusters on the review page (`sedarchive review`) first")
    encoders = {read_attrs(archive.sample_path(k)).get("encoder_id") for k in used}
    if len(encoders) > 1:
        raise ClassificationError(f"training samples were encoded by different encoders ({', '.join(map(str, encoders))}); "
                                  f"re-encode them with one")
    encoder_id = encoders.pop()
    paths = [archive.sample_path(k) for k in used]
    morph = common_morphometrics(paths) if morphometrics else []
    class_of = {}
    if clustered:
        for cid in labels.clusters:
            where = resolve_cluster(labels, cid)
            if where["class"]:
                class_of[cid] = where["class"]
            elif where["excluded"]:
                class_of[cid] = where["reason"] or "excluded"
    xs, ys, source = [], [], []
    for key, path in zip(used, paths):
        n = int(array_shape(path, "latent")[0])
        y = np.full(n, "", dtype=object)
        if key in clustered and n:
            cluster = np.asarray(read_array(path, "cluster"), np.int64)
            chopped, clump = read_flags(path, n)
            for cid, name in class_of.items():
                y[(cluster == cid) & ~(chopped | clump)] = name
        for (sample, particle), entry in corrections.items():
            if sample == key.name and 0 <= particle < n:
                y[particle] = entry["class"]
        rows = np.flatnonzero(y != "")
        if not len(rows):
            continue
        x = read_features(path, morph, rows)
        finite = np.isfinite(x).all(axis=1)
        xs.append(x[finite])
        ys.append(y[rows][finite])
        source += [(key.name, int(i)) for i in rows[finite]]
    if not xs:
        raise ClassificationError(f"{archive.root}: the named clusters hold no encoded grains to train on")
    n_corr = sum(1 for s, p in corrections if s in by_name)
    return TrainingSet(np.vstack(xs), np.concatenate(ys), source, feature_names(paths[0], morph), encoder_id, n_corr)


def fit(data: TrainingSet, settings: TrainSettings, *, extra_info: dict[str, Any] | None = None) -> ClassifierModel:
    """Fit the logistic regression on the training part and measure it on the held-out part."""
    from sklearn.linear_model import LogisticRegression

    settings.check()
    classes = sorted(set(data.y.tolist()))
    if len(classes) < 2:
        raise ClassificationError(f"only one class ({classes[0]}) among the named grains; name clusters of at least two")
    code = np.searchsorted(np.array(classes, dtype=object), data.y).astype(np.int64)
    rng = np.random.default_rng(settings.seed)
    keep = np.arange(len(code))
    if settings.max_per_class:
        keep = np.sort(np.concatenate([rng.permutation(np.flatnonzero(code == c))[:settings.max_per_class]
                                       for c in range(len(classes))]))
    train, test = stratified_split(code[keep], settings.held_out, settings.seed)
    train, test = keep[train], keep[test]
    x = data.x
    mean = x[train].mean(axis=0)
    scale = x[train].std(axis=0)
    scale = np.where(scale > 1e-12, scale, 1.0)
    clf = LogisticRegression(C=settings.c, max_iter=settings.max_iter)
    clf.fit((x[train] - mean) / scale, code[train])
    coef, intercept = clf.coef_, clf.intercept_
    if len(clf.classes_) != len(classes):  # a class only in the held-out part cannot happen (split keeps one)
        raise ClassificationError("a class has no training grain")
    digest = hashlib.sha256(repr(sorted(zip(data.source, data.y.tolist()))).encode()).hexdigest()[:16]
    model = ClassifierModel(classes, [is_counted(c) for c in classes], data.features, data.encoder_id,
                            coef, intercept, mean, scale, training_digest=digest)
    report = held_out_report(code[test], model.predict_proba(x[test]), classes)
    model.info = {**(extra_info or {}), "settings": asdict(settings), "held_out": report,
                  "n_train": int(len(train)), "n_corrections": data.n_corrections,
                  "class_counts": {c: int((code == i).sum()) for i, c in enumerate(classes)}}
    return model


def train(archive: Archive, keys: Sequence[SampleKey], settings: TrainSettings | None = None, *,
          quiet: bool = False) -> ClassifierModel:
    """Build the training set, fit, measure, save under ``models/`` and name it current."""
    settings = settings if settings is not None else TrainSettings()
    settings.check()
    data = training_set(archive, keys, morphometrics=settings.morphometrics)
    if not quiet:
        print(f"classify-train: {len(data.y)} grains ({data.n_corrections} corrected by hand), "
              f"{len(data.features)} features", file=sys.stderr, flush=True)
    kmeans = current_model(archive)
    model = fit(data, settings, extra_info={"kmeans_id": kmeans.id if kmeans else None,
                                            "samples": sorted({s for s, _ in data.source})})
    save_model(archive, model)
    return model
