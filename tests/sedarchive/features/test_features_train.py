"""Training: the grains it sees, the loss falling, checkpoints that resume the same run, saved models."""
from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import torch
from grain_factory import make_segmented_sample

from catalog import SampleKey
from sedarchive.errors import InputError
from sedarchive.features.data import CropCache, batches, build_index
from sedarchive.features.encode import encode_crops
from sedarchive.features.registry import current_encoder, resolve_encoder
from sedarchive.features.settings import EncoderSettings, TrainSettings
from sedarchive.features.stage import train_stage
from sedarchive.features.store import load_encoder, read_history, save_encoder
from sedarchive.features.train import CHECKPOINT, train_encoder

TINY = TrainSettings(
    encoder=EncoderSettings(backbone="small", input_size=32, latent_dim=8, small_widths=(8, 16),
                            small_blocks=(1, 1), decoder_width=32),
    epochs=3, batch_size=8, learning_rate=2e-3, device="cpu", shuffle_buffer=16,
)
KEYS = [SampleKey("TST-1", 10, 12), SampleKey("TST-1", 12, 14)]


@pytest.fixture
def samples(archive):
    crops = [make_segmented_sample(archive, key, n=20, n_layers=3, size=32, seed=i, chunk=6)
             for i, key in enumerate(KEYS)]
    return archive, crops


def test_index_leaves_out_chopped_and_clumps(samples):
    archive, _ = samples
    paths = [archive.sample_path(k) for k in KEYS]
    index = build_index(paths)
    assert index.n_grains == 2 * (20 - 4) and index.n_layers == 3
    assert all(g >= 4 for b in index.blocks for g in b.keep)  # the first 4 of each sample are flagged
    assert build_index(paths, include_flagged=True).n_grains == 40
    assert build_index(paths, max_grains=10, seed=3).n_grains == 10


def test_batches_cover_each_grain_once_and_repeat_per_seed(samples):
    archive, crops = samples
    index = build_index([archive.sample_path(KEYS[0])])
    epoch = list(batches(index, 32, batch_size=5, epoch=0, seed=1, shuffle_buffer=7))
    seen = np.concatenate(epoch)
    assert seen.shape == (16, 3, 32, 32, 3)
    kept = crops[0][4:]
    # every kept grain comes exactly once (order shuffled)
    assert sorted(map(bytes, seen.reshape(16, -1))) == sorted(map(bytes, kept.reshape(16, -1)))
    again = np.concatenate(list(batches(index, 32, 5, epoch=0, seed=1, shuffle_buffer=7)))
    other = np.concatenate(list(batches(index, 32, 5, epoch=1, seed=1, shuffle_buffer=7)))
    assert np.array_equal(seen, again) and not np.array_equal(seen, other)
    resized = np.concatenate(list(batches(index, 20, 5, epoch=0, seed=1)))
    assert resized.shape == (16, 3, 20, 20, 3)
    cache = CropCache(10 * 2**20)
    for epoch in (0, 1, 1):  # epochs read through the cache give the same batches
        cached = np.concatenate(list(batches(index, 32, 5, epoch, seed=1, shuffle_buffer=7, cache=cache)))
        assert np.array_equal(cached, seen if epoch == 0 else other)
    assert cache.used == 16 * 3 * 32 * 32 * 3
    small = CropCache(6 * 3 * 32 * 32 * 3)  # room for one block of 5 grains only
    assert np.array_equal(np.concatenate(list(batches(index, 32, 5, 1, 1, 7, small))), other) and small.used <= small.limit


def test_loss_falls(samples, tmp_path):
    archive, _ = samples
    index = build_index([archive.sample_path(k) for k in KEYS])
    _, history = train_encoder(index, replace(TINY, epochs=4), tmp_path / "run")
    losses = [h["loss"] for h in history]
    assert len(history) == 4 and all(np.isfinite(losses))
    assert losses[-1] < 0.7 * losses[0]


