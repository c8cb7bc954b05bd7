"""Which encoder is in use: ``ARCHIVE/models/current.json`` and lookups among the saved models.

``current.json`` is shared with the clustering stage: a JSON object whose ``encoder`` key holds the
id of the encoder in use (folder ``encoder-<id>``); other keys (``kmeans``) are kept as they are.
Reading and writing it is ``catalog.models`` (atomic, under a lock).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from catalog import models as current_models
from catalog.models import read_current
from sedarchive.errors import InputError
from sedarchive.features.store import encoder_dir, read_info


def set_current(models_dir: str | Path, **models: str) -> None:
    """Name the models in use (e.g. ``encoder=<id>``), keeping the other entries."""
    current_models.update_current(models_dir, models)


def current_encoder(models_dir: str | Path) -> str | None:
    return read_current(models_dir).get("encoder")


def list_encoders(models_dir: str | Path) -> list[str]:
    """Ids of the saved encoders, oldest first."""
    folders = [p for p in Path(models_dir).glob("encoder-*") if (p / "settings.json").is_file()]
    return [p.name.removeprefix("encoder-") for p in sorted(folders, key=lambda p: p.stat().st_mtime)]


def find_trained(models_dir: str | Path, fingerprint: str, epochs: int | None = None) -> str | None:
    """The id of a saved encoder trained with this fingerprint (settings + grains), if any.

    The fingerprint leaves out the number of epochs (it names the training run, which more epochs
    continue); with ``epochs`` only a model trained for exactly that many epochs is reused, so a
    changed ``--epochs`` takes effect instead of being silently ignored.
    """
    for model_id in reversed(list_encoders(models_dir)):
        info = read_info(encoder_dir(models_dir, model_id))
        if info.get("fingerprint") != fingerprint:
            continue
        if epochs is None or int(info.get("train", {}).get("epochs", epochs)) == int(epochs):
            return model_id
    return None


def resolve_encoder(models_dir: str | Path, model_id: str | None = None) -> tuple[str, Path]:
    """The id and folder of ``model_id`` (default: the current encoder); a clear error when absent."""
    model_id = model_id or current_encoder(models_dir)
    if not model_id:
        raise InputError(f"no trained encoder in {Path(models_dir)}; run `sedarchive train` first")
    model_id = model_id.removeprefix("encoder-")
    folder = encoder_dir(models_dir, model_id)
    if not (folder / "settings.json").is_file():
        raise InputError(f"encoder {model_id} is not in {Path(models_dir)}")
    return model_id, folder
