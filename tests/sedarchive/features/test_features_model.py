"""The VAE kernel: shapes for several layer counts and crop sizes, the loss, eval determinism."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from sedarchive.errors import InputError
from sedarchive.features.encode import encode_crops
from sedarchive.features.model import GrainVAE, decoder_plan, vae_loss
from sedarchive.features.settings import EncoderSettings

TINY = EncoderSettings(backbone="small", input_size=32, latent_dim=8, small_widths=(8, 16), small_blocks=(1, 1),
                       decoder_width=32)


@pytest.mark.parametrize("n_layers", [1, 2, 6])
@pytest.mark.parametrize("size", [24, 32, 50])
@pytest.mark.parametrize("shared", [False, True])
def test_shapes_follow_layers_and_size(n_layers, size, shared):
    torch.manual_seed(0)
    model = GrainVAE(replace(TINY, n_layers=n_layers, input_size=size, shared_branches=shared))
    assert len(model.branches) == (1 if shared else n_layers)
    x = torch.rand(3, n_layers, 3, size, size)
    recon, mu, logvar = model(x)
    assert recon.shape == x.shape
    assert mu.shape == logvar.shape == (3, 8)
    assert float(recon.detach().min()) >= 0.0 and float(recon.detach().max()) <= 1.0


def test_torchvision_backbone_branch_shapes():
    torch.manual_seed(0)
    model = GrainVAE(replace(TINY, backbone="resnet18", n_layers=2, input_size=32)).eval()
    assert model.n_features == 512
    assert model.head.in_features == 2 * 512
    recon, mu, _ = model(torch.rand(2, 2, 3, 32, 32))
    assert recon.shape == (2, 2, 3, 32, 32) and mu.shape == (2, 8)


def test_wrong_input_shape_is_refused():
    model = GrainVAE(replace(TINY, n_layers=3))
    with pytest.raises(ValueError, match="expected grains of shape"):
        model(torch.rand(2, 2, 3, 32, 32))
    with pytest.raises(InputError, match="3 focal layers"):
        encode_crops(model.eval(), np.zeros((2, 2, 32, 32, 3), np.uint8))


def test_decoder_plan_reaches_the_input_size():
    for size in (16, 24, 32, 50, 64, 100, 280):
        start, n_up = decoder_plan(size)
        assert start * 2**n_up >= size
        assert 2 <= start <= 8


def test_loss_terms():
    x = torch.full((2, 1, 3, 4, 4), 0.5)
    mu, logvar = torch.zeros(2, 4), torch.zeros(2, 4)
    loss, mse, kl = vae_loss(x, x, mu, logvar)
    assert float(loss) == float(mse) == float(kl) == 0.0
    loss, mse, kl = vae_loss(x + 0.1, x, mu + 1.0, logvar, beta=2.0)
    assert float(mse) == pytest.approx(0.01)
    assert float(kl) == pytest.approx(2.0)  # 0.5 * sum(mu^2) over 4 dims
    assert float(loss) == pytest.approx(0.01 + 2.0 * 2.0 / 48)


def test_eval_mu_is_deterministic_and_train_samples():
    torch.manual_seed(0)
    model = GrainVAE(replace(TINY, n_layers=2))
    x = torch.rand(4, 2, 3, 32, 32)
    model.train()
    r1, _, _ = model(x)
    r2, _, _ = model(x)
    assert not torch.equal(r1, r2)  # z is drawn in training
    model.eval()
    with torch.no_grad():
        a, b = model(x), model(x)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