def _states_equal(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


class Interrupted(Exception):
    pass


def test_resume_from_checkpoint_is_the_same_run(samples, tmp_path):
    archive, _ = samples
    index = build_index([archive.sample_path(k) for k in KEYS])
    whole, whole_history = train_encoder(index, TINY, tmp_path / "whole")

    def kill_after_first_epoch(record):
        if record["epoch"] == 1:
            raise Interrupted

    with pytest.raises(Interrupted):
        train_encoder(index, TINY, tmp_path / "killed", progress=kill_after_first_epoch)
    assert (tmp_path / "killed" / CHECKPOINT).is_file()
    seen = []
    resumed, history = train_encoder(index, TINY, tmp_path / "killed", progress=seen.append)
    assert [r["epoch"] for r in seen] == [2, 3]  # epoch 1 was not trained again
    assert _states_equal(whole.state_dict(), resumed.state_dict())
    assert [h["loss"] for h in history] == [h["loss"] for h in whole_history]
    # a second uninterrupted run with the same seed is the same run too, with or without the crop cache
    again, _ = train_encoder(index, replace(TINY, cache_mb=0), tmp_path / "again")
    assert _states_equal(whole.state_dict(), again.state_dict())


def test_checkpoint_of_another_run_is_refused(samples, tmp_path):
    archive, _ = samples
    index = build_index([archive.sample_path(k) for k in KEYS])
    train_encoder(index, replace(TINY, epochs=1), tmp_path / "run")
    with pytest.raises(InputError, match="another training run"):
        train_encoder(index, replace(TINY, epochs=2, seed=9), tmp_path / "run")


def test_save_and_load_give_identical_mu(samples, tmp_path):
    archive, crops = samples
    index = build_index([archive.sample_path(k) for k in KEYS])
    model, history = train_encoder(index, replace(TINY, epochs=1), tmp_path / "run")
    info = {"encoder": {**replace(TINY.encoder, n_layers=3).__dict__}}
    model_id = save_encoder(tmp_path / "models", model, info, history)
    loaded, meta = load_encoder(tmp_path / "models" / f"encoder-{model_id}")
    assert meta["id"] == model_id
    assert read_history(tmp_path / "models" / f"encoder-{model_id}") == history
    mu = encode_crops(model.eval(), crops[1])
    assert mu.dtype == np.float32 and mu.shape == (20, 8)
    assert np.array_equal(mu, encode_crops(loaded, crops[1]))
    # the id is the weights: saving the same model again gives the same folder
    assert save_encoder(tmp_path / "models", loaded, info, history) == model_id


def test_train_stage_saves_records_and_reuses(samples):
    archive, _ = samples
    report = train_stage(archive, KEYS, None, replace(TINY, epochs=2), quiet=True)
    result = report.results["encoder"]
    assert report.ok and not result["reused"]
    assert current_encoder(archive.models_dir) == result["model_id"]
    model_id, folder = resolve_encoder(archive.models_dir)
    info = json.loads((folder / "settings.json").read_text())
    assert info["train"]["epochs"] == 2 and info["encoder"]["n_layers"] == 3 and info["n_grains"] == 32
    assert info["samples"] == {KEYS[0].name: 16, KEYS[1].name: 16}
    assert len(read_history(folder)) == 2
    assert not list(archive.models_dir.glob("training-*"))  # the working folder is gone
    again = train_stage(archive, KEYS, None, replace(TINY, epochs=2), quiet=True)
    assert again.results["encoder"]["reused"] and again.results["encoder"]["model_id"] == model_id


def test_train_stage_reports_unusable_samples(samples):
    archive, _ = samples
    raw, empty = SampleKey("TST-2", 0, 2), SampleKey("TST-2", 2, 4)
    archive.create_sample(raw, 1, 3, 16, 16)
    archive.create_sample(empty, 1, 3, 16, 16)
    archive.set_status(empty, "segmented")  # says segmented, but holds no crops
    report = train_stage(archive, [*KEYS, raw, empty], None, replace(TINY, epochs=1), quiet=True)
    assert "not segmented yet (status acquiring)" in report.failures[raw]
    assert "no particle_images" in report.failures[empty]
    assert report.results["encoder"]["n_grains"] == 32
    with pytest.raises(InputError, match="no grains to train on"):
        train_stage(archive, [raw, empty], None, TINY, quiet=True)
