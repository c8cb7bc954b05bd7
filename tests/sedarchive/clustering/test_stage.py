"""The cluster stage on a real Dask cluster: fit, label, resume, assign-only, refit, bad input."""
from __future__ import annotations

import hashlib

import numpy as np
import pytest
import xarray as xr
from latent_archive import add_encoded_sample, blob_centres, make_archive

from catalog import SampleKey, read_array, read_attrs
from sedarchive.clustering import ClusterSettings, ClusteringError, current_model, run_stage
from sedarchive.clustering.model import read_current

PLAN = {SampleKey("A", 0, 2): 240, SampleKey("A", 2, 4): 200, SampleKey("B", 5, 6): 160}


def _purity(labels: np.ndarray, truth: np.ndarray) -> float:
    hits = sum(np.bincount(truth[labels == c]).max() for c in np.unique(labels))
    return hits / len(labels)


def _model_fingerprint(archive) -> dict[str, str]:
    return {p.relative_to(archive.models_dir).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(archive.models_dir.rglob("*")) if p.is_file() and not p.name.startswith(".")}


@pytest.fixture
def clustered(tmp_path, dask_client):
    archive, truth = make_archive(tmp_path / "arc", PLAN, flag_every=8)
    report = run_stage(archive, list(PLAN), dask_client, ClusterSettings(k=4, umap_points=0), quiet=True)
    assert report.ok, report.failures
    return archive, truth


def test_every_grain_is_labelled_in_its_store(clustered):
    archive, truth = clustered
    model = current_model(archive)
    for key, blob in truth.items():
        path = archive.sample_path(key)
        attrs = read_attrs(path)
        assert attrs["status"] == "clustered" and attrs["kmeans_id"] == model.id
        assert attrs["cluster_settings"]["k"] == 4
        cluster = xr.open_zarr(path)["cluster"]
        assert cluster.dims == ("particle",) and cluster.dtype == np.int32
        assert (cluster.values >= 0).all()
        assert _purity(cluster.values, blob) == 1.0
    assert archive.samples(status="clustered")[0].status == "clustered"


@pytest.mark.slow  # UMAP's numba compilation
def test_umap_map_has_the_contract_names(clustered, dask_client):
    from sedarchive.clustering import build_map

    archive, _ = clustered
    assert not (archive.root / "umap.zarr").exists()  # umap_points=0: no map
    run_stage(archive, list(PLAN), dask_client, ClusterSettings(k=4, umap_points=150), quiet=True)
    stamp = (archive.root / "umap.zarr" / "zarr.json").stat().st_mtime_ns
    run_stage(archive, list(PLAN), dask_client, ClusterSettings(k=4, umap_points=150), quiet=True)
    assert (archive.root / "umap.zarr" / "zarr.json").stat().st_mtime_ns == stamp  # resumed: map kept
    umap = xr.open_zarr(archive.root / "umap.zarr")
    for name in ("umap", "cluster", "sample", "core", "depth_top_cm", "depth_bottom_cm", "particle"):
        assert name in umap, name
    assert umap["umap"].dims == ("point", "dim") and umap.sizes == {"point": 150, "dim": 2}
    # every point's cluster is the one written in its sample store
    for i in range(0, 150, 37):
        key = SampleKey.from_name(str(umap["sample"].values[i]))
        stored = read_array(archive.sample_path(key), "cluster")[int(umap["particle"].values[i])]
        assert stored == umap["cluster"].values[i]
    assert umap["fitted"].all()
    build_map(archive, list(PLAN), n_points=150, all_points=True, seed=0)  # the rest transformed onto the map
    umap = xr.open_zarr(archive.root / "umap.zarr")
    assert umap.sizes["point"] == sum(PLAN.values()) and int(umap["fitted"].sum()) == 150
    pairs = set(zip(umap["sample"].values.tolist(), umap["particle"].values.tolist()))
    assert len(pairs) == sum(PLAN.values())  # every grain exactly once


