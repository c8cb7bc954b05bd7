"""split_cluster: one mixed cluster becomes two pure ones; nothing else moves."""
from __future__ import annotations

import numpy as np
import pytest
from latent_archive import add_encoded_sample, blob_centres, make_archive

from catalog import SampleKey, read_array, read_attrs
from sedarchive.counting import labels as lab
from sedarchive.clustering import ClusterSettings, ClusteringError, current_model
from sedarchive.counting.decisions import split_cluster
from sedarchive.counting.stage import run_stage
from sedarchive.counting.results import open_proportions

PLAN = {SampleKey("S", 0, 1): 200, SampleKey("S", 1, 2): 180}


def test_split_a_mixed_cluster(tmp_path, dask_client):
    archive, truth = make_archive(tmp_path, PLAN, n_blobs=4, seed=11)
    run_stage(archive, list(PLAN), dask_client, ClusterSettings(k=3, umap_points=0), quiet=True)
    old = current_model(archive)
    before = {k: read_array(archive.sample_path(k), "cluster") for k in PLAN}
    all_c = np.concatenate(list(before.values()))
    all_t = np.concatenate(list(truth.values()))
    mixed = next(c for c in range(3) if len(np.unique(all_t[all_c == c])) == 2)
    lab.name_cluster(archive, mixed, "quartz")

    new_ids = split_cluster(archive, mixed, 2, client=dask_client)

    assert new_ids == [3, 4]
    model = current_model(archive)
    assert model.id != old.id and model.n_centres == 5
    assert model.retired.tolist() == [c == mixed for c in range(5)]
    assert model.parent.tolist()[3:] == [mixed, mixed]
    after = {k: read_array(archive.sample_path(k), "cluster") for k in PLAN}
    all_a = np.concatenate(list(after.values()))
    moved = all_c == mixed
    assert np.array_equal(all_a[~moved], all_c[~moved])  # other clusters untouched
    assert set(all_a[moved]) == {3, 4}
    for c in (3, 4):
        assert len(np.unique(all_t[all_a == c])) == 1  # each half is one kind
    assert all(read_attrs(archive.sample_path(k))["kmeans_id"] == model.id for k in PLAN)
    assert lab.load_labels(archive).clusters[mixed]["split_into"] == [3, 4]
    ds = open_proportions(archive)
    assert ds.sizes["cluster"] == 5 and int(ds["count"].sel(cluster=mixed).sum()) == 0

    # a new sample is assigned through the retired centre to its children, without refitting
    key = SampleKey("S", 2, 3)
    blob = np.random.default_rng(1).integers(0, 4, 60)
    add_encoded_sample(archive, key, blob, blob_centres(4, 8, 11), seed=5)
    run_stage(archive, [*PLAN, key], dask_client, ClusterSettings(assign_only=True, umap_points=0), quiet=True)
    assert current_model(archive).id == model.id
    new = read_array(archive.sample_path(key), "cluster")
    assert mixed not in new and set(new) <= {c for c in range(5) if c != mixed}


def test_split_refuses_bad_clusters(tmp_path):
    archive, _ = make_archive(tmp_path, {SampleKey("S", 0, 1): 40})
    with pytest.raises(ClusteringError, match="no K-means model"):
        split_cluster(archive, 0)
    run_stage(archive, archive.keys(), None, ClusterSettings(k=2, umap_points=0), quiet=True)
    with pytest.raises(ClusteringError, match="cluster 7 is not an active cluster"):
        split_cluster(archive, 7)
    with pytest.raises(ClusteringError, match="n must be at least 2"):
        split_cluster(archive, 0, 1)
