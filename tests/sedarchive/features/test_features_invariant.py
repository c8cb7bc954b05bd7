"""Orientation-free features: a grain and its turned or flipped copy get the same latent."""
from __future__ import annotations

import hashlib
import json
from dataclasses import replace

import numpy as np
import torch
from grain_factory import make_segmented_sample

from catalog import SampleKey
from sedarchive.features.data import build_index
from sedarchive.features.encode import encode_crops
from sedarchive.features.model import GrainVAE, dihedral, random_dihedral
from sedarchive.features.settings import preset
from sedarchive.features.store import load_encoder
from sedarchive.features.train import fingerprint, train_and_save
from test_features_train import TINY

INVARIANT = replace(TINY, encoder=replace(TINY.encoder, invariant=True), epochs=1)


def _grains(n: int = 4, size: int = 32, n_layers: int = 2, seed: int = 0) -> np.ndarray:
    """Asymmetric crops (a gradient and an off-centre blob): every turn of them looks different."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    out = np.empty((n, n_layers, size, size, 3), np.uint8)
    for i in range(n):
        cy, cx = rng.uniform(0.2, 0.4, 2) * size
        blob = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * (size / 6) ** 2))
        img = 0.5 * blob[..., None] * rng.uniform(0.3, 1, 3) + 0.4 * (xx / size)[..., None] * rng.uniform(0, 1, 3)
        out[i] = (255 * np.clip(img, 0, 1)).astype(np.uint8)[None]
    return out


def _turn(crops: np.ndarray, i: int) -> np.ndarray:
    return dihedral(torch.from_numpy(crops).permute(0, 1, 4, 2, 3), i).permute(0, 1, 3, 4, 2).contiguous().numpy()


def test_invariant_encoder_gives_a_turned_grain_the_same_latent():
    torch.manual_seed(0)
    settings = replace(INVARIANT.encoder, n_layers=2)
    model = GrainVAE(settings).eval()
    crops = _grains()
    base = encode_crops(model, crops)
    spread = np.abs(base - base.mean(axis=0)).max()
    for i in range(1, 8):
        assert np.abs(encode_crops(model, _turn(crops, i)) - base).max() < 1e-4 * max(1.0, spread)
    # the same weights without invariance: a turn moves the latent (so the test above could fail)
    plain = GrainVAE(replace(settings, invariant=False)).eval()
    plain.load_state_dict(model.state_dict())
    moved = np.abs(encode_crops(plain, _turn(crops, 1)) - encode_crops(plain, crops)).max()
    assert moved > 100 * np.abs(encode_crops(model, _turn(crops, 1)) - base).max()


def test_random_dihedral_turns_each_grain_whole():
    x = torch.rand(16, 2, 3, 8, 8)
    out = random_dihedral(x, torch.Generator().manual_seed(0))
    for j in range(16):
        matches = [i for i in range(8) if torch.equal(out[j], dihedral(x[j], i))]
        assert matches, f"grain {j} is not a rotation or flip of itself"
    assert not torch.equal(out, x)


def test_invariance_is_recorded_with_the_model_and_in_the_fingerprint(archive, tmp_path):
    keys = [SampleKey("INV-1", 0, 2)]
    make_segmented_sample(archive, keys[0], n=12, n_layers=2, size=32, seed=3, chunk=6)
    index = build_index([archive.sample_path(k) for k in keys])
    plain = replace(INVARIANT, encoder=replace(INVARIANT.encoder, invariant=False))
    assert fingerprint(INVARIANT, index) != fingerprint(plain, index)
    # a run without the setting keeps the fingerprint it had before the setting existed
    values = plain.to_dict()
    for key in ("epochs", "device", "cache_mb"):
        values.pop(key)
    values["encoder"]["n_layers"] = index.n_layers
    del values["encoder"]["invariant"], values["objective"], values["temperature"]
    before = hashlib.sha256((json.dumps(values, sort_keys=True) + index.fingerprint()).encode()).hexdigest()[:16]
    assert fingerprint(plain, index) == before
    result = train_and_save(index, INVARIANT, tmp_path / "models")
    folder = tmp_path / "models" / f"encoder-{result['model_id']}"
    assert json.loads((folder / "settings.json").read_text())["encoder"]["invariant"] is True
    model, _ = load_encoder(folder)
    assert model.settings.invariant
    crops = _grains(n=3, n_layers=2, seed=5)
    assert np.abs(encode_crops(model, _turn(crops, 3)) - encode_crops(model, crops)).max() < 1e-4


def test_presets_paper_unchanged_default_invariant():
    assert not preset("paper").encoder.invariant and not preset("cpu-paper").encoder.invariant
    assert preset("paper").objective == preset("cpu-paper").objective == "vae"
    assert preset("default") == preset("contrastive")
    for name in ("default", "vae", "cpu", "cpu-vae"):
        assert preset(name).encoder.invariant
    assert replace(preset("vae").encoder, invariant=False) == preset("paper").encoder
    assert replace(preset("cpu-vae").encoder, invariant=False) == preset("cpu-paper").encoder
    assert preset("cpu").encoder == preset("cpu-vae").encoder and preset("cpu").objective == "contrastive"


def test_contrastive_preset_trains_saves_and_encodes_like_a_vae(archive, tmp_path):
    from sedarchive.features.contrastive import augment

    keys = [SampleKey("CON-1", 0, 2)]
    make_segmented_sample(archive, keys[0], n=24, n_layers=2, size=32, seed=4, chunk=8)
    index = build_index([archive.sample_path(k) for k in keys])
    settings = replace(INVARIANT, objective="contrastive", epochs=4, batch_size=12)
    assert fingerprint(settings, index) != fingerprint(INVARIANT, index)
    result = train_and_save(index, settings, tmp_path / "models")
    history = result["history"]
    assert history[-1]["loss"] < history[0]["loss"], history
    folder = tmp_path / "models" / f"encoder-{result['model_id']}"
    info = json.loads((folder / "settings.json").read_text())
    assert info["train"]["objective"] == "contrastive" and info["train"]["temperature"] == 0.2
    model, _ = load_encoder(folder)  # no projection head in the saved model: loads as a VAE does
    crops = _grains(n=3, n_layers=2, seed=6)
    assert np.abs(encode_crops(model, _turn(crops, 5)) - encode_crops(model, crops)).max() < 1e-4
    x = torch.rand(5, 2, 3, 8, 8)
    views = augment(x, torch.Generator().manual_seed(1))
    assert views.shape == x.shape and float(views.min()) >= 0 and float(views.max()) <= 1
    assert preset("default").encoder.backbone == "resnet152" and preset("default").objective == "contrastive"
