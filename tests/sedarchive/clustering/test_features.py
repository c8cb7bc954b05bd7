"""Clustering features = latent + standardised morphometrics, with the recipe kept in the model."""
from __future__ import annotations

import json

import numpy as np
import pytest
from latent_archive import add_encoded_sample, blob_centres

from catalog import Archive, SampleKey, create_variables, read_array, write_region
from sedarchive.clustering import ClusterSettings, current_model, run_stage
from sedarchive.clustering.features import FeatureRecipe, fit_recipe, morphometric_columns
from sedarchive.clustering.kmeans import nearest_centre
from sedarchive.clustering.model import ClusteringError, KMeansModel, save_model

KEYS = [SampleKey("M", 0, 2), SampleKey("M", 2, 4)]


def _add(archive: Archive, key: SampleKey, kind: np.ndarray, seed: int) -> None:
    """Kinds 0/1 share a latent blob and differ by size and shape; kind 2 is its own blob."""
    centres = blob_centres(2, 8, seed=0)
    add_encoded_sample(archive, key, np.where(kind == 2, 1, 0), centres, seed=seed)
    rng = np.random.default_rng(seed + 50)
    n = len(kind)
    path = archive.sample_path(key)
    diameter = np.where(kind == 1, 300.0, 100.0) * rng.lognormal(0, 0.08, n)
    aspect = np.where(kind == 1, 2.5, 1.2) + rng.normal(0, 0.05, n)
    create_variables(path, {
        "equivalent_diameter_px": (("particle",), (n,), np.float32, (64,)),
        "aspect_ratio": (("particle",), (n,), np.float32, (64,)),
        "solidity": (("particle",), (n,), np.float32, (64,)),
        "mean_rgb": (("particle", "channel"), (n, 3), np.float32, (64, 3)),
    })
    write_region(path, "equivalent_diameter_px", 0, diameter.astype(np.float32))
    write_region(path, "aspect_ratio", 0, aspect.astype(np.float32))
    write_region(path, "solidity", 0, rng.uniform(0.9, 1.0, n).astype(np.float32))
    write_region(path, "mean_rgb", 0, rng.uniform(100, 120, (n, 3)).astype(np.float32))


@pytest.fixture
def archive(tmp_path):
    archive = Archive.create(tmp_path / "arc")
    kinds = {}
    for i, key in enumerate(KEYS):
        kinds[key] = np.random.default_rng(i).integers(0, 3, 300)
        _add(archive, key, kinds[key], seed=10 + i)
    return archive, kinds


def _purity(labels: np.ndarray, truth: np.ndarray) -> float:
    return sum(np.bincount(truth[labels == c]).max() for c in np.unique(labels)) / len(labels)


def test_morphometrics_separate_kinds_the_latent_cannot(archive):
    archive, kinds = archive
    truth = np.concatenate([kinds[k] for k in KEYS])
    purity = {}
    for weight in (0.0, 0.5):
        report = run_stage(archive, KEYS, None, ClusterSettings(k=3, umap_points=0, refit=True, morphometrics=weight),
                           quiet=True)
        assert report.ok, report.failures
        labels = np.concatenate([read_array(archive.sample_path(k), "cluster") for k in KEYS])
        purity[weight] = _purity(labels, truth)
    assert purity[0.5] > 0.98 > purity[0.0] + 0.15, purity
    model = current_model(archive)
    recipe = json.loads((archive.models_dir / model.folder_name / "settings.json").read_text())["features"]
    assert recipe["columns"] == ["equivalent_diameter_px", "aspect_ratio", "solidity", "mean_rgb"]
    assert recipe["weight"] == 0.5 and recipe["latent_dim"] == 8 and len(recipe["mean"]) == 6
    assert model.n_features == 14 and model.latent_dim == 8


