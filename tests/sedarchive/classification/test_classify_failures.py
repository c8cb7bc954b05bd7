"""classify: an intake entry for classified.zarr; a failed or stopped run loses nothing and a rerun completes it."""
from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import intake
import numpy as np
import pytest
import xarray as xr

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parents[1] / "clustering"))
from latent_archive import add_encoded_sample, blob_centres  # noqa: E402
from test_classify import NEW, TRAIN, _named_archive  # noqa: E402

from catalog import read_attrs  # noqa: E402
from sedarchive.classification import apply as apply_module  # noqa: E402
from sedarchive.classification.apply import run_stage as classify  # noqa: E402
from sedarchive.classification.training import train  # noqa: E402

pytestmark = pytest.mark.slow  # trains a classifier several times: tens of seconds

ALL = [*TRAIN, NEW]


@pytest.fixture
def trained(tmp_path):
    archive, _ = _named_archive(tmp_path / "a")
    rng = np.random.default_rng(4)
    add_encoded_sample(archive, NEW, rng.choice(4, size=300, p=[0.4, 0.3, 0.2, 0.1]), blob_centres(4, 8, 1), seed=5)
    model = train(archive, TRAIN, quiet=True)
    return archive, model


def _fractions(archive) -> dict[str, list[float]]:
    ds = xr.open_zarr(str(archive.classified_path), consolidated=False).load()
    return {s: np.nan_to_num(ds["classified_fraction"].sel(sample=s).values, nan=-1).round(12).tolist()
            for s in ds.sample.values}


def _digest(folder: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(folder.rglob("*")):
        if p.is_file():
            h.update(str(p.relative_to(folder)).encode() + p.read_bytes())
    return h.hexdigest()


def test_classified_zarr_is_an_intake_entry(trained):
    archive, model = trained
    classify(archive, ALL, None, quiet=True, n_boot=50)
    cat = intake.open_catalog(str(archive.catalog_path))
    assert "classified" in cat and cat.entries["classified"].metadata["store"] == "classified.zarr"
    ds = cat["classified"].read()
    assert ds.attrs["classifier_id"] == model.id and sorted(ds.sample.values) == sorted(k.name for k in ALL)
    assert ds["classified_fraction"].sel(sample=NEW.name, grain_class="quartz") > 0.2
    assert "proportions" not in cat or cat["proportions"].read() is not None  # the entries live side by side


@pytest.mark.parametrize("where", ["start", "middle", "end"])
def test_a_failed_classify_loses_nothing_and_a_rerun_completes_it(trained, monkeypatch, where):
    archive, model = trained
    classify(archive, ALL, None, quiet=True, n_boot=50)
    reference = _fractions(archive)
    before = _digest(archive.classified_path)
    real = apply_module.classify_sample

    def fail(path, *args, **kwargs):
        if where == "start" or NEW.name in str(path):
            raise RuntimeError(f"injected at the {where}")
        return real(path, *args, **kwargs)

    def fail_write(*args, **kwargs):
        raise RuntimeError("injected at the end")

    if where == "end":
        monkeypatch.setattr(apply_module, "write_dataset", fail_write)
        with pytest.raises(RuntimeError, match="injected"):
            classify(archive, ALL, None, quiet=True, n_boot=50)
        assert _digest(archive.classified_path) == before  # the old results stay whole
    else:
        monkeypatch.setattr(apply_module, "classify_sample", fail)
        report = classify(archive, ALL, None, quiet=True, n_boot=50)
        assert NEW in report.failures and "injected" in report.failures[NEW]
        assert read_attrs(archive.sample_path(NEW))["classifier_id"] == ""  # not claimed as classified
        if where == "start":
            assert set(report.failures) == set(ALL)
        else:  # the samples that succeeded are reported, the failed one is not reported with stale figures
            assert sorted(_fractions(archive)) == sorted(k.name for k in TRAIN)
    monkeypatch.undo()
    assert classify(archive, ALL, None, quiet=True, n_boot=50).ok
    assert _fractions(archive) == reference  # nothing lost: the rerun gives the uninterrupted run's figures
    assert read_attrs(archive.sample_path(NEW))["classifier_id"] == model.id


def test_a_model_saved_before_the_truth_arrays_is_corrected_against_its_names(trained):
    archive, model = trained
    from sedarchive.classification.model import model_dir

    assert model.truth is not None and len(model.truth["oof_weight"]) > 0
    for old in model_dir(archive, model.id).glob("truth_*.npy"):  # a model folder as classify-train wrote it before
        old.unlink()
    assert classify(archive, ALL, None, quiet=True, n_boot=50).ok
    ds = xr.open_zarr(str(archive.classified_path), consolidated=False).load()
    assert ds.attrs["confusion_against"] == "the names of the held-out grains"
    assert abs(float(ds["classified_fraction"].sel(sample=NEW.name).sum(skipna=True)) - 1) < 1e-9
