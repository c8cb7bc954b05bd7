"""The grain classifier on disk: ``ARCHIVE/models/classifier-<id>/`` (``.npy`` weights + ``model.json``).

A multinomial logistic regression on standardised features (the latent and the morphometrics
listed in ``features``). No pickle: weights, intercepts and the standardisation are ``.npy`` arrays,
everything else (classes, encoder id, held-out metrics, reliability curve) is JSON. The id is a
content hash of the weights, the classes, the encoder and the training data, so new training data
(e.g. the expert's corrections) gives a new id. ``models/current.json`` names it under ``classifier``.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from catalog import Archive
from catalog.files import write_new_dir
from catalog.models import read_current, update_current
from catalog.store import json_default, software_version
from sedarchive.errors import InputError

CURRENT_KEY = "classifier"
_ARRAYS = ("coef", "intercept", "mean", "scale")
TRUTH_ARRAYS = ("naming", "checked", "oof_cluster", "oof_predicted", "oof_weight")


class ClassificationError(InputError):
    """A classification request that cannot be met (no names, no model, another encoder, bad correction)."""


@dataclass
class ClassifierModel:
    """Weights ``coef (class, feature)``, ``intercept (class)``, standardisation ``mean``/``scale`` (feature).

    ``classes`` are the names of the codes ``0 ..``; ``counted[i]`` is False for classes that are not
    counted in fractions (excluded clusters: chopped, debris, ...). ``features`` names the columns
    (``latent`` then morphometrics); ``encoder_id`` is the encoder whose latents it was trained on.
    """

    classes: list[str]
    counted: list[bool]
    features: list[str]
    encoder_id: str | None
    coef: np.ndarray
    intercept: np.ndarray
    mean: np.ndarray
    scale: np.ndarray
    training_digest: str = ""
    info: dict[str, Any] = field(default_factory=dict)
    #: what corrects fractions against the truth (:mod:`~sedarchive.classification.truth`): ``naming``,
    #: ``checked`` (cluster[, class]) and the out-of-fold grains' ``oof_cluster``, ``oof_predicted``,
    #: ``oof_weight``; None for models saved before it (their fractions are corrected against the names)
    truth: dict[str, np.ndarray] | None = None

    def __post_init__(self) -> None:
        self.coef = np.asarray(self.coef, np.float64)
        self.intercept = np.asarray(self.intercept, np.float64).reshape(-1)
        self.mean = np.asarray(self.mean, np.float64).reshape(-1)
        self.scale = np.asarray(self.scale, np.float64).reshape(-1)
        d = len(self.mean)
        if self.coef.ndim != 2 or self.coef.shape[1] != d or len(self.scale) != d or len(self.coef) != len(self.intercept):
            raise ClassificationError(f"classifier: coef {self.coef.shape}, intercept {self.intercept.shape}, "
                                      f"mean {self.mean.shape} and scale {self.scale.shape} disagree")
        if len(self.classes) != len(self.counted) or len(self.classes) < 2:
            raise ClassificationError(f"classifier: needs at least two classes (got {self.classes})")

    @property
    def id(self) -> str:
        h = hashlib.sha256()
        for name in _ARRAYS:
            h.update(np.ascontiguousarray(getattr(self, name)).tobytes())
        h.update(json.dumps([self.classes, self.counted, self.features, self.encoder_id,
                             self.training_digest]).encode())
        return f"c{len(self.classes)}-{h.hexdigest()[:12]}"

    @property
    def folder_name(self) -> str:
        return f"classifier-{self.id}"

    @property
    def n_features(self) -> int:
        return len(self.mean)

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """Class probabilities ``(grain, class)`` of raw (unstandardised) feature rows."""
        x = np.asarray(x, np.float64)
        if x.ndim != 2 or x.shape[1] != self.n_features:
            raise ClassificationError(f"features of shape {x.shape} do not match the classifier's {self.n_features}")
        z = (x - self.mean) / self.scale
        logits = z @ self.coef.T + self.intercept
        if logits.shape[1] == 1:  # two classes: scikit-learn keeps one row (the second class)
            logits = np.hstack([np.zeros_like(logits), logits])
        logits -= logits.max(axis=1, keepdims=True)
        e = np.exp(logits)
        return e / e.sum(axis=1, keepdims=True)

    def check_encoder(self, encoder_id: str | None, where: str) -> None:
        """Refuse latents of another encoder, in one line."""
        if (encoder_id or None) != (self.encoder_id or None):
            raise ClassificationError(
                f"{where} was encoded by encoder {encoder_id}, but classifier {self.id} was trained on encoder "
                f"{self.encoder_id}; run `sedarchive classify-train` again for this encoder")


def model_dir(archive: Archive, model_id: str) -> Path:
    return archive.models_dir / f"classifier-{model_id.removeprefix('classifier-')}"


def save_model(archive: Archive, model: ClassifierModel, *, make_current: bool = True) -> Path:
    """Write ``models/classifier-<id>/`` (a temporary folder renamed) and name it current."""
    def fill(tmp: Path) -> None:
        for name in _ARRAYS:
            np.save(tmp / f"{name}.npy", getattr(model, name), allow_pickle=False)
        for name, values in (model.truth or {}).items():
            np.save(tmp / f"truth_{name}.npy", np.asarray(values), allow_pickle=False)
        meta = {**model.info, "id": model.id, "classes": model.classes, "counted": model.counted,
                "features": model.features, "encoder_id": model.encoder_id,
                "training_digest": model.training_digest,
                "created_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                "software_version": software_version()}
        (tmp / "model.json").write_text(json.dumps(meta, indent=2, default=json_default) + "\n")

    final = write_new_dir(model_dir(archive, model.id), fill)
    if make_current:
        update_current(archive, {CURRENT_KEY: final.name})
    return final


def load_model_dir(folder: str | Path) -> ClassifierModel:
    folder = Path(folder)
    try:
        meta = json.loads((folder / "model.json").read_text())
        arrays = {name: np.load(folder / f"{name}.npy", allow_pickle=False) for name in _ARRAYS}
        truth = None
        if all((folder / f"truth_{name}.npy").is_file() for name in TRUTH_ARRAYS):
            truth = {name: np.load(folder / f"truth_{name}.npy", allow_pickle=False) for name in TRUTH_ARRAYS}
        keep = {"classes", "counted", "features", "encoder_id", "training_digest"}
        info = {k: v for k, v in meta.items() if k not in keep}
        return ClassifierModel(list(meta["classes"]), [bool(c) for c in meta["counted"]], list(meta["features"]),
                               meta.get("encoder_id"), training_digest=meta.get("training_digest", ""), info=info,
                               truth=truth, **arrays)
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise ClassificationError(f"classifier {folder} cannot be read: {err!r}") from None


def load_model(archive: Archive, model_id: str) -> ClassifierModel:
    return load_model_dir(model_dir(archive, model_id))


def current_classifier(archive: Archive) -> ClassifierModel | None:
    """The classifier that ``models/current.json`` names, or None before ``classify-train``."""
    name = read_current(archive).get(CURRENT_KEY)
    return load_model_dir(archive.models_dir / name) if name else None
