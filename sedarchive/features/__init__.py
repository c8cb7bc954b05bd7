"""Feature learning: the paper's variational autoencoder of grain stacks, trained and applied on Dask.

Kernels (:mod:`.model`, :func:`encode_crops`), I/O (:mod:`.data`, :mod:`.store`, :mod:`.registry`,
:func:`encode_store`) and orchestration (:mod:`.stage`) are kept apart. Names are imported on first
use, so that ``sedarchive.features.settings`` (used by the command line) does not import torch.
"""
from __future__ import annotations

from typing import Any

_PUBLIC = {
    "EncodeSettings": "settings",
    "EncoderSettings": "settings",
    "TrainSettings": "settings",
    "load_settings_file": "settings",
    "preset": "settings",
    "GrainVAE": "model",
    "vae_loss": "model",
    "encode_crops": "encode",
    "encode_store": "encode",
    "current_encoder": "registry",
    "resolve_encoder": "registry",
    "set_current": "registry",
    "run_stage": "stage",
    "train_stage": "stage",
    "load_encoder": "store",
    "save_encoder": "store",
    "train_and_save": "train",
    "train_encoder": "train",
    "load_imagenet_weights": "weights",
}

__all__ = sorted(_PUBLIC)


def __getattr__(name: str) -> Any:
    if name not in _PUBLIC:
        raise AttributeError(f"module 'sedarchive.features' has no attribute {name!r}")
    module = _PUBLIC[name]
    if module == "settings":
        from sedarchive.features import settings as found
    elif module == "model":
        from sedarchive.features import model as found
    elif module == "encode":
        from sedarchive.features import encode as found
    elif module == "registry":
        from sedarchive.features import registry as found
    elif module == "stage":
        from sedarchive.features import stage as found
    elif module == "store":
        from sedarchive.features import store as found
    elif module == "train":
        from sedarchive.features import train as found
    else:
        from sedarchive.features import weights as found
    return getattr(found, name)
