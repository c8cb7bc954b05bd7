"""Training the grain encoder: seeded epochs over streamed crops, a checkpoint after every epoch.

A run is identified by its fingerprint (settings that change the result, and the grains it learns
from). Its working folder ``models/training-<fingerprint>/`` holds ``checkpoint.pt`` (model,
optimiser, scaler and history, replaced atomically after each epoch) and ``history.json``. A run
that is started again continues from the last checkpoint; on CPU the result is identical to an
uninterrupted run, because every epoch re-seeds its own randomness from (seed, epoch).
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import shutil
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from catalog.files import atomic_write
from sedarchive.errors import InputError
from sedarchive.features.data import CropCache, GrainIndex, batches, to_model_input
from sedarchive.features.model import GrainVAE, random_dihedral, vae_loss
from sedarchive.features.settings import TrainSettings
from sedarchive.features.store import save_encoder

CHECKPOINT = "checkpoint.pt"
PROGRESS = "history.json"

Progress = Callable[[dict[str, Any]], None]


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` is the GPU when torch sees one, else the CPU; ``cuda`` without a GPU is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise InputError("device cuda asked for, but torch sees no CUDA GPU here")
    return torch.device(name)


def autocast(device: torch.device, enabled: bool) -> contextlib.AbstractContextManager:
    """Mixed precision on CUDA (bf16 where supported, else fp16); nothing on CPU."""
    if device.type != "cuda" or not enabled:
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.autocast("cuda", dtype=dtype)


def fingerprint(settings: TrainSettings, index: GrainIndex) -> str:
    """Digest of what decides the trained weights: settings (not epochs nor device) and grains.

    The thread count is part of it: torch splits its sums by thread, so another count gives other
    weights.
    """
    values = settings.to_dict()
    for key in ("epochs", "device", "cache_mb"):
        values.pop(key)
    values["encoder"]["n_layers"] = index.n_layers
    if not values["encoder"]["invariant"]:
        del values["encoder"]["invariant"]  # runs from before the setting keep their fingerprint
    if values["objective"] == "vae":
        del values["objective"], values["temperature"]  # likewise
    if settings.weights:
        path = Path(settings.weights)
        values["weights"] = [path.name, path.stat().st_size if path.is_file() else None]
    text = json.dumps(values, sort_keys=True) + index.fingerprint()
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def build_model(settings: TrainSettings, n_layers: int) -> GrainVAE:
    """A freshly initialised (seeded) model, with ImageNet branch weights when a file is given."""
    from sedarchive.features.weights import load_imagenet_weights

    torch.manual_seed(settings.seed)
    model = GrainVAE(replace(settings.encoder, n_layers=n_layers))
    if settings.weights:
        load_imagenet_weights(model, settings.weights)
    return model


def train_encoder(index: GrainIndex, settings: TrainSettings, workdir: str | Path,
                  progress: Progress | None = None,
                  on_batch: Callable[[int], None] | None = None) -> tuple[GrainVAE, list[dict[str, Any]]]:
    """Train (or continue training) a model on the indexed grains; returns it and its history."""
    if settings.threads is None:
        return _train(index, settings, Path(workdir), progress, on_batch)
    before = torch.get_num_threads()
    torch.set_num_threads(settings.threads)
    try:
        return _train(index, settings, Path(workdir), progress, on_batch)
    finally:
        torch.set_num_threads(before)


def _train(index: GrainIndex, settings: TrainSettings, workdir: Path, progress: Progress | None,
           on_batch: Callable[[int], None] | None = None) -> tuple[GrainVAE, list[dict[str, Any]]]:
    if index.n_grains < 2:
        raise InputError(f"training needs at least 2 grains, the selected samples have {index.n_grains}")
    device = resolve_device(settings.device)
    model = build_model(settings, index.n_layers).to(device)
    workdir.mkdir(parents=True, exist_ok=True)  # only once the model (and its weights file) is fine
    if device.type == "cuda":
        model = model.use_channels_last()
    head = None
    if settings.objective == "contrastive":
        from sedarchive.features.contrastive import ProjectionHead

        head = ProjectionHead(settings.encoder.latent_dim).to(device)  # seeded after the model: reproducible
    params = list(model.parameters()) + (list(head.parameters()) if head is not None else [])
    optimizer = torch.optim.Adam(params, lr=settings.learning_rate)
    amp = settings.mixed_precision and device.type == "cuda"
    scaler = torch.amp.GradScaler("cuda", enabled=amp and not torch.cuda.is_bf16_supported())
    history: list[dict[str, Any]] = []
    run_id = fingerprint(settings, index)
    checkpoint = workdir / CHECKPOINT
    if checkpoint.is_file():
        state = torch.load(checkpoint, map_location=device, weights_only=True)
        if state.get("fingerprint") != run_id:
            raise InputError(f"{checkpoint} belongs to another training run; remove {workdir} to start over")
        model.load_state_dict(state["model"])
        if head is not None:
            head.load_state_dict(state["head"])
        optimizer.load_state_dict(state["optimizer"])
        scaler.load_state_dict(state["scaler"])
        history = json.loads(state["history"])
    size = settings.encoder.input_size
    cache = CropCache(settings.cache_mb * 2**20)
    for epoch in range(len(history), settings.epochs):
        torch.manual_seed(settings.seed * 1_000_003 + epoch + 1)
        model.train()
        start, seen, totals = time.monotonic(), 0, torch.zeros(3, dtype=torch.float64)
        for crops in batches(index, size, settings.batch_size, epoch, settings.seed, settings.shuffle_buffer, cache):
            x = to_model_input(crops, device)
            if settings.encoder.invariant:  # grains lie any way up: learn them so
                x = random_dihedral(x)
            if device.type == "cuda":
                x = x.contiguous()
            if head is not None:
                from sedarchive.features.contrastive import contrastive_loss

                with autocast(device, amp):
                    loss = contrastive_loss(model, head, x, settings.temperature)
                mse = kl = torch.zeros((), device=loss.device)
            else:
                with autocast(device, amp):
                    recon, mu, logvar = model(x)
                loss, mse, kl = vae_loss(recon, x, mu, logvar, settings.beta)
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            totals += torch.stack([loss.detach(), mse.detach(), kl.detach()]).double().cpu() * len(crops)
            seen += len(crops)
            if on_batch is not None:
                on_batch(len(crops))  # grains done: the bar moves within an epoch too
        seconds = time.monotonic() - start
        loss_, mse_, kl_ = (totals / max(seen, 1)).tolist()
        record = {"epoch": epoch + 1, "loss": loss_, "mse": mse_, "kl": kl_, "grains": seen,
                  "seconds": round(seconds, 3), "grains_per_s": round(seen / seconds, 2) if seconds else None}
        history.append(record)
        _save_checkpoint(workdir, {"fingerprint": run_id, "model": model.state_dict(),
                                   "optimizer": optimizer.state_dict(), "scaler": scaler.state_dict(),
                                   "history": json.dumps(history),
                                   **({"head": head.state_dict()} if head is not None else {})})
        _write_json(workdir / PROGRESS, {"epochs": settings.epochs, "history": history})
        if progress is not None:
            progress({**record, "epochs": settings.epochs})
    return model.eval(), history


def train_and_save(index: GrainIndex, settings: TrainSettings, models_dir: str | Path,
                   progress: Progress | None = None, on_batch: Callable[[int], None] | None = None) -> dict[str, Any]:
    """Train on the indexed grains and save the model under ``models_dir``; the unit of the stage.

    Returns ``{"model_id", "n_grains", "samples", "history", "fingerprint"}``. The working folder
    is removed once the model is saved.
    """
    run_id = fingerprint(settings, index)
    workdir = training_dir(models_dir, run_id, settings.epochs)
    model, history = train_encoder(index, settings, workdir, progress, on_batch)
    info = {
        "encoder": {**settings.to_dict()["encoder"], "n_layers": index.n_layers},
        "train": settings.to_dict(),
        "fingerprint": run_id,
        "n_grains": index.n_grains,
        "samples": index.samples,
        "trained_on": str(resolve_device(settings.device)),
        "torch_threads": settings.threads or torch.get_num_threads(),
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    model_id = save_encoder(models_dir, model.to("cpu"), info, history)
    shutil.rmtree(workdir, ignore_errors=True)
    return {"model_id": model_id, "n_grains": index.n_grains, "samples": index.samples,
            "history": history, "fingerprint": run_id}


def training_dir(models_dir: str | Path, run_id: str, epochs: int | None = None) -> Path:
    """The working folder (checkpoint, progress) of a training run; a run for other epochs has its own."""
    return Path(models_dir) / (f"training-{run_id}" if epochs is None else f"training-{run_id}-e{int(epochs)}")


def read_progress(workdir: str | Path) -> list[dict[str, Any]]:
    """The epochs finished so far by a run (read by the client while a worker trains)."""
    try:
        return json.loads((Path(workdir) / PROGRESS).read_text())["history"]
    except (OSError, ValueError, KeyError):
        return []


def _save_checkpoint(workdir: Path, state: dict[str, Any]) -> None:
    atomic_write(workdir / CHECKPOINT, lambda tmp: torch.save(state, tmp))


def _write_json(path: Path, data: Any) -> None:
    atomic_write(path, json.dumps(data, indent=2))
