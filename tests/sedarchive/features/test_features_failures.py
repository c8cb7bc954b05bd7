"""A failed encode changes nothing: failures injected at the start, middle and end of the stage."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from grain_factory import make_segmented_sample

from catalog import SampleKey, read_array, read_attrs
from catalog.errors import SedarchiveError
from catalog.store import array_names
from sedarchive.features import encode as encode_module
from sedarchive.features import stage as stage_module
from sedarchive.features.registry import resolve_encoder
from sedarchive.features.settings import EncodeSettings
from sedarchive.features.stage import run_stage, train_stage
from test_features_train import TINY

KEYS = [SampleKey("FAIL", 0, 2), SampleKey("FAIL", 2, 4)]
FORCE = EncodeSettings(device="cpu", batch_size=4, force=True)


@pytest.fixture
def encoded(archive):
    for i, key in enumerate(KEYS):
        make_segmented_sample(archive, key, n=12, n_layers=3, size=32, seed=40 + i, chunk=4)
    train_stage(archive, KEYS, None, replace(TINY, epochs=1), quiet=True)
    assert run_stage(archive, KEYS, None, EncodeSettings(device="cpu"), quiet=True).ok
    before = {key: (read_array(archive.sample_path(key), "latent"), read_attrs(archive.sample_path(key)))
              for key in KEYS}
    return archive, before


def assert_unchanged(archive, before):
    for key, (latent, attrs) in before.items():
        path = archive.sample_path(key)
        np.testing.assert_array_equal(read_array(path, "latent"), latent)
        now = read_attrs(path)
        assert (now["status"], now["encoder_id"]) == (attrs["status"], attrs["encoder_id"])
        assert "latent" in array_names(path)


def test_an_unloadable_model_fails_before_anything_changes(encoded):
    archive, before = encoded
    _, folder = resolve_encoder(archive.models_dir)
    (folder / "model.pt").write_bytes(b"not a torch file")
    with pytest.raises(SedarchiveError, match="cannot load model.pt"):
        run_stage(archive, KEYS, None, FORCE, quiet=True)
    assert_unchanged(archive, before)


def test_a_failure_in_the_middle_of_encoding_keeps_the_old_latents(encoded, monkeypatch):
    archive, before = encoded
    calls = []
    real = encode_module.encode_crops

    def second_block_fails(model, crops, batch_size):
        calls.append(len(crops))
        if len(calls) == 2:
            raise RuntimeError("CUDA out of memory (injected)")
        return real(model, crops, batch_size)

    monkeypatch.setattr(encode_module, "encode_crops", second_block_fails)
    with pytest.raises(RuntimeError, match="injected"):
        run_stage(archive, KEYS, None, FORCE, quiet=True)
    assert len(calls) == 2
    assert_unchanged(archive, before)
    monkeypatch.setattr(encode_module, "encode_crops", real)
    assert run_stage(archive, KEYS, None, FORCE, quiet=True).ok  # the leftover staged array is replaced
    assert not [n for n in (archive.sample_path(KEYS[0])).iterdir() if n.name.endswith(".next")]


def test_a_failure_at_the_swap_keeps_the_old_latents(encoded, monkeypatch):
    archive, before = encoded

    def swap_fails(path, name):
        raise OSError(28, "No space left on device (injected)")

    monkeypatch.setattr(stage_module, "swap_in", swap_fails)
    with pytest.raises(OSError, match="injected"):
        run_stage(archive, KEYS, None, FORCE, quiet=True)
    assert_unchanged(archive, before)


def test_a_changed_number_of_epochs_takes_effect(archive):
    for i, key in enumerate(KEYS):
        make_segmented_sample(archive, key, n=12, n_layers=3, size=32, seed=40 + i, chunk=4)
    one = train_stage(archive, KEYS, None, replace(TINY, epochs=1), quiet=True).results["encoder"]
    two = train_stage(archive, KEYS, None, replace(TINY, epochs=2), quiet=True).results["encoder"]
    assert not two["reused"] and len(two["history"]) == 2 and two["model_id"] != one["model_id"]
    again = train_stage(archive, KEYS, None, replace(TINY, epochs=1), quiet=True).results["encoder"]
    assert again["reused"] and again["model_id"] == one["model_id"]


def test_a_lost_latent_chunk_is_encoded_again(encoded):
    archive, before = encoded
    path = archive.sample_path(KEYS[0])
    next(p for p in sorted((path / "latent" / "c").rglob("*")) if p.is_file()).unlink()
    report = run_stage(archive, KEYS, None, EncodeSettings(device="cpu"), quiet=True)
    assert report.results[KEYS[0]] == 12 and report.results[KEYS[1]] == "skipped"
    np.testing.assert_allclose(read_array(path, "latent"), before[KEYS[0]][0], rtol=1e-5, atol=1e-6)


def _models(archive):
    from sedarchive.features.registry import current_encoder, list_encoders

    return current_encoder(archive.models_dir), list_encoders(archive.models_dir)


@pytest.mark.parametrize("where", ["start", "middle", "end"])
def test_a_failed_training_leaves_the_current_encoder(encoded, monkeypatch, where):
    archive, before = encoded
    models = _models(archive)
    from sedarchive.features import train as train_module

    def fail(*args, **kwargs):
        raise RuntimeError(f"injected at the {where}")

    if where == "start":
        monkeypatch.setattr(train_module, "build_model", fail)
    elif where == "middle":
        monkeypatch.setattr(stage_module, "_epoch_line", fail)  # called after each epoch
    else:
        monkeypatch.setattr(train_module, "save_encoder", fail)
    with pytest.raises(RuntimeError, match="injected"):
        train_stage(archive, KEYS, None, replace(TINY, epochs=2, seed=3), quiet=True)
    assert _models(archive) == models
    assert_unchanged(archive, before)
    monkeypatch.undo()
    result = train_stage(archive, KEYS, None, replace(TINY, epochs=2, seed=3), quiet=True).results["encoder"]
    assert _models(archive)[0] == result["model_id"] != models[0]
