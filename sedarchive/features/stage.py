"""The train and encode stages: wiring the index, training, encoding and the stores together.

``train_stage`` trains one model on the selected samples. It runs in the client process on a
CPU-only cluster (the local cluster's workers are single-threaded, the client can give torch every
core, and nothing has to travel), and as one Dask task asking ``resources={"GPU": 1}`` when the
cluster has GPU workers, so that training goes where the GPU is; the client then follows the
run's per-epoch ``history.json``. A run whose settings and grains match a saved model reuses it.

``run_stage`` (encode) submits one task per sample, asking for a GPU when the cluster has GPU
workers; each writes ``latent`` into its own store. Samples already encoded by the current model
are skipped; samples encoded by another model are encoded again.
"""
from __future__ import annotations

import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from catalog import Archive, SampleKey, create_variables, read_attrs, record_stage, status_rank
from catalog.errors import SedarchiveError
from catalog.store import array_names, array_shape, intact, staged_name, swap_in
from sedarchive.dask.tasks import TaskReport, has_gpu_workers, run_tasks
from sedarchive.errors import InputError
from sedarchive.features.data import IMAGES, build_index
from sedarchive.features.encode import LATENT, LATENT_CHUNK, encode_store
from sedarchive.features.registry import find_trained, resolve_encoder, set_current
from sedarchive.features.settings import DEFAULT_PRESET, EncodeSettings, TrainSettings, preset
from sedarchive.features.store import encoder_dir, load_encoder, read_history, read_info
from sedarchive.features.train import fingerprint, read_progress, resolve_device, train_and_save, training_dir
from sedarchive.progress import ProgressBar


def train_stage(archive: Archive, keys: list[SampleKey], client: Any, settings: TrainSettings | None = None, *,
                quiet: bool = False) -> TaskReport:
    """Train an encoder on the grains of ``keys`` (or reuse an identical one) and make it current.

    ``report.results["encoder"]`` holds the model id, grain count and history; samples that could
    not be used (not segmented, missing flags) are in ``report.failures``.
    """
    settings = settings if settings is not None else preset(DEFAULT_PRESET)  # None: the stage's defaults
    if settings.weights and not Path(settings.weights).is_file():
        raise InputError(f"weights file {settings.weights} does not exist")
    on_gpu_worker = client is not None and has_gpu_workers(client)
    if not on_gpu_worker:
        resolve_device(settings.device)  # `--device cuda` where there is none fails before any work
    by_name = {key.name: key for key in keys}
    paths = [archive.sample_path(key) for key in keys]
    index = build_index(paths, settings.include_flagged, settings.max_grains, settings.seed)
    report = TaskReport(failures={by_name.get(name, name): reason for name, reason in index.failures.items()})
    if index.n_grains < 2:
        why = f" ({next(iter(index.failures.values()))})" if index.failures else ""
        raise InputError(f"no grains to train on in the {len(keys)} selected sample(s){why}")
    models_dir = archive.models_dir
    run_id = fingerprint(settings, index)
    existing = find_trained(models_dir, run_id, settings.epochs)
    if existing:
        _say(quiet, f"train: encoder {existing} was already trained with these settings and grains; reusing it")
        result = {"model_id": existing, "n_grains": index.n_grains, "samples": index.samples,
                  "history": read_history(encoder_dir(models_dir, existing)), "fingerprint": run_id, "reused": True}
    else:
        _say(quiet, f"train: {index.n_grains} grains from {len(index.samples)} sample(s), "
                    f"{index.n_layers} focal layers, backbone {settings.encoder.backbone}")
        if on_gpu_worker:
            result = _train_on_gpu_worker(client, index, settings, models_dir, quiet)
        else:
            # counted in grains over all epochs, so the bar moves within an epoch too (the first may take a minute)
            with ProgressBar(index.n_grains * settings.epochs, "train", unit="grain", quiet=quiet) as bar:
                result = train_and_save(index, settings, models_dir, progress=_epoch_progress(bar),
                                        on_batch=bar.update)
        result["reused"] = False
    set_current(models_dir, encoder=result["model_id"])
    report.results["encoder"] = result
    return report


def _train_on_gpu_worker(client: Any, index, settings: TrainSettings, models_dir, quiet: bool) -> dict[str, Any]:
    future = client.submit(train_and_save, index, settings, str(models_dir), resources={"GPU": 1},
                           pure=False, retries=2, key=f"train-{time.time_ns()}")
    workdir, shown = training_dir(models_dir, fingerprint(settings, index), settings.epochs), 0
    while not future.done():
        time.sleep(1.0)
        history = read_progress(workdir)
        for record in history[shown:]:
            _say(quiet, _epoch_line({**record, "epochs": settings.epochs}))
        shown = max(shown, len(history))
    result = future.result()
    for record in result["history"][shown:]:
        _say(quiet, _epoch_line({**record, "epochs": settings.epochs}))
    return result


