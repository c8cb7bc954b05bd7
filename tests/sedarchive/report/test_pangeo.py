"""Notebook use: all grains of a selection as one lazy Dataset, CF attributes, netCDF, intake entries."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
import xarray as xr

import sedarchive
from catalog import SampleKey, read_array


def test_open_grains_combines_a_selection_lazily(clustered_archive):
    grains = sedarchive.open_grains(clustered_archive.root, core="AI-3352", depth="105-125")
    keys = [SampleKey("AI-3352", 110, 112), SampleKey("AI-3352", 120, 122)]
    n = [len(read_array(clustered_archive.sample_path(k), "cluster")) for k in keys]
    assert grains.sizes["grain"] == sum(n)
    assert grains["latent"].chunks is not None  # lazy, Dask-backed
    assert set(grains["sample"].values) == {k.name for k in keys} and set(grains["core"].values) == {"AI-3352"}
    for name in ("sample", "core", "depth_top_cm", "depth_bottom_cm", "particle"):
        assert name in grains.coords
    assert not set(grains.dims) & set(grains.data_vars)  # no name is a dimension and a per-grain variable
    got = grains["cluster"].where(grains["sample"] == keys[1].name, drop=True).values
    assert np.array_equal(got, read_array(clustered_archive.sample_path(keys[1]), "cluster"))
    assert grains["depth_top_cm"].attrs["positive"] == "down" and grains["depth_top_cm"].attrs["units"] == "cm"
    means = grains["size_um"].groupby("depth_top_cm").mean() if "size_um" in grains else grains["area_px"].groupby("depth_top_cm").mean()
    assert means.sizes["depth_top_cm"] == 2


def test_open_mfdataset_with_the_ready_preprocess(clustered_archive):
    paths = [str(clustered_archive.sample_path(k)) for k in clustered_archive.keys(core="B-7")]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = xr.open_mfdataset(paths, engine="zarr", preprocess=sedarchive.grain_view, combine="nested",
                               concat_dim="grain", backend_kwargs={"consolidated": False}, combine_attrs="drop")
    assert set(ds["core"].values) == {"B-7"} and ds.sizes["grain"] == sum(
        len(read_array(p, "cluster")) for p in paths)


def test_netcdf_round_trip_and_no_dict_attributes(clustered_archive, tmp_path):
    from catalog.cores import CoreInfo, set_cores

    set_cores(clustered_archive.root, [CoreInfo("B-7", 10.5, -20.25, 3000.0, "2020-01-02", "M100")])
    grains = sedarchive.open_grains(clustered_archive.root, core="B-7")
    grains = grains.drop_vars(["particle_images"])
    assert float(grains["water_depth_m"][0]) == 3000.0 and grains["latitude"].attrs["units"] == "degrees_north"
    for var in [grains, *grains.variables.values()]:
        assert not any(isinstance(v, (dict, bool)) for v in var.attrs.values())
    grains.load().to_netcdf(tmp_path / "grains.nc")
    back = xr.open_dataset(tmp_path / "grains.nc")
    assert back.sizes["grain"] == grains.sizes["grain"]
    ds = sedarchive.open_proportions(clustered_archive.root)
    ds.to_netcdf(tmp_path / "proportions.nc")


def test_proportions_use_grain_class_and_old_archives_still_read(clustered_archive):
    from sedarchive.counting import labels
    from sedarchive.counting.proportions import write_proportions

    labels.name_cluster(clustered_archive, 0, "quartz")
    write_proportions(clustered_archive)
    ds = sedarchive.open_proportions(clustered_archive.root)
    assert "grain_class" in ds.dims and "class" not in ds.dims
    assert int(ds["class_count"].sel(grain_class="quartz").sum()) > 0
    # an archive written before the rename: dimension `class`
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        old = ds.rename({"grain_class": "class"})
        from catalog.files import write_dataset

        write_dataset(old, clustered_archive.proportions_path)
    again = sedarchive.open_proportions(clustered_archive.root)
    assert "grain_class" in again.dims and int(again["class_count"].sel(grain_class="quartz").sum()) > 0


def test_intake_catalog_has_proportions_and_umap(clustered_archive):
    from sedarchive.counting.proportions import write_proportions

    write_proportions(clustered_archive)
    cat = clustered_archive.intake_catalog()
    assert "proportions" in list(cat)
    ds = cat["proportions"].read()
    assert "count" in ds and ds.sizes["sample"] == len(clustered_archive.keys())
    assert all(r.name != "proportions" for r in clustered_archive.samples())  # results are not samples
    if clustered_archive.umap_path.exists():
        assert "umap" in list(cat)
    clustered_archive.rebuild_catalog()
    assert "proportions" in list(clustered_archive.intake_catalog())


def test_open_grains_says_when_nothing_matched(clustered_archive):
    from catalog.errors import SedarchiveError

    with pytest.raises(SedarchiveError, match="no sample with grains"):
        sedarchive.open_grains(clustered_archive.root, core="NOPE")
