"""classify-train and classify on a real archive: new samples without refit, encoder refusal, corrections."""
from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

sys.path.insert(0, str(Path(__file__).parents[1] / "clustering"))
from latent_archive import add_encoded_sample, blob_centres, make_archive  # noqa: E402

from catalog import SampleKey, read_array, read_attrs  # noqa: E402
from catalog.models import read_current  # noqa: E402
from sedarchive.classification import ClassificationError, current_classifier  # noqa: E402
from sedarchive.classification.apply import run_stage as classify  # noqa: E402
from sedarchive.classification.corrections import add_correction, least_sure, load_corrections  # noqa: E402
from sedarchive.classification.training import train  # noqa: E402
from sedarchive.clustering import ClusterSettings, run_stage as cluster  # noqa: E402
from sedarchive.counting.labels import exclude_cluster, name_cluster  # noqa: E402

pytestmark = pytest.mark.slow  # a Dask cluster and command-line subprocesses: tens of seconds

NAMES = ("quartz", "dark", "foram_intact", None)  # blob 3 is debris: an excluded cluster
TRAIN = [SampleKey("A", 0, 2), SampleKey("A", 10, 12)]
NEW = SampleKey("B", 50, 52)


def _named_archive(root, *, noise_blob: bool = False):
    archive, truth = make_archive(root, {k: 240 for k in TRAIN}, n_blobs=4, n_features=8, seed=1)
    cluster(archive, TRAIN, None, ClusterSettings(k=4, umap_points=0), quiet=True)
    for cid in range(4):
        members = np.concatenate([truth[k][read_array(archive.sample_path(k), "cluster") == cid] for k in TRAIN])
        if not len(members):
            continue
        name = NAMES[np.bincount(members).argmax()]
        if name is None:
            exclude_cluster(archive, cid, "debris")
        else:
            name_cluster(archive, cid, name)
    return archive, truth


def _digest(folder: Path, skip: str = "classifier") -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*"))
            if p.is_file() and not p.relative_to(folder).parts[0].startswith(skip) and p.name != "current.json"}


def test_new_sample_is_classified_without_refitting_clustering_or_encoder(tmp_path, dask_client):
    archive, _ = _named_archive(tmp_path / "a")
    model = train(archive, TRAIN, quiet=True)
    assert model.classes == ["dark", "debris", "foram_intact", "quartz"] and model.counted == [True, False, True, True]
    held = model.info["held_out"]
    assert held["n_held_out"] > 0 and held["accuracy"] > 0.9 and len(held["confusion"]) == 4
    assert set(held["precision"]) == set(model.classes) and held["reliability"]["count"]
    # a sample never clustered: latents only (the same encoder), with known blob fractions
    rng = np.random.default_rng(9)
    blob = rng.choice(4, size=400, p=[0.5, 0.2, 0.2, 0.1])
    add_encoded_sample(archive, NEW, blob, blob_centres(4, 8, 1), seed=77)
    before_models, before_current = _digest(archive.models_dir), read_current(archive)
    before_attrs = read_attrs(archive.sample_path(TRAIN[0]))
    report = classify(archive, [NEW], dask_client, quiet=True, n_boot=100)
    assert report.ok
    assert _digest(archive.models_dir) == before_models  # no new or changed encoder / K-means model
    after = read_current(archive)
    assert {k: v for k, v in after.items() if k != "classifier"} == {k: v for k, v in before_current.items()
                                                                    if k != "classifier"}
    path = archive.sample_path(NEW)
    attrs = read_attrs(path)
    assert "cluster" not in xr.open_zarr(str(path), consolidated=False) and attrs.get("kmeans_id") is None
    assert attrs["classifier_id"] == model.id and attrs["grain_classes"] == model.classes
    assert read_attrs(archive.sample_path(TRAIN[0]))["kmeans_id"] == before_attrs["kmeans_id"]
    code = read_array(path, "grain_class")
    prob = read_array(path, "class_probability")
    assert code.dtype == np.int16 and (code >= 0).all() and ((prob > 0.25) & (prob <= 1)).all()
    predicted = np.array(model.classes, dtype=object)[code]
    expected = {"quartz": 0, "dark": 1, "foram_intact": 2, "debris": 3}
    assert np.mean([expected[p] == b for p, b in zip(predicted, blob)]) > 0.95
    ds = xr.open_zarr(str(archive.classified_path), consolidated=False).load()
    assert ds.attrs["classifier_id"] == model.id and list(ds.sample.values) == [NEW.name]
    frac = ds["classified_fraction"].sel(sample=NEW.name)
    truth = np.bincount(blob, minlength=4)[:3] / (blob < 3).sum()
    for name, value in zip(("quartz", "dark", "foram_intact"), truth):
        got = float(frac.sel(grain_class=name))
        assert abs(got - value) < 0.05
        assert float(ds["classified_fraction_lower"].sel(sample=NEW.name, grain_class=name)) <= got
        assert float(ds["classified_fraction_upper"].sel(sample=NEW.name, grain_class=name)) >= got
    assert np.isnan(float(frac.sel(grain_class="debris")))
    assert abs(float(frac.sum(skipna=True)) - 1) < 1e-9


