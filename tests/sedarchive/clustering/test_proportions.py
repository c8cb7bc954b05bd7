"""proportions.zarr: the contract's names, counts that add up, intervals, down-core selection."""
from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from latent_archive import make_archive

from catalog import SampleKey, read_array
from sedarchive.counting import labels as lab
from sedarchive.clustering import ClusterSettings, current_model
from sedarchive.counting.stage import run_stage
from sedarchive.errors import InputError
from sedarchive.counting.proportions import Proxy, proxies_from, wilson_interval, write_proportions
from sedarchive.counting.results import depth_profile, open_proportions

# three samples of core X given out of depth order, one of core Y
PLAN = {SampleKey("X", 20, 22): 150, SampleKey("X", 0, 2): 130, SampleKey("Y", 0, 5): 120, SampleKey("X", 10, 12): 140}


@pytest.fixture(scope="module")
def named(tmp_path_factory):
    archive, truth = make_archive(tmp_path_factory.mktemp("prop"), PLAN, flag_every=7, seed=5)
    run_stage(archive, list(PLAN), None, ClusterSettings(k=4, umap_points=0), quiet=True)
    model = current_model(archive)
    # name each cluster by the true kind (blob) most of its grains come from
    blob_of = {}
    for key, blob in truth.items():
        cluster = read_array(archive.sample_path(key), "cluster")
        for c in range(model.n_centres):
            blob_of.setdefault(c, []).extend(blob[cluster == c].tolist())
    kinds = ["quartz", "dark", "foram_intact", "foram_broken"]
    for c, blobs in blob_of.items():
        lab.name_cluster(archive, c, kinds[np.bincount(blobs).argmax()])
    write_proportions(archive)
    return archive, truth


def test_counts_without_labels_add_up(tmp_path):
    archive, truth = make_archive(tmp_path, PLAN, flag_every=7)
    run_stage(archive, list(PLAN), None, ClusterSettings(k=3, umap_points=0), quiet=True)
    ds = xr.open_zarr(archive.proportions_path)
    assert ds["count"].dims == ("sample", "cluster") and ds.sizes["cluster"] == 3
    for name in ("core", "depth_top_cm", "depth_bottom_cm"):
        assert ds[name].dims == ("sample",)
    assert "class_count" not in ds
    total = ds["count"].sum("cluster") + ds["n_flagged"] + ds["n_unassigned"]
    assert (total == ds["n_grains"]).all()
    for key, n in PLAN.items():
        row = ds.sel(sample=key.name)
        assert int(row["n_grains"]) == n
        assert int(row["flag_count"].sel(flag="chopped")) == len(range(0, n, 7)) == int(row["n_flagged"])


def test_named_proportions_have_contract_names_and_true_fractions(named):
    archive, truth = named
    ds = open_proportions(archive)
    for name in ("count", "class_count", "class_fraction", "class_fraction_lower", "class_fraction_upper",
                 "foram_fragmentation", "foram_fragmentation_lower", "foram_fragmentation_upper",
                 "biogenic_terrigenous", "biogenic_terrigenous_lower", "biogenic_terrigenous_upper"):
        assert name in ds, name
    assert ds["class_count"].dims == ("sample", "grain_class")
    assert (ds["class_count"].sum("grain_class") == ds["count"].sum("cluster")).all()
    kinds = ["quartz", "dark", "foram_intact", "foram_broken"]
    for key, blob in truth.items():
        plain = blob[np.arange(len(blob)) % 7 != 0]
        expected = np.bincount(plain, minlength=4)
        got = ds["class_count"].sel(sample=key.name, grain_class=kinds).values
        assert np.array_equal(got, expected)


def test_intervals_contain_the_point_estimates(named):
    ds = open_proportions(named[0])
    frac = ds["class_fraction"]
    assert ((ds["class_fraction_lower"] <= frac) & (frac <= ds["class_fraction_upper"])).all()
    assert np.allclose(frac.sum("grain_class"), 1.0)
    for proxy in ("foram_fragmentation", "biogenic_terrigenous"):
        value = ds[proxy]
        assert np.isfinite(value).all()
        assert ((ds[f"{proxy}_lower"] <= value) & (value <= ds[f"{proxy}_upper"])).all()
        assert (ds[f"{proxy}_upper"] > ds[f"{proxy}_lower"]).all()
    counts = ds["class_count"].sel(sample="X_0-2cm")
    broken, intact = int(counts.sel(grain_class="foram_broken")), int(counts.sel(grain_class="foram_intact"))
    assert float(ds["foram_fragmentation"].sel(sample="X_0-2cm")) == pytest.approx(broken / (broken + intact))


def test_down_core_series(named):
    ds = open_proportions(named[0])
    series = ds.sel(sample=ds.core == "X").sortby("depth_top_cm")
    assert series["depth_top_cm"].values.tolist() == [0.0, 10.0, 20.0]
    profile = depth_profile(ds, "X")
    assert profile["sample"].values.tolist() == ["X_0-2cm", "X_10-12cm", "X_20-22cm"]
    assert profile["foram_fragmentation"].dims == ("sample",)
    with pytest.raises(InputError, match="core 'Z' is not in the proportions"):
        depth_profile(ds, "Z")


def test_relabelling_rewrites_proportions(named):
    archive, _ = named
    lab.exclude_cluster(archive, 0, "debris")
    write_proportions(archive)
    ds = open_proportions(archive)
    assert str(ds["cluster_class"].values[0]) == "(excluded)"
    assert (ds["n_classified"] == ds["count"].sum("cluster") - ds["count"].sel(cluster=0)).all()


def test_wilson_interval_and_proxy_settings():
    p, lo, hi = wilson_interval(np.array([0, 5, 10]), np.array([10, 10, 10]))
    assert p.tolist() == [0.0, 0.5, 1.0]
    assert lo[0] == 0.0 and hi[2] == 1.0 and 0 < lo[1] < 0.5 < hi[1] < 1
    assert np.isnan(wilson_interval(np.array([0]), np.array([0]))[0][0])
    with pytest.raises(InputError, match="all inside the denominator"):
        Proxy("odd", ("a", "b"), ("b", "c")).kind
    with pytest.raises(InputError, match="proxy 'empty' needs"):
        proxies_from({"empty": {"numerator": [], "denominator": ["quartz"]}})


def test_names_of_an_older_model_do_not_carry_over_to_a_refit(tmp_path):
    archive, _ = make_archive(tmp_path, {SampleKey("X", 0, 1): 60, SampleKey("X", 1, 2): 60})
    run_stage(archive, archive.keys(), None, ClusterSettings(k=3, umap_points=0), quiet=True)
    old = current_model(archive).id
    lab.name_cluster(archive, 0, "quartz")
    assert lab.load_labels(archive).kmeans_id == old
    with pytest.warns(UserWarning, match=f"labels.yaml names the clusters of K-means model {old}"):
        run_stage(archive, archive.keys(), None, ClusterSettings(k=3, seed=4, refit=True, umap_points=0), quiet=True)
    ds = open_proportions(archive)
    assert "class_count" not in ds and ds.attrs["labels_note"]
    with pytest.raises(lab.LabelsError, match="move it aside"):
        lab.name_cluster(archive, 1, "dark")