def test_assign_only_keeps_the_model_and_labels_new_samples(clustered, dask_client):
    archive, _ = clustered
    before = _model_fingerprint(archive)
    model = current_model(archive)
    new_key = SampleKey("B", 6, 7)
    blob = np.random.default_rng(9).integers(0, 4, 90)
    latents = add_encoded_sample(archive, new_key, blob, blob_centres(4, 8, 0), seed=77)
    report = run_stage(archive, [*PLAN, new_key], dask_client, ClusterSettings(k=4, assign_only=True, umap_points=0),
                       quiet=True)
    assert report.ok
    assert report.results[new_key] == 90
    assert all(report.results[k] == "already clustered" for k in PLAN)  # resumed: nothing redone
    assert _model_fingerprint(archive) == before
    assert current_model(archive).id == model.id
    written = read_array(archive.sample_path(new_key), "cluster")
    assert np.array_equal(written, model.assign(latents))
    assert _purity(written, blob) == 1.0


def test_a_model_is_reused_by_default_and_refit_on_request(clustered, dask_client):
    archive, _ = clustered
    first = current_model(archive).id
    run_stage(archive, list(PLAN), dask_client, ClusterSettings(k=4, umap_points=0), quiet=True)
    assert current_model(archive).id == first
    run_stage(archive, list(PLAN), dask_client, ClusterSettings(k=5, refit=True, umap_points=0), quiet=True)
    second = current_model(archive)
    assert second.id != first and second.n_centres == 5
    assert all(read_attrs(archive.sample_path(k))["kmeans_id"] == second.id for k in PLAN)
    assert read_current(archive)["kmeans"] == f"kmeans-{second.id}"


def test_assign_only_without_a_model_is_refused(tmp_path, dask_client):
    archive, _ = make_archive(tmp_path, {SampleKey("A", 0, 1): 30})
    with pytest.raises(ClusteringError, match="--assign-only: no K-means model"):
        run_stage(archive, archive.keys(), dask_client, ClusterSettings(k=2, assign_only=True), quiet=True)
    assert not (archive.models_dir / "current.json").exists()


def test_samples_of_different_encoders_are_refused(tmp_path, dask_client):
    archive, _ = make_archive(tmp_path, {SampleKey("A", 0, 1): 30})
    add_encoded_sample(archive, SampleKey("A", 1, 2), np.zeros(30, int), blob_centres(4, 8), seed=1, encoder_id="other")
    with pytest.raises(ClusteringError, match="different encoders"):
        run_stage(archive, archive.keys(), dask_client, ClusterSettings(k=2), quiet=True)
    assert all(read_attrs(archive.sample_path(k))["status"] == "encoded" for k in archive.keys())


def test_samples_not_encoded_are_refused(tmp_path, dask_client):
    archive, _ = make_archive(tmp_path, {SampleKey("A", 0, 1): 30})
    key = SampleKey("A", 1, 2)
    archive.create_sample(key, 1, 1, 8, 8)
    with pytest.raises(ClusteringError, match=r"sample A_1-2cm is not encoded yet"):
        run_stage(archive, archive.keys(), dask_client, ClusterSettings(k=2), quiet=True)


def test_settings_from_file_and_bad_settings(tmp_path):
    path = tmp_path / "cluster.yaml"
    path.write_text("k: 7\nproxies:\n  quartz_share: {numerator: [quartz], denominator: [quartz, dark]}\n")
    settings = ClusterSettings.from_file(path, seed=3)
    assert (settings.k, settings.seed, list(settings.proxies)) == (7, 3, ["quartz_share"])
    path.write_text("kk: 7\n")
    with pytest.raises(ClusteringError, match="unknown setting 'kk'"):
        ClusterSettings.from_file(path)
    with pytest.raises(ClusteringError, match="k >= 2"):
        ClusterSettings(k=1).check()
