"""The streamed K-means fit against the in-memory one, assignment, and the model on disk."""
from __future__ import annotations

import json

import numpy as np
import pytest
from latent_archive import make_archive
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score

from catalog import SampleKey, read_array
from sedarchive.clustering.kmeans import assign_grains, nearest_centre
from sedarchive.clustering.latents import LatentSource
from sedarchive.clustering.model import (
    ClusteringError,
    KMeansModel,
    current_model,
    load_model,
    read_current,
    save_model,
    update_current,
)
from sedarchive.clustering.stage import ClusterSettings, fit_model


def _plan(n_samples: int, n: int) -> dict:
    return {SampleKey("C1", 10 * i, 10 * i + 2): n for i in range(n_samples)}


def test_streamed_fit_matches_in_memory_kmeans(tmp_path):
    plan = _plan(6, 500)
    archive, truth = make_archive(tmp_path, plan, n_blobs=8, n_features=16, seed=3)
    settings = ClusterSettings(k=8, batch_size=128, init_size=400, max_epochs=3)
    model = fit_model(archive, list(plan), settings, "enc-test", quiet=True)
    assert model.info["n_batches"] > 20  # really streamed in many small batches

    x = np.concatenate([read_array(archive.sample_path(k), "latent") for k in plan])
    full = KMeans(n_clusters=8, n_init=4, random_state=0).fit(x)
    streamed_labels = model.assign(x)
    streamed_inertia = float(nearest_centre(x, model.centres)[1].sum())
    assert streamed_inertia == pytest.approx(full.inertia_, rel=0.01)
    assert adjusted_rand_score(full.labels_, streamed_labels) > 0.99
    assert adjusted_rand_score(np.concatenate(list(truth.values())), streamed_labels) > 0.99


def test_batches_cover_every_eligible_grain_once(tmp_path):
    plan = _plan(3, 150)
    archive, _ = make_archive(tmp_path, plan, flag_every=5)
    source = LatentSource([archive.sample_path(k) for k in plan], block_rows=64)
    rows = np.concatenate(list(source.batches(50, np.random.default_rng(0), buffer_rows=100)))
    expected = np.concatenate([read_array(archive.sample_path(k), "latent")[np.arange(150) % 5 != 0] for k in plan])
    assert rows.shape == expected.shape == (3 * 120, 8)
    # same rows, other order
    assert np.allclose(np.sort(rows, axis=0), np.sort(expected, axis=0))
    assert not np.allclose(rows, expected)


def test_fit_refuses_fewer_grains_than_clusters(tmp_path):
    plan = _plan(1, 20)
    archive, _ = make_archive(tmp_path, plan)
    with pytest.raises(ClusteringError, match="fewer than K = 50"):
        fit_model(archive, list(plan), ClusterSettings(k=50), "enc-test", quiet=True)


def test_non_finite_latents_are_not_assigned():
    centres = np.array([[0, 0], [5, 5]], np.float32)
    x = np.array([[0.1, 0], [np.inf, 1], [4, 4]], np.float32)
    assert assign_grains(x, centres, np.array([-1, -1]), np.array([False, False])).tolist() == [0, -1, 1]


def test_model_round_trip_without_pickle_keeps_other_current_keys(tmp_path):
    from catalog import Archive

    archive = Archive.create(tmp_path)
    update_current(archive, {"encoder": "encoder-abc"})
    model = KMeansModel(np.arange(12, dtype=np.float32).reshape(3, 4), "abc", info={"settings": {"k": 3}})
    folder = save_model(archive, model)
    assert sorted(p.name for p in folder.iterdir()) == ["centres.npy", "settings.json"]
    np.load(folder / "centres.npy", allow_pickle=False)  # plain array, no pickle
    assert read_current(archive) == {"encoder": "encoder-abc", "kmeans": folder.name}
    again = load_model(archive, model.id)
    assert again.id == model.id and np.array_equal(again.centres, model.centres)
    assert current_model(archive).encoder_id == "abc"
    assert json.loads((folder / "settings.json").read_text())["settings"] == {"k": 3}


def test_damaged_model_gives_clear_error(tmp_path):
    from catalog import Archive

    archive = Archive.create(tmp_path)
    folder = save_model(archive, KMeansModel(np.ones((2, 3), np.float32), None))
    (folder / "centres.npy").write_bytes(b"garbage")
    with pytest.raises(ClusteringError, match="cannot be read"):
        current_model(archive)
