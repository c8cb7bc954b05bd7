"""The cluster stage: fit (or reuse) the archive's K-means model, label every grain, count, map.

Orchestration only: the fit streams latents in the calling process (one sequential pass, bounded
memory, with progress lines); labelling is one Dask task per sample, each writing its own
``cluster``; metadata (model files, ``cluster`` arrays, status, settings) is written here.
"""
from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np

from catalog import Archive, SampleKey, create_variables, read_attrs, record_stage
from catalog.store import array_chunks, array_names, array_shape, drop_variables, intact, staged_name, swap_in
from sedarchive.clustering.model import (
    CURRENT_KEY,
    ClusteringError,
    KMeansModel,
    current_model,
    model_dir,
    save_model,
    update_current,
)
from sedarchive.dask.tasks import TaskReport, run_tasks
from sedarchive.settings_files import SettingsError, check_keys, read_settings_file


class ClusterSettingsError(SettingsError, ClusteringError):
    """A cluster settings file that cannot be used (a settings error and a clustering error alike)."""


@dataclass
class ClusterSettings:
    """Settings of the cluster stage (defaults follow the paper: K = 100 overclustering).

    ``refit`` fits a new model even when one exists for the samples' encoder; ``assign_only`` refuses
    to fit (an error without a model). With neither, an existing model of the same encoder is reused.
    ``proxies`` maps a proxy name to ``{numerator: [classes], denominator: [classes]}`` (None: defaults).
    ``morphometrics``: the share of the feature variance given to the standardised morphometrics
    (size, elongation, solidity, colour) beside the latent, where the stores have them; 0 clusters
    the latent alone (the paper). The recipe is recorded in the model and used for every later assignment
    (:mod:`.features`).
    """

    k: int = 100
    batch_size: int = 4096
    max_epochs: int = 3
    tol: float = 1e-4
    init_size: int = 0  # grains for the starting centres; 0: max(20 k, 3 batch_size)
    include_flagged: bool = False  # chopped and clump grains take part in the fit
    seed: int = 0
    refit: bool = False
    assign_only: bool = False
    umap_points: int = 50_000  # 0: no map
    umap_all: bool = False
    proxies: dict[str, dict[str, list[str]]] | None = None
    threads: int = 0  # BLAS/OpenMP threads of the fit in this process; 0: the libraries' default
    morphometrics: float = 0.0  # README "Grain features": no gain with the default (contrastive) encoder

    def fit_settings(self) -> dict[str, Any]:
        """What determines the model (recorded in the model folder and the stores)."""
        keep = ("k", "batch_size", "max_epochs", "tol", "init_size", "include_flagged", "seed", "morphometrics")
        return {k: getattr(self, k) for k in keep}

    @classmethod
    def from_file(cls, path: str | Path, **overrides: Any) -> ClusterSettings:
        """Settings from a YAML or TOML file (keys as the fields), then ``overrides``."""
        raw = read_settings_file(path, "cluster", section="cluster", error=ClusterSettingsError)
        check_keys(raw, {f.name for f in fields(cls)}, f"cluster settings {path}", error=ClusterSettingsError)
        raw.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**raw)

    def check(self) -> None:
        if self.k < 2 or self.batch_size < 1 or self.max_epochs < 1 or self.umap_points < 0:
            raise ClusteringError(f"cluster settings: need k >= 2, batch_size >= 1, max_epochs >= 1, "
                                  f"umap_points >= 0 (got k={self.k}, batch_size={self.batch_size}, "
                                  f"max_epochs={self.max_epochs}, umap_points={self.umap_points})")
        if not 0 <= self.morphometrics < 1:
            raise ClusteringError(f"cluster settings: morphometrics {self.morphometrics} is not in [0, 1) "
                                  f"(the share of the feature variance given to size, shape and colour)")
        if self.refit and self.assign_only:
            raise ClusteringError("--refit and --assign-only exclude each other")


def encoder_of(archive: Archive, keys: Sequence[SampleKey]) -> str | None:
    """The one encoder whose latents the samples hold; an error naming the culprits otherwise."""
    by_encoder: dict[str | None, list[str]] = {}
    for key in keys:
        path = archive.sample_path(key)
        if "latent" not in array_names(path):
            raise ClusteringError(f"sample {key.name} has no latents; run `sedarchive encode` first")
        by_encoder.setdefault(read_attrs(path).get("encoder_id"), []).append(key.name)
    if len(by_encoder) > 1:
        parts = "; ".join(f"{enc}: {', '.join(names[:3])}{'...' if len(names) > 3 else ''}"
                          for enc, names in by_encoder.items())
        raise ClusteringError(f"samples were encoded by different encoders ({parts}); re-encode them with one")
    return next(iter(by_encoder), None)


