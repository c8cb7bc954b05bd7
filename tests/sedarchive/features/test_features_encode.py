"""Encoding on Dask: latents in the stores equal in-process encoding; skips, re-encodes, failures."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from grain_factory import make_segmented_sample

from catalog import SampleKey, create_variables, read_array, read_attrs, write_region
from sedarchive.errors import InputError
from sedarchive.features.encode import encode_crops, encode_store
from sedarchive.features.registry import resolve_encoder
from sedarchive.features.settings import EncodeSettings
from sedarchive.features.stage import run_stage, train_stage
from sedarchive.features.store import load_encoder
from test_features_train import TINY

KEYS = [SampleKey("ENC-1", 0, 2), SampleKey("ENC-1", 2, 4), SampleKey("ENC-2", 5, 7)]
CPU = EncodeSettings(device="cpu", batch_size=16)


@pytest.fixture
def encoded_ready(archive):
    crops = {key: make_segmented_sample(archive, key, n=12 + 5 * i, n_layers=3, size=32 + 8 * i, seed=10 + i,
                                        chunk=5)
             for i, key in enumerate(KEYS)}
    model_id = train_stage(archive, KEYS, None, replace(TINY, epochs=1), quiet=True).results["encoder"]["model_id"]
    return archive, crops, model_id


@pytest.mark.slow  # starts the session's LocalCluster, whose workers import torch
def test_encode_on_a_local_cluster_equals_in_process(encoded_ready, dask_client):
    archive, crops, model_id = encoded_ready
    report = run_stage(archive, KEYS, dask_client, CPU, quiet=True)
    assert report.ok and report.results == {key: len(crops[key]) for key in KEYS}
    model, _ = load_encoder(resolve_encoder(archive.models_dir)[1])
    for key in KEYS:
        path = archive.sample_path(key)
        latent = read_array(path, "latent")
        expected = encode_crops(model, crops[key])  # crops of 40 and 48 px are resized to 32 alike
        assert latent.dtype == np.float32 and latent.shape == (len(crops[key]), 8)
        np.testing.assert_allclose(latent, expected, rtol=1e-5, atol=1e-6)
        attrs = read_attrs(path)
        assert attrs["status"] == "encoded" and attrs["encoder_id"] == model_id
        assert attrs["encode_settings"]["model"] == model_id
        ds = archive.open_sample(key)
        assert ds["latent"].dims == ("particle", "feature")
    assert {row.status for row in archive.samples()} == {"encoded"}  # the catalog follows


def test_finished_samples_are_skipped_and_another_model_encodes_again(encoded_ready):
    archive, crops, first = encoded_ready
    assert run_stage(archive, KEYS, None, CPU, quiet=True).ok
    path = archive.sample_path(KEYS[0])
    write_region(path, "latent", 0, np.zeros((len(crops[KEYS[0]]), 8), np.float32))  # a mark to see rewrites
    archive.set_status(KEYS[1], "clustered")
    again = run_stage(archive, KEYS, None, CPU, quiet=True)
    assert set(again.results.values()) == {"skipped"}
    assert not read_array(path, "latent").any()
    assert read_attrs(archive.sample_path(KEYS[1]))["status"] == "clustered"
    # --force encodes again with the same model
    forced = run_stage(archive, KEYS[:1], None, replace(CPU, force=True), quiet=True)
    assert forced.results[KEYS[0]] == len(crops[KEYS[0]]) and read_array(path, "latent").any()
    # a new current model: every sample is encoded again, clusters from the old latents drop back
    second = train_stage(archive, KEYS, None, replace(TINY, epochs=1, seed=7), quiet=True).results["encoder"]["model_id"]
    assert second != first
    old = read_array(path, "latent")
    renewed = run_stage(archive, KEYS, None, CPU, quiet=True)
    assert all(n != "skipped" for n in renewed.results.values())
    assert not np.allclose(old, read_array(path, "latent"))
    assert {read_attrs(archive.sample_path(k))["encoder_id"] for k in KEYS} == {second}
    assert read_attrs(archive.sample_path(KEYS[1]))["status"] == "encoded"
    # asking for the first model by id goes back to it
    back = run_stage(archive, KEYS[:1], None, replace(CPU, model=first), quiet=True)
    assert back.ok and read_attrs(path)["encoder_id"] == first


def test_unusable_samples_fail_alone(encoded_ready):
    archive, _, _ = encoded_ready
    raw = SampleKey("ENC-3", 0, 2)
    archive.create_sample(raw, 1, 3, 16, 16)
    four = SampleKey("ENC-3", 2, 4)
    make_segmented_sample(archive, four, n=6, n_layers=4, size=32)
    empty = SampleKey("ENC-3", 4, 6)
    make_segmented_sample(archive, empty, n=0, n_layers=3, size=32, flagged=0)
    report = run_stage(archive, [*KEYS, raw, four, empty], None, CPU, quiet=True)
    assert "not segmented yet" in report.failures[raw]
    assert "4 focal layers" in report.failures[four]
    assert report.results[empty] == 0 and read_array(archive.sample_path(empty), "latent").shape == (0, 8)
    assert read_attrs(archive.sample_path(empty))["status"] == "encoded"
    assert all(report.results[k] > 0 for k in KEYS)


def test_encode_store_reads_ahead_block_by_block(encoded_ready):
    archive, crops, _ = encoded_ready
    key = KEYS[2]
    path = archive.sample_path(key)
    n = len(crops[key])
    create_variables(path, {"latent": (("particle", "feature"), (n, 8), "float32", (4, 8))})
    _, folder = resolve_encoder(archive.models_dir)
    assert encode_store(path, folder, batch_size=3, device="cpu", block=4) == n  # 22 grains: 6 blocks
    model, _ = load_encoder(folder)
    np.testing.assert_allclose(read_array(path, "latent"), encode_crops(model, crops[key]), rtol=1e-5, atol=1e-6)


def test_no_model_is_a_clear_error(archive):
    make_segmented_sample(archive, KEYS[0], n=4)
    with pytest.raises(InputError, match="run `sedarchive train` first"):
        run_stage(archive, KEYS[:1], None, CPU)
    with pytest.raises(InputError, match="encoder abc is not in"):
        run_stage(archive, KEYS[:1], None, replace(CPU, model="abc"))


@pytest.mark.slow
def test_gpu_workers_get_the_training_and_encoding_tasks(tmp_path, capsys):
    """A cluster whose worker declares GPU=1 (a CPU one here): training runs as a Dask task there and
    gives the same model as training in this process; encoding asks for the GPU resource."""
    from distributed import Client, LocalCluster

    from catalog import Archive
    from sedarchive.dask.tasks import has_gpu_workers

    settings = replace(TINY, epochs=2)
    here = Archive.create(tmp_path / "here")
    there = Archive.create(tmp_path / "there")
    for archive in (here, there):
        for i, key in enumerate(KEYS[:2]):
            make_segmented_sample(archive, key, n=14, n_layers=3, size=32, seed=i)
    local_id = train_stage(here, KEYS[:2], None, settings, quiet=True).results["encoder"]["model_id"]
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, resources={"GPU": 1},
                      dashboard_address=":0", silence_logs=40) as cluster, Client(cluster) as client:
        assert has_gpu_workers(client)
        result = train_stage(there, KEYS[:2], client, settings).results["encoder"]
        assert result["model_id"] == local_id  # same weights, trained on the worker
        assert "epoch 2/2" in capsys.readouterr().err
        report = run_stage(there, KEYS[:2], client, CPU, quiet=True)
        assert report.ok
        run_stage(here, KEYS[:2], None, CPU, quiet=True)
    for key in KEYS[:2]:
        np.testing.assert_allclose(read_array(there.sample_path(key), "latent"),
                                   read_array(here.sample_path(key), "latent"), rtol=1e-5, atol=1e-6)
