"""Self-supervised contrastive training of the grain encoder (SimCLR-style), beside the paper's VAE.

Two augmented views of every grain of a batch go through the same encoder; a small projection
head maps their ``mu`` onto the unit sphere, and the NT-Xent loss pulls the two views of a grain
together and pushes the other grains of the batch away. The augmentations are what a grain may
look like on another plate or photograph: any rotation by 90 degrees and flip, the focal stack
shifted by one layer (the focus landed a step higher or lower), and a small change of brightness
and colour balance. The projection head is only used while training (it is not part of the saved
model), so a contrastive model is saved, loaded and encoded exactly like a VAE; its decoder stays
untrained and unused.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from sedarchive.features.model import random_dihedral


class ProjectionHead(nn.Module):
    """``mu`` -> a point on the unit sphere where the contrastive loss is computed."""

    def __init__(self, latent_dim: int, width: int = 128, out: int = 64):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(latent_dim, width), nn.ReLU(inplace=True), nn.Linear(width, out))

    def forward(self, mu: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.net(mu.float()), dim=1)


def augment(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """A random view of each grain of ``(batch, layer, 3, size, size)`` floats in [0, 1].

    Examples
    --------
    >>> augment(torch.rand(4, 3, 3, 8, 8)).shape
    torch.Size([4, 3, 3, 8, 8])
    """
    batch, n_layers = x.shape[:2]
    out = random_dihedral(x, generator)
    shift = torch.randint(-1, 2, (batch,), generator=generator)
    layers = (torch.arange(n_layers).view(1, -1) + shift.view(-1, 1)).clamp(0, n_layers - 1).to(x.device)
    out = torch.gather(out, 1, layers.view(batch, n_layers, 1, 1, 1).expand_as(out))
    gain = 1 + 0.1 * (2 * torch.rand(batch, 1, 1, 1, 1, generator=generator) - 1)
    tint = 1 + 0.05 * (2 * torch.rand(batch, 1, 3, 1, 1, generator=generator) - 1)
    return (out * (gain * tint).to(x.device)).clamp_(0, 1)


def nt_xent(z1: torch.Tensor, z2: torch.Tensor, temperature: float) -> torch.Tensor:
    """SimCLR's normalised temperature-scaled cross entropy of two views (unit vectors, ``(batch, d)``).

    Examples
    --------
    >>> z = F.normalize(torch.eye(4), dim=1)
    >>> float(nt_xent(z, z, 0.1)) < float(nt_xent(z, z.roll(1, 0), 0.1))
    True
    """
    n = len(z1)
    z = torch.cat([z1, z2]).float()
    sim = z @ z.T / temperature
    sim.fill_diagonal_(float("-inf"))
    target = torch.cat([torch.arange(n, 2 * n), torch.arange(n)]).to(z.device)
    return F.cross_entropy(sim, target)


def contrastive_loss(model: nn.Module, head: ProjectionHead, x: torch.Tensor,
                     temperature: float) -> torch.Tensor:
    """The loss of one batch: two views of every grain through the encoder and the head."""
    mu1, _ = model.encode(augment(x))
    mu2, _ = model.encode(augment(x))
    return nt_xent(head(mu1), head(mu2), temperature)