def fit_model(archive: Archive, keys: Sequence[SampleKey], settings: ClusterSettings, encoder_id: str | None,
              *, quiet: bool = False) -> KMeansModel:
    """Stream the latents of ``keys`` through MiniBatchKMeans; returns the (unsaved) model."""
    from sedarchive.clustering.features import FeatureRecipe, fit_recipe, morphometric_columns
    from sedarchive.clustering.kmeans import fit_streamed, initial_centres
    from sedarchive.clustering.latents import LatentSource

    paths = [archive.sample_path(k) for k in keys]
    source = LatentSource(paths, include_flagged=settings.include_flagged)
    columns = morphometric_columns(paths) if settings.morphometrics > 0 else ()
    if source.n_grains < settings.k:
        raise ClusteringError(f"{source.n_grains} grains in {len(keys)} samples: fewer than K = {settings.k} "
                              f"clusters (lower --k)")
    rng = np.random.default_rng(settings.seed)
    init_size = settings.init_size or max(20 * settings.k, 3 * settings.batch_size)
    recipe = FeatureRecipe(source.latent_dim)
    if columns:  # the recipe's numbers come from the grains that start the fit
        source.recipe, source.transform = FeatureRecipe(source.latent_dim, columns, settings.morphometrics), False
        raw = source.sample(init_size, rng)
        recipe = fit_recipe(raw, source.latent_dim, columns, settings.morphometrics)
        source.recipe, source.transform = recipe, True
        start = recipe.apply(raw)
    else:
        start = source.sample(init_size, rng)
    if len(start) < settings.k:
        raise ClusteringError(f"only {len(start)} grains with finite latents: fewer than K = {settings.k}")
    say = None if quiet else (lambda msg: print(f"cluster: {msg}", file=sys.stderr, flush=True))
    if say:
        say(f"fitting K = {settings.k} on {source.n_grains} grains of {len(keys)} samples")
    from threadpoolctl import threadpool_limits

    with threadpool_limits(settings.threads or None):
        init = initial_centres(start, settings.k, settings.seed)
        fit = fit_streamed(lambda epoch: source.batches(settings.batch_size, rng), init,
                           batch_size=settings.batch_size, max_epochs=settings.max_epochs, tol=settings.tol,
                           seed=settings.seed, progress=say)
    info = {"settings": settings.fit_settings(), "n_grains_fit": fit.n_grains, "n_samples_fit": len(keys),
            "mean_sq_distance": fit.mean_sq_distance, "n_epochs": fit.n_epochs, "n_batches": fit.n_batches}
    if recipe.uses_morphometrics:
        info["features"] = recipe.to_dict()
    return KMeansModel(fit.centres, encoder_id, info=info)


def run_stage(archive: Archive, keys: Sequence[SampleKey], client: Any, settings: ClusterSettings | None = None, *,
              quiet: bool = False) -> TaskReport:
    """Cluster the selected samples; resumable (samples labelled by the current model are skipped).

    Fits a model when there is none for the samples' encoder or ``settings.refit``; then labels
    every grain of every selected sample and writes the UMAP map. Counting (``proportions.zarr``)
    is not clustering's business: the pipeline and the command call it afterwards.
    """
    settings = settings if settings is not None else ClusterSettings()  # None: the stage's defaults
    settings.check()
    from catalog import status_rank

    keys = list(keys)
    not_ready = [k.name for k in keys if status_rank(read_attrs(archive.sample_path(k)).get("status", "acquiring"))
                 < status_rank("encoded")]
    if not_ready:
        raise ClusteringError(f"sample {not_ready[0]} is not encoded yet"
                              + (f" (and {len(not_ready) - 1} more)" if len(not_ready) > 1 else "")
                              + "; run `sedarchive encode` first")
    if not keys:
        return TaskReport()
    encoder_id = encoder_of(archive, keys)
    model = current_model(archive)
    usable = model is not None and model.encoder_id == encoder_id
    if settings.assign_only and not usable:
        raise ClusteringError(f"--assign-only: no K-means model for encoder {encoder_id} in {archive.models_dir}")
    if settings.refit or not usable:
        model = fit_model(archive, keys, settings, encoder_id, quiet=quiet)
        save_model(archive, model, make_current=False)  # current only once every sample is labelled
    elif model.latent_dim != _n_features(archive, keys[0]):
        raise ClusteringError(f"the K-means model takes {model.latent_dim} latent features, {keys[0].name} "
                              f"{_n_features(archive, keys[0])}; run with --refit")
    report = assign(archive, keys, client, model, settings, quiet=quiet, all_or_none=True)
    if report.failures:
        return report  # nothing changed: the old model, labels and map stay current
    update_current(archive, {CURRENT_KEY: model_dir(archive, model.id).name})
    _finish(archive, settings, quiet)
    return report