def test_classifier_of_another_encoder_is_refused_in_one_line(tmp_path):
    archive, _ = _named_archive(tmp_path / "a")
    model = train(archive, TRAIN, quiet=True)
    other = SampleKey("C", 0, 2)
    add_encoded_sample(archive, other, np.zeros(20, int), blob_centres(4, 8, 1), seed=3, encoder_id="enc-other")
    with pytest.raises(ClassificationError) as err:
        classify(archive, [other], None, quiet=True)
    message = str(err.value)
    assert "\n" not in message and "enc-other" in message and model.id in message and "classify-train" in message
    assert "grain_class" not in xr.open_zarr(str(archive.sample_path(other)), consolidated=False)
    # and through the command line: exit 2, one line on stderr
    import subprocess

    proc = subprocess.run([sys.executable, "-m", "sedarchive", "classify", str(archive.root), "--core", "C",
                           "--quiet"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "sedarchive classify: error:" in proc.stderr


def test_corrections_become_training_data_and_change_the_model_id(tmp_path):
    archive, truth = _named_archive(tmp_path / "a")
    first = train(archive, TRAIN, quiet=True)
    assert train(archive, TRAIN, quiet=True).id == first.id  # same data, same id
    classify(archive, TRAIN, None, quiet=True, n_boot=50)
    unsure = least_sure(archive, 10)
    probs = [g["probability"] for g in unsure]
    assert len(unsure) == 10 and probs == sorted(probs) and all(g["model"] == first.id for g in unsure)
    g = unsure[0]
    new_class = "foram_broken" if g["class"] != "foram_broken" else "quartz"
    entry = add_correction(archive, g["sample"], g["particle"], new_class, by="tester")
    assert entry["was"] == g["class"] and entry["model"] == first.id
    assert load_corrections(archive)[(g["sample"], g["particle"])]["class"] == new_class
    assert (g["sample"], g["particle"]) not in {(u["sample"], u["particle"]) for u in least_sure(archive, 10)}
    with pytest.raises(ClassificationError, match="unicorn"):
        add_correction(archive, g["sample"], g["particle"], "unicorn")
    with pytest.raises(ClassificationError, match="grains 0"):
        add_correction(archive, g["sample"], 10_000, "quartz")
    second = train(archive, TRAIN, quiet=True)
    assert second.id != first.id and second.info["n_corrections"] == 1
    assert "foram_broken" in second.classes or new_class in second.classes
    assert read_current(archive)["classifier"] == f"classifier-{second.id}"
    assert current_classifier(archive).id == second.id
    classify(archive, TRAIN, None, quiet=True, n_boot=50)
    ds = xr.open_zarr(str(archive.classified_path), consolidated=False)
    assert ds.attrs["classifier_id"] == second.id
    assert read_attrs(archive.sample_path(TRAIN[0]))["classifier_id"] == second.id
    saved = json.loads((archive.models_dir / f"classifier-{second.id}" / "model.json").read_text())
    assert saved["encoder_id"] == "enc-test" and saved["held_out"]["confusion"]


def test_commands_train_and_classify(tmp_path):
    import subprocess

    archive, _ = _named_archive(tmp_path / "a")
    proc = subprocess.run([sys.executable, "-m", "sedarchive", "classify-train", str(archive.root), "--quiet"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "accuracy" in proc.stdout and "(not counted)" in proc.stdout
    proc = subprocess.run([sys.executable, "-m", "sedarchive", "classify", str(archive.root), "--workers", "1",
                           "--quiet"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    ds = xr.open_zarr(str(archive.classified_path), consolidated=False)
    assert sorted(ds.sample.values) == sorted(k.name for k in TRAIN)


def test_training_on_stale_names_says_they_belong_to_another_model(tmp_path, dask_client):
    import re as _re

    from sedarchive.classification.model import ClassificationError

    archive, _ = _named_archive(tmp_path / "a")
    text = archive.labels_path.read_text()
    assert "kmeans_id" in text
    archive.labels_path.write_text(_re.sub(r"kmeans_id: .*", "kmeans_id: km-of-another-fit", text))
    with pytest.raises(ClassificationError, match="not of the current"):
        train(archive, TRAIN, quiet=True)
