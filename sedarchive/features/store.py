"""Trained encoders on disk: ``ARCHIVE/models/encoder-<id>/`` with weights, settings and history.

A folder holds ``model.pt`` (the state dict, read back with ``weights_only=True``),
``settings.json`` (the encoder and training settings, the grains it learnt from) and
``history.json`` (loss per epoch). The id is a digest of the weights themselves, so two different
models never share an id and latents written by one are never taken for another's.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from catalog.store import software_version
from sedarchive.errors import InputError
from sedarchive.features.model import GrainVAE
from sedarchive.features.settings import encoder_from_dict

MODEL_FILE = "model.pt"
SETTINGS_FILE = "settings.json"
HISTORY_FILE = "history.json"


def weights_id(state_dict: Mapping[str, torch.Tensor]) -> str:
    """A short digest of a state dict's names, shapes and values (12 hex digits)."""
    digest = hashlib.sha256()
    for name in sorted(state_dict):
        tensor = state_dict[name].detach().to("cpu").contiguous().reshape(-1)
        digest.update(f"{name}:{tuple(tensor.shape)}:{tensor.dtype}".encode())
        digest.update(tensor.view(torch.uint8).numpy().tobytes() if tensor.numel() else b"")
    return digest.hexdigest()[:12]


def encoder_dir(models_dir: str | Path, model_id: str) -> Path:
    return Path(models_dir) / f"encoder-{model_id}"


def save_encoder(models_dir: str | Path, model: GrainVAE, info: Mapping[str, Any], history: list[dict]) -> str:
    """Write a trained model (atomically: a temporary folder renamed into place); returns its id."""
    state = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    model_id = weights_id(state)
    final = encoder_dir(models_dir, model_id)
    if final.exists():
        return model_id
    tmp = Path(models_dir) / f".encoder-{model_id}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    torch.save(state, tmp / MODEL_FILE)
    meta = {"id": model_id, "software_version": software_version(), **info}
    (tmp / SETTINGS_FILE).write_text(json.dumps(meta, indent=2, sort_keys=True))
    (tmp / HISTORY_FILE).write_text(json.dumps(history, indent=2))
    os.replace(tmp, final)
    return model_id


def read_info(folder: str | Path) -> dict[str, Any]:
    """The ``settings.json`` of a model folder."""
    path = Path(folder) / SETTINGS_FILE
    if not path.is_file():
        raise InputError(f"{Path(folder)} is not a trained encoder (no {SETTINGS_FILE})")
    try:
        return json.loads(path.read_text())
    except ValueError as err:
        raise InputError(f"{path} is not valid JSON: {err}") from None


def load_encoder(folder: str | Path, device: str | torch.device = "cpu") -> tuple[GrainVAE, dict[str, Any]]:
    """A saved model in evaluation mode on ``device``, and its settings."""
    folder = Path(folder)
    info = read_info(folder)
    model = GrainVAE(encoder_from_dict(info["encoder"], source=str(folder / SETTINGS_FILE)))
    try:
        state = torch.load(folder / MODEL_FILE, map_location="cpu", weights_only=True)
        model.load_state_dict(state, strict=True)
    except Exception as err:  # noqa: BLE001 - any damage (truncated zip, bad pickle, wrong tensors) is one line
        raise InputError(f"encoder {folder.name}: cannot load {MODEL_FILE} ({str(err).splitlines()[0][:160]})") from None
    return model.to(device).eval(), info


def read_history(folder: str | Path) -> list[dict]:
    path = Path(folder) / HISTORY_FILE
    return json.loads(path.read_text()) if path.is_file() else []
