"""The K-means model on disk: ``ARCHIVE/models/kmeans-<id>/`` (``centres.npy`` + ``settings.json``).

No pickle: the centres are a plain ``.npy`` array (loaded with ``allow_pickle=False``) and everything
else is JSON. ``models/current.json`` names the models in use; other parts (the encoder) keep their
own keys in it, so it is only ever updated read-modify-write, under a lock, and replaced atomically.
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

CURRENT_KEY = "kmeans"


class ClusteringError(InputError):
    """A clustering request that cannot be met (no latents, no model, mixed encoders, bad cluster id)."""


@dataclass
class KMeansModel:
    """Centres (``k x feature``), the split tree over them, and where they came from.

    ``parent[i]`` is the centre that cluster ``i`` was split from (-1 for the centres of the fit);
    ``retired[i]`` marks centres that were split and take no grains any more.
    """

    centres: np.ndarray
    encoder_id: str | None
    parent: np.ndarray = None  # type: ignore[assignment]
    retired: np.ndarray = None  # type: ignore[assignment]
    info: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.centres = np.ascontiguousarray(self.centres, dtype=np.float32)
        k = len(self.centres)
        self.parent = np.full(k, -1, np.int64) if self.parent is None else np.asarray(self.parent, np.int64)
        self.retired = np.zeros(k, bool) if self.retired is None else np.asarray(self.retired, bool)
        if self.centres.ndim != 2 or self.parent.shape != (k,) or self.retired.shape != (k,):
            raise ClusteringError(f"K-means model: centres {self.centres.shape}, parent {self.parent.shape} "
                                  f"and retired {self.retired.shape} disagree")

    @property
    def n_centres(self) -> int:
        return len(self.centres)

    @property
    def n_features(self) -> int:
        return int(self.centres.shape[1])

    @property
    def active_ids(self) -> list[int]:
        """Cluster ids that grains can be assigned to."""
        return [int(i) for i in np.flatnonzero(~self.retired)]

    @property
    def id(self) -> str:
        """Content hash: the same centres, tree and encoder always give the same id."""
        h = hashlib.sha256(self.centres.tobytes())
        h.update(json.dumps([self.parent.tolist(), self.retired.tolist(), self.encoder_id]).encode())
        return f"k{self.n_centres}-{h.hexdigest()[:12]}"

    @property
    def folder_name(self) -> str:
        return f"kmeans-{self.id}"

    def recipe(self, latent_dim: int):
        """How this model's features are made from a store (:class:`~.features.FeatureRecipe`)."""
        from sedarchive.clustering.features import FeatureRecipe

        return FeatureRecipe.from_info(self.info, latent_dim)

    @property
    def latent_dim(self) -> int:
        """Latent features the model expects (its centres may add morphometrics after them)."""
        return int(self.info.get("features", {}).get("latent_dim", self.n_features))

    def assign(self, latents: np.ndarray) -> np.ndarray:
        from sedarchive.clustering.kmeans import assign_grains

        if latents.ndim != 2 or latents.shape[1] != self.n_features:
            raise ClusteringError(f"latents of shape {latents.shape} do not match the model's {self.n_features} features")
        return assign_grains(latents, self.centres, self.parent, self.retired)


def model_dir(archive: Archive, model_id: str) -> Path:
    return archive.models_dir / f"kmeans-{model_id}"


def save_model(archive: Archive, model: KMeansModel, *, make_current: bool = True) -> Path:
    """Write the model folder (atomically: a temporary folder renamed) and name it current."""
    def fill(tmp: Path) -> None:
        np.save(tmp / "centres.npy", model.centres, allow_pickle=False)
        meta = {
            **model.info,
            "id": model.id,
            "k": model.n_centres,
            "n_features": model.n_features,
            "encoder_id": model.encoder_id,
            "parent": model.parent.tolist(),
            "retired": model.retired.tolist(),
            "created_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "software_version": software_version(),
        }
        (tmp / "settings.json").write_text(json.dumps(meta, indent=2, default=json_default) + "\n")

    final = write_new_dir(model_dir(archive, model.id), fill)
    if make_current:
        update_current(archive, {CURRENT_KEY: final.name})
    return final


def load_model(archive: Archive, model_id: str) -> KMeansModel:
    """Load ``models/kmeans-<id>``; a clear error when it is missing or damaged."""
    folder = model_dir(archive, model_id.removeprefix("kmeans-"))
    return load_model_dir(folder)


def load_model_dir(folder: str | Path) -> KMeansModel:
    folder = Path(folder)
    try:
        meta = json.loads((folder / "settings.json").read_text())
        centres = np.load(folder / "centres.npy", allow_pickle=False)
        info = {k: v for k, v in meta.items() if k not in {"parent", "retired", "encoder_id"}}
        return KMeansModel(centres, meta.get("encoder_id"), np.asarray(meta["parent"]), np.asarray(meta["retired"]),
                           info)
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise ClusteringError(f"K-means model {folder} cannot be read: {err!r}") from None


def current_model(archive: Archive) -> KMeansModel | None:
    """The model that ``models/current.json`` names, or None when there is none yet."""
    name = read_current(archive).get(CURRENT_KEY)
    if not name:
        return None
    return load_model_dir(archive.models_dir / name)