def test_a_new_sample_is_assigned_with_the_fitted_recipe(archive):
    archive, kinds = archive
    report = run_stage(archive, KEYS, None, ClusterSettings(k=3, umap_points=0, morphometrics=0.5), quiet=True)
    assert report.ok, report.failures
    model = current_model(archive)
    # a new sample of large grains only: standardised on its own, its sizes would spread over the
    # whole scale; with the model's numbers they all stay large
    new = SampleKey("N", 0, 1)
    _add(archive, new, np.ones(120, np.int64), seed=99)
    report = run_stage(archive, [new], None, ClusterSettings(k=3, umap_points=0, assign_only=True), quiet=True)
    assert report.ok, report.failures
    assert current_model(archive).id == model.id
    labels = read_array(archive.sample_path(new), "cluster")
    recipe = model.recipe(8)
    expected = nearest_centre(recipe.apply(recipe.read(archive.sample_path(new), slice(None))), model.centres)[0]
    np.testing.assert_array_equal(labels, expected)
    big = [c for c in range(3) if np.mean(kinds[KEYS[0]][read_array(archive.sample_path(KEYS[0]), "cluster") == c] == 1) > 0.9]
    assert len(big) == 1 and np.all(labels == big[0])
    own = fit_recipe(recipe.read(archive.sample_path(new), slice(None)), 8, recipe.columns, 0.5)
    assert own.mean != recipe.mean  # (a recipe fitted on the new sample alone would differ)


def test_a_model_written_before_the_recipe_still_loads_and_assigns_the_latent(tmp_path):
    archive = Archive.create(tmp_path / "old")
    kinds = np.random.default_rng(3).integers(0, 3, 200)
    _add(archive, KEYS[0], kinds, seed=4)
    latents = read_array(archive.sample_path(KEYS[0]), "latent")
    centres = blob_centres(2, 8, seed=0)
    folder = save_model(archive, KMeansModel(centres, "enc-test", info={"settings": {"k": 2}}))
    meta = json.loads((folder / "settings.json").read_text())
    assert "features" not in meta  # as models were written before the recipe existed
    report = run_stage(archive, KEYS[:1], None, ClusterSettings(k=2, umap_points=0, assign_only=True), quiet=True)
    assert report.ok, report.failures
    np.testing.assert_array_equal(read_array(archive.sample_path(KEYS[0]), "cluster"),
                                  nearest_centre(latents, centres)[0])
    assert current_model(archive).recipe(8) == FeatureRecipe(8)


def test_recipe_choices_and_bad_weights(tmp_path, archive):
    archive, _ = archive
    paths = [archive.sample_path(k) for k in KEYS]
    assert morphometric_columns(paths) == ("equivalent_diameter_px", "aspect_ratio", "solidity", "mean_rgb")
    with pytest.raises(ClusteringError, match=r"not in \[0, 1\)"):
        ClusterSettings(morphometrics=1.0).check()
    with pytest.raises(ClusteringError, match="feature recipe cannot be read"):
        FeatureRecipe.from_info({"features": {"weight": 0.5}}, 8)
    assert fit_recipe(np.zeros((4, 9)), 8, ["solidity"], 0.0) == FeatureRecipe(8)


def test_splitting_a_cluster_uses_the_models_recipe(archive):
    from sedarchive.clustering.split import split_cluster

    archive, kinds = archive
    truth = np.concatenate([kinds[k] for k in KEYS])
    assert run_stage(archive, KEYS, None, ClusterSettings(k=2, umap_points=0, morphometrics=0.5), quiet=True).ok
    labels = np.concatenate([read_array(archive.sample_path(k), "cluster") for k in KEYS])
    mixed = max(range(2), key=lambda c: len(np.unique(truth[labels == c])))
    new_ids = split_cluster(archive, mixed, 2)
    labels = np.concatenate([read_array(archive.sample_path(k), "cluster") for k in KEYS])
    assert set(np.unique(labels)) == {1 - mixed, *new_ids}
    assert _purity(labels, truth) > 0.98
    assert current_model(archive).n_features == 14
