"""The CUDA path: mixed precision and channels-last training and encoding (skipped without a GPU)."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch
from grain_factory import make_segmented_sample

from catalog import SampleKey
from sedarchive.features.data import build_index
from sedarchive.features.encode import encode_crops
from sedarchive.features.model import GrainVAE
from sedarchive.features.settings import EncoderSettings
from sedarchive.features.train import train_encoder
from test_features_train import TINY

pytestmark = pytest.mark.gpu


def test_training_on_cuda_with_mixed_precision(archive, tmp_path):
    key = SampleKey("GPU-1", 0, 2)
    make_segmented_sample(archive, key, n=40, n_layers=3, size=32)
    index = build_index([archive.sample_path(key)])
    model, history = train_encoder(index, replace(TINY, device="cuda", epochs=3), tmp_path / "run")
    assert next(model.parameters()).is_cuda and model.channels_last
    losses = [h["loss"] for h in history]
    assert all(np.isfinite(losses)) and losses[-1] < losses[0]
    resumed, again = train_encoder(index, replace(TINY, device="cuda", epochs=4), tmp_path / "run")
    assert [h["epoch"] for h in again] == [1, 2, 3, 4]


def test_cuda_mixed_precision_mu_is_close_to_cpu():
    torch.manual_seed(0)
    settings = EncoderSettings(backbone="resnet18", input_size=64, latent_dim=16, decoder_width=32, n_layers=2)
    cpu = GrainVAE(settings).eval()
    crops = np.random.default_rng(0).integers(0, 255, (8, 2, 64, 64, 3), dtype=np.uint8)
    expected = encode_crops(cpu, crops)
    gpu = GrainVAE(settings)
    gpu.load_state_dict(cpu.state_dict())
    gpu = gpu.to("cuda").eval().use_channels_last()
    got = encode_crops(gpu, crops, mixed_precision=True)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, expected, atol=0.05 * float(np.abs(expected).max()) + 1e-3)
    np.testing.assert_allclose(encode_crops(gpu, crops, mixed_precision=False), expected, rtol=1e-3, atol=1e-4)


@pytest.mark.parametrize("objective", ["vae", "contrastive"])
def test_invariant_and_contrastive_training_and_encoding_on_cuda(archive, tmp_path, objective):
    """Issue 13: the orientation-free VAE and the contrastive objective on CUDA with mixed precision."""
    key = SampleKey("GPU-2", 0, 2)
    make_segmented_sample(archive, key, n=40, n_layers=3, size=32)
    index = build_index([archive.sample_path(key)])
    settings = replace(TINY, device="cuda", epochs=3, objective=objective, batch_size=16,
                       encoder=replace(TINY.encoder, invariant=True))
    model, history = train_encoder(index, settings, tmp_path / "run")
    losses = [h["loss"] for h in history]
    assert next(model.parameters()).is_cuda and all(np.isfinite(losses)) and losses[-1] < losses[0]
    crops = np.random.default_rng(1).integers(0, 255, (6, 3, 32, 32, 3), dtype=np.uint8)
    turned = np.ascontiguousarray(np.rot90(crops, 1, axes=(2, 3)))
    mu, mu_turned = encode_crops(model, crops), encode_crops(model, turned)
    assert np.isfinite(mu).all()
    np.testing.assert_allclose(mu_turned, mu, atol=0.05 * float(np.abs(mu).max()) + 1e-3)  # bf16 sums