def assign(archive: Archive, keys: Sequence[SampleKey], client: Any, model: KMeansModel,
           settings: ClusterSettings | None = None, *, quiet: bool = False, force: bool = False,
           all_or_none: bool = False) -> TaskReport:
    """Label the grains of ``keys`` with ``model`` on Dask (``client=None``: here, one after another).

    Labels are written beside the old ones (``cluster.next``) and swapped in when a sample is done;
    with ``all_or_none`` none is swapped in unless every sample succeeded (one model for all).
    """
    from sedarchive.clustering.latents import assign_sample, n_grains

    recorded = {**(settings or ClusterSettings()).fit_settings(), "kmeans_id": model.id}
    todo = {}
    report = TaskReport()
    for key in keys:
        path = archive.sample_path(key)
        attrs = read_attrs(path)
        if (not force and attrs.get("status") == "clustered" and attrs.get("kmeans_id") == model.id
                and intact(path, "cluster")):
            report.results[key] = "already clustered"
            continue
        n = n_grains(path)
        chunk = _latent_chunk(path) if n else 1
        create_variables(path, {staged_name("cluster"): (("particle",), (n,), np.int32, (chunk,))},
                         fill_values={staged_name("cluster"): -1})
        todo[key] = (str(path), str(model_dir(archive, model.id)), 65536, staged_name("cluster"))
    if client is None:
        for key, args in todo.items():
            try:
                report.results[key] = assign_sample(*args)
            except Exception as err:  # noqa: BLE001 - one bad sample does not stop the others
                from sedarchive.dask.tasks import one_line

                report.failures[key] = one_line(err)
    else:
        done = run_tasks(client, assign_sample, todo, label="cluster", quiet=quiet)
        report.results.update(done.results)
        report.failures.update(done.failures)
    for key in todo:
        if key in report.failures or (all_or_none and report.failures):
            drop_variables(archive.sample_path(key), [staged_name("cluster")])
            continue
        path = archive.sample_path(key)
        if read_attrs(path).get("status") == "clustered":  # a kill during the swap: labelled again next run
            archive.set_status(key, "encoded")
        swap_in(path, "cluster")
        record_stage(path, "cluster", recorded)
        archive.set_status(key, "clustered", kmeans_id=model.id)
    return report


def _finish(archive: Archive, settings: ClusterSettings, quiet: bool) -> None:
    from sedarchive.clustering.umap_map import build_map

    model = current_model(archive)
    rows = archive.samples(status="clustered")
    keys = [row.key for row in rows if read_attrs(row.path).get("kmeans_id") == model.id]
    say = None if quiet else (lambda msg: print(f"cluster: {msg}", file=sys.stderr, flush=True))
    if say and len(keys) < len(rows):
        say(f"{len(rows) - len(keys)} samples are labelled by an older model and left out of proportions.zarr; "
            f"run `sedarchive cluster ARCHIVE --assign-only` without --core/--depth to label them anew")
    if settings.umap_points:
        signature = hashlib.sha256(json.dumps([model.id, sorted(k.name for k in keys), settings.umap_points,
                                               settings.umap_all, settings.seed]).encode()).hexdigest()[:16]
        if _map_signature(archive) == signature:
            return  # the map already shows these samples with this model: resumed run
        try:
            build_map(archive, keys, n_points=settings.umap_points, all_points=settings.umap_all,
                      seed=settings.seed, progress=say,
                      attrs={"kmeans_id": model.id, "signature": signature, "settings": json.dumps(asdict(settings))})
        except ValueError as err:
            if say:
                say(f"no UMAP map: {err}")


def _map_signature(archive: Archive) -> str | None:
    path = archive.umap_path
    if not path.exists():
        return None
    return read_attrs(path).get("signature")


def _latent_chunk(path: Path) -> int:
    return array_chunks(path, "latent")[0]


def _n_features(archive: Archive, key: SampleKey) -> int:
    return array_shape(archive.sample_path(key), "latent")[1]
