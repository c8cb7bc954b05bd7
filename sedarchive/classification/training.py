"""``classify-train``: a grain classifier from the expert's names of clusters (and corrections of grains).

The training set is every grain not flagged chopped of a named cluster (class: the cluster's class,
after merges) or of an excluded cluster (class: the reason, e.g. ``clump`` or ``debris``; such
classes are predicted but not counted in fractions), in the selected samples labelled by the current
K-means model; grains flagged clump are in, as they are counted in ``proportions.zarr``. Then every
grain the expert corrected one by one (``corrections.yaml``) is added or relabelled.

The model is measured out of fold: the grains are split into ``round(1 / held_out)`` seeded folds
(all views of one grain, repeats across overlapping frames, in the same fold), a model fitted
without each fold predicts it, and these predictions give the confusion against the names,
per-class precision and recall and the reliability curve (``held_out`` in model.json). With each
grain's cluster and count weight (``sedarchive.counting``: repeats 0, whole grains 1 / P(seen
whole)) they are also saved to correct fractions against the *truth*, not the names: see
:mod:`sedarchive.classification.truth`. The saved model is then fitted on all the grains.
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
from sedarchive.classification.metrics import held_out_report
from sedarchive.classification.model import ClassificationError, ClassifierModel, save_model
from sedarchive.clustering.model import current_model
from sedarchive.counting.decisions import EXCLUDE_REASONS, OLD_EXCLUDE_REASONS
from sedarchive.counting.labels import checked_counts, load_labels, resolve_cluster, stale_note
from sedarchive.counting.sample import count_sample


@dataclass
class TrainSettings:
    """Settings of ``classify-train`` (logistic regression on standardised latents + morphometrics)."""

    held_out: float = 0.25  # share of the grains in each out-of-fold part (1 / number of folds)
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
    cluster: np.ndarray | None = None  # (grain,) the named cluster it was taken from, -1: a corrected grain
    weight: np.ndarray | None = None  # (grain,) count weight (sedarchive.counting)
    group: np.ndarray | None = None  # (grain,) one id per grain on the plate (its repeats share it)
    cluster_class: dict[int, str] | None = None  # the class of each cluster used
    checked: dict[int, dict[str, int]] | None = None  # the expert's check of clusters (labels.yaml)
    n_clusters: int = 0


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
    xs, ys, source, clusters, weights, groups = [], [], [], [], [], []
    for number, (key, path) in enumerate(zip(used, paths)):
        n = int(array_shape(path, "latent")[0])
        y = np.full(n, "", dtype=object)
        from_cluster = np.full(n, -1, np.int64)
        if key in clustered and n:
            cluster = np.asarray(read_array(path, "cluster"), np.int64)
            chopped, _ = read_flags(path, n)
            for cid, name in class_of.items():
                mine = (cluster == cid) & ~chopped
                y[mine] = name
                from_cluster[mine] = cid
        for (sample, particle), entry in corrections.items():
            if sample == key.name and 0 <= particle < n:
                y[particle] = entry["class"]
                from_cluster[particle] = -1
        rows = np.flatnonzero(y != "")
        if not len(rows):
            continue
        counted = count_sample(path, write=False, warn=False)
        root = np.where(counted.duplicate_of >= 0, counted.duplicate_of, np.arange(n))
        x = read_features(path, morph, rows)
        finite = np.isfinite(x).all(axis=1)
        rows = rows[finite]
        xs.append(x[finite])
        ys.append(y[rows])
        clusters.append(from_cluster[rows])
        weights.append(np.asarray(counted.weight, float)[rows])
        groups.append(number * (n + 1) + root[rows])
        source += [(key.name, int(i)) for i in rows]
    if not xs:
        raise ClassificationError(f"{archive.root}: the named clusters hold no encoded grains to train on")
    n_corr = sum(1 for s, p in corrections if s in by_name)
    checked = {cid: found for cid, found in checked_counts(labels).items() if cid in class_of} if clustered else {}
    return TrainingSet(np.vstack(xs), np.concatenate(ys), source, feature_names(paths[0], morph), encoder_id, n_corr,
                       cluster=np.concatenate(clusters), weight=np.concatenate(weights), group=np.concatenate(groups),
                       cluster_class=class_of, checked=checked, n_clusters=model.n_centres if clustered else 0)


def _logistic(x: np.ndarray, code: np.ndarray, settings: TrainSettings) -> tuple[np.ndarray, ...]:
    """Standardisation and logistic-regression weights fitted on ``x``, ``code``."""
    from sklearn.linear_model import LogisticRegression

    mean = x.mean(axis=0)
    scale = x.std(axis=0)
    scale = np.where(scale > 1e-12, scale, 1.0)
    clf = LogisticRegression(C=settings.c, max_iter=settings.max_iter)
    clf.fit((x - mean) / scale, code)
    return clf.coef_, clf.intercept_, mean, scale, clf.classes_


def _folds(group: np.ndarray, n_folds: int, seed: int) -> np.ndarray:
    """A fold number per row; the rows of one group (the views of one grain) share it (seeded)."""
    ids, inverse = np.unique(group, return_inverse=True)
    rng = np.random.default_rng(seed)
    fold_of = rng.permutation(len(ids)) % n_folds
    return fold_of[inverse]


def fit(data: TrainingSet, settings: TrainSettings, *, extra_info: dict[str, Any] | None = None) -> ClassifierModel:
    """Measure the logistic regression out of fold, then fit it on all the grains."""
    settings.check()
    classes = sorted(set(data.y.tolist()))
    if len(classes) < 2:
        raise ClassificationError(f"only one class ({classes[0]}) among the named grains; name clusters of at least two")
    k = len(classes)
    code = np.searchsorted(np.array(classes, dtype=object), data.y).astype(np.int64)
    n = len(code)
    weight = data.weight if data.weight is not None else np.ones(n)
    group = data.group if data.group is not None else np.arange(n)
    cluster = data.cluster if data.cluster is not None else np.full(n, -1, np.int64)
    rng = np.random.default_rng(settings.seed)
    keep = np.arange(n)
    boost = np.ones(k)  # inverse share kept of each class, so that subsampling does not bias the cluster weights
    if settings.max_per_class:
        parts = [rng.permutation(np.flatnonzero(code == c))[:settings.max_per_class] for c in range(k)]
        boost = np.array([max(1, int((code == c).sum())) / max(1, len(part)) for c, part in enumerate(parts)])
        keep = np.sort(np.concatenate(parts))
    x = data.x
    n_folds = max(2, int(round(1 / settings.held_out)))
    fold = _folds(group[keep], n_folds, settings.seed)
    oof = np.full((len(keep), k), np.nan)
    for f in range(n_folds):
        out = fold == f
        if not out.any() or len(np.unique(code[keep][~out])) < 2:
            continue
        coef, intercept, mean, scale, seen = _logistic(x[keep][~out], code[keep][~out], settings)
        part = ClassifierModel([classes[i] for i in seen], [True] * len(seen), data.features, data.encoder_id,
                               coef, intercept, mean, scale)
        oof[np.ix_(np.flatnonzero(out), seen)] = part.predict_proba(x[keep][out])
    oof = np.nan_to_num(oof)  # a class missing from a fold's training part: probability 0
    coef, intercept, mean, scale, seen = _logistic(x[keep], code[keep], settings)
    if len(seen) != k:
        raise ClassificationError("a class has no training grain")
    digest = hashlib.sha256(repr(sorted(zip(data.source, data.y.tolist()))).encode()).hexdigest()[:16]
    model = ClassifierModel(classes, [is_counted(c) for c in classes], data.features, data.encoder_id,
                            coef, intercept, mean, scale, training_digest=digest)
    # measured on each grain once (its kept view), out of fold
    once = (weight[keep] > 0) | (cluster[keep] < 0)
    report = held_out_report(code[keep][once], oof[once], classes)
    report["method"] = f"{n_folds}-fold out-of-fold predictions, every grain once, against the names"
    truth = None
    use = (cluster[keep] >= 0) & (weight[keep] > 0)
    if data.cluster_class and use.any():
        naming = np.full(data.n_clusters, -1, np.int64)
        checked = np.zeros((data.n_clusters, k), np.int64)
        for cid, name in data.cluster_class.items():
            if 0 <= cid < data.n_clusters:
                naming[cid] = classes.index(name)
                for cls, m in (data.checked or {}).get(cid, {}).items():
                    if cls in classes:
                        checked[cid, classes.index(cls)] = m
        truth = {"naming": naming, "checked": checked, "oof_cluster": cluster[keep][use],
                 "oof_predicted": oof[use].argmax(axis=1).astype(np.int64),
                 "oof_weight": (weight[keep] * boost[code[keep]])[use]}
    model.truth = truth
    model.info = {**(extra_info or {}), "settings": asdict(settings), "held_out": report,
                  "n_train": int(len(keep)), "n_corrections": data.n_corrections,
                  "n_checked_clusters": int((truth["checked"].sum(axis=1) > 0).sum()) if truth else 0,
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