def run_stage(archive: Archive, keys: list[SampleKey], client: Any, settings: EncodeSettings | None = None, *,
              quiet: bool = False) -> TaskReport:
    """Write ``latent (particle, feature)`` into every selected sample with the chosen encoder.

    Results: the number of grains encoded per sample (``"skipped"`` where the sample already holds
    this model's latents). With ``client=None`` the work runs in this process.
    """
    settings = settings if settings is not None else EncodeSettings()  # None: the stage's defaults
    model_id, folder = resolve_encoder(archive.models_dir, settings.model)
    encoder = read_info(folder)["encoder"]
    load_encoder(folder, "cpu")  # an unloadable model.pt fails here, before any store changes
    report, todo = TaskReport(), {}
    for key in keys:
        try:
            job = _prepare(archive, key, model_id, encoder, settings)
        except SedarchiveError as err:
            report.failures[key] = str(err)
            continue
        if job == "skipped" or job == 0:
            report.results[key] = job
            if job == 0:
                _finish(archive, key, model_id, settings)
        else:
            todo[key] = (str(archive.sample_path(key)), str(folder), settings.batch_size, settings.device,
                         LATENT_CHUNK, staged_name(LATENT))
    if todo:
        _say(quiet, f"encode: {len(todo)} sample(s) with encoder {model_id}"
                    + (f", {len(report.results)} already done" if report.results else ""))
    if client is None:
        done = TaskReport()
        for key, args in todo.items():
            done.results[key] = encode_store(*args)
    else:
        resources = {"GPU": 1} if has_gpu_workers(client) else None
        done = run_tasks(client, encode_store, todo, label="encode", resources=resources, quiet=quiet)
    for key, n in done.results.items():
        _finish(archive, key, model_id, settings)
        report.results[key] = n
    report.failures.update(done.failures)
    return report


def _prepare(archive: Archive, key: SampleKey, model_id: str, encoder: dict[str, Any], settings: EncodeSettings):
    """Skip, or create a clean staged ``latent.next`` (client side) and return the grain count.

    The sample's current ``latent`` and status stay as they are until :func:`_finish` swaps the
    finished new latents in: a failure or a kill anywhere before leaves the old results whole.
    """
    path = archive.sample_path(key)
    attrs = read_attrs(path)
    status = attrs.get("status", "acquiring")
    if status_rank(status) < status_rank("segmented"):
        raise InputError(f"sample {key.name} is not segmented yet (status {status})")
    if (not settings.force and status_rank(status) >= status_rank("encoded") and attrs.get("encoder_id") == model_id
            and intact(path, LATENT)):
        return "skipped"
    if IMAGES not in array_names(path):
        raise InputError(f"sample {key.name} has no {IMAGES}; run `sedarchive segment` first")
    n, n_layers = array_shape(path, IMAGES)[:2]
    if n and n_layers != encoder["n_layers"]:
        raise InputError(f"sample {key.name} has {n_layers} focal layers, encoder {model_id} expects {encoder['n_layers']}")
    dim = int(encoder["latent_dim"])
    create_variables(path, {staged_name(LATENT): (("particle", "feature"), (n, dim), "float32", (min(max(n, 1), LATENT_CHUNK), dim))})
    return n


def _finish(archive: Archive, key: SampleKey, model_id: str, settings: EncodeSettings) -> None:
    recorded = {k: v for k, v in asdict(settings).items() if k != "force"}
    recorded["model"] = model_id
    swap_in(archive.sample_path(key), LATENT)  # the old latents (and clusters made from them) give way
    record_stage(archive.sample_path(key), "encode", recorded)
    archive.set_status(key, "encoded", encoder_id=model_id)


def _epoch_progress(bar: ProgressBar):
    """After each epoch: its loss beside the bar, and its line in a log."""

    def done(record: dict[str, Any]) -> None:
        bar.update(0, postfix=f"epoch {record['epoch']}/{record['epochs']} loss {record['loss']:.4f}")
        if not bar.shows_bar:
            bar.write(_epoch_line(record))

    return done


def _epoch_line(record: dict[str, Any]) -> str:
    rate = f", {record['grains_per_s']:.1f} grains/s" if record.get("grains_per_s") else ""
    return (f"train: epoch {record['epoch']}/{record['epochs']} loss {record['loss']:.5f} "
            f"(mse {record['mse']:.5f}, kl {record['kl']:.2f}) on {record['grains']} grains{rate}")


def _say(quiet: bool, message: str) -> None:
    if not quiet:
        print(message, file=sys.stderr, flush=True)
