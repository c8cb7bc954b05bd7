"""Encoding grains: the kernel (crops -> ``mu``) and the per-sample task that writes ``latent``.

``encode_crops`` is pure: uint8 crops in, float32 ``mu`` out. ``encode_store`` is what a Dask
worker runs for one sample: it reads ``particle_images`` block by block, encodes, and writes whole
chunks of the ``latent`` array that the orchestrating process created beforehand.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from catalog import read_array, write_region
from catalog.store import array_shape
from sedarchive.errors import InputError
from sedarchive.features.data import IMAGES, resize_crops, to_model_input
from sedarchive.features.model import GrainVAE, invariant_mu
from sedarchive.features.train import autocast, resolve_device

LATENT = "latent"
LATENT_CHUNK = 1024  # particles per chunk of ``latent``, and per block an encode task reads

_loaded: dict[tuple[str, str], GrainVAE] = {}


def encode_crops(model: GrainVAE, crops: np.ndarray, batch_size: int = 64,
                 mixed_precision: bool = True) -> np.ndarray:
    """``mu`` of every grain: ``(grain, layer, py, px, 3)`` uint8 -> ``(grain, latent_dim)`` float32.

    Crops are resized to the model's input size. The model is used as it is (device, eval mode).
    An ``invariant`` model gives the mean ``mu`` over the 8 rotations and flips of each grain.

    Examples
    --------
    >>> from sedarchive.features.settings import preset
    >>> from dataclasses import replace
    >>> model = GrainVAE(replace(preset("cpu").encoder, n_layers=2, input_size=32)).eval()
    >>> encode_crops(model, np.zeros((3, 2, 40, 40, 3), np.uint8)).shape
    (3, 64)
    """
    settings = model.settings
    crops = np.asarray(crops)
    if crops.ndim != 5 or crops.shape[1] != settings.n_layers or crops.shape[-1] != 3:
        raise InputError(f"crops of shape {crops.shape} do not fit an encoder of {settings.n_layers} focal layers")
    device = next(model.parameters()).device
    out = np.empty((len(crops), settings.latent_dim), dtype=np.float32)
    with torch.inference_mode():
        for start in range(0, len(crops), batch_size):
            x = to_model_input(resize_crops(crops[start:start + batch_size], settings.input_size), device)
            with autocast(device, mixed_precision):
                mu = invariant_mu(model, x) if settings.invariant else model.encode(x)[0]
            out[start:start + len(x)] = mu.float().cpu().numpy()
    return out


def cached_encoder(folder: str | Path, device: str = "auto") -> GrainVAE:
    """The saved model of ``folder`` on ``device``, loaded once per worker process."""
    from sedarchive.features.store import load_encoder

    dev = resolve_device(device)
    key = (str(folder), str(dev))
    if key not in _loaded:
        _loaded.clear()  # one model per process: a worker never needs two at once
        model, _ = load_encoder(folder, dev)
        if dev.type == "cuda":
            model = model.use_channels_last()
        _loaded[key] = model
    return _loaded[key]


def encode_store(path: str | Path, model_folder: str | Path, batch_size: int = 64, device: str = "auto",
                 block: int = LATENT_CHUNK, target: str = LATENT) -> int:
    """Encode every particle of a sample store into its (already created) ``latent``; returns the count.

    Blocks of ``block`` particles match the chunks of ``latent``, so each write covers
    whole chunks. The next block is read (and decompressed) in a thread while this one is encoded,
    so a GPU does not wait for the store.
    """
    from concurrent.futures import ThreadPoolExecutor

    model = cached_encoder(model_folder, device)
    n = int(array_shape(path, IMAGES)[0])
    starts = list(range(0, n, block))
    with ThreadPoolExecutor(max_workers=1) as reader:
        def read(start: int):
            return reader.submit(read_array, path, IMAGES, slice(start, min(n, start + block)))

        pending = read(starts[0]) if starts else None
        for i, start in enumerate(starts):
            crops = pending.result()
            pending = read(starts[i + 1]) if i + 1 < len(starts) else None
            write_region(path, target, start, encode_crops(model, crops, batch_size))
    return n
