"""Splitting one cluster of the current model into several (the review page's "split" button)."""
from __future__ import annotations

from typing import Any

import numpy as np

from catalog import Archive, read_attrs
from catalog.store import array_names
from sedarchive.clustering.kmeans import split_centres
from sedarchive.clustering.model import (
    CURRENT_KEY,
    ClusteringError,
    KMeansModel,
    current_model,
    save_model,
    update_current,
)
from sedarchive.dask.tasks import TaskReport


def split_cluster(archive: Archive, cluster_id: int, n: int = 2, *, client: Any = None, seed: int = 0,
                  max_grains: int = 200_000, quiet: bool = True) -> list[int]:
    """Re-cluster the grains of one cluster into ``n`` new clusters; returns the new cluster ids.

    The new centres get the ids after the existing ones; the old centre is retired (it stays in the
    model so that assigning new samples still descends through it), the model is saved under its new
    id and made current, and ``cluster`` is rewritten in every sample labelled by the old model.
    ``client=None`` labels the samples here, one after another. Recording the split in labels.yaml
    and rewriting proportions.zarr is counting's part: :func:`sedarchive.counting.decisions.split_cluster`.
    """
    from sedarchive.clustering.latents import LatentSource
    from sedarchive.clustering.stage import assign

    old = current_model(archive)
    if old is None:
        raise ClusteringError(f"{archive.root}: no K-means model to split; run `sedarchive cluster` first")
    cluster_id = int(cluster_id)
    if not 0 <= cluster_id < old.n_centres or old.retired[cluster_id]:
        raise ClusteringError(f"cluster {cluster_id} is not an active cluster of model {old.id} "
                              f"(ids 0..{old.n_centres - 1}, retired: {np.flatnonzero(old.retired).tolist()})")
    if n < 2:
        raise ClusteringError(f"split cluster {cluster_id}: n must be at least 2 (got {n})")
    keys = [row.key for row in archive.samples(status="clustered")
            if read_attrs(row.path).get("kmeans_id") == old.id and "cluster" in array_names(row.path)]
    settings_fit = old.info.get("settings", {})
    source = LatentSource([archive.sample_path(k) for k in keys],
                          include_flagged=bool(settings_fit.get("include_flagged", False)),
                          recipe=old.recipe(old.latent_dim))  # the features the model was fitted on
    members = source.latents_where("cluster", cluster_id, max_grains, np.random.default_rng(seed))
    if len(members) < n:
        raise ClusteringError(f"cluster {cluster_id} has {len(members)} grains: too few to split into {n}")
    children = split_centres(members, n, seed)
    new_ids = list(range(old.n_centres, old.n_centres + n))
    retired = np.concatenate([old.retired, np.zeros(n, bool)])
    retired[cluster_id] = True
    info = {**old.info, "lineage": [*old.info.get("lineage", []), old.id], "splits": [*old.info.get("splits", []),
                                                                {"cluster": cluster_id, "into": new_ids}]}
    new = KMeansModel(np.concatenate([old.centres, children]), old.encoder_id,
                      np.concatenate([old.parent, np.full(n, cluster_id)]), retired, info)
    folder = save_model(archive, new, make_current=False)  # current once every sample is relabelled
    report: TaskReport = assign(archive, keys, client, new, _settings_of(old), quiet=quiet, force=True,
                                all_or_none=True)
    if report.failures:
        key, reason = next(iter(report.failures.items()))
        raise ClusteringError(f"split cluster {cluster_id}: labelling {key.name} failed: {reason} "
                              f"(nothing changed; the old model and labels stay current)")
    update_current(archive, {CURRENT_KEY: folder.name})
    return new_ids


def _settings_of(model: KMeansModel):
    from sedarchive.clustering.stage import ClusterSettings

    known = ClusterSettings().fit_settings()
    return ClusterSettings(**{k: v for k, v in model.info.get("settings", {}).items() if k in known})
