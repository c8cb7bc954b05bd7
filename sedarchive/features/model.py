"""The grain variational autoencoder (pure torch): one ResNet branch per focal layer, a shared latent.

Architecture (after the paper's Fig. 2): each focal layer of a grain goes through its own ResNet
branch (or one shared branch), the pooled branch features are concatenated, a linear head gives
``mu`` and ``log sigma^2``, and a convolutional decoder reconstructs every RGB focal layer from a
sample ``z`` of N(mu, sigma). ``mu`` is the grain's representation.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models.resnet import BasicBlock, conv1x1

from sedarchive.features.settings import EncoderSettings

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class SmallResNet(nn.Module):
    """A narrow ResNet of torchvision basic blocks (for CPU work); pooled features of ``widths[-1]``."""

    def __init__(self, widths: tuple[int, ...], blocks: tuple[int, ...]):
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(3, widths[0], 3, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(widths[0]),
            nn.ReLU(inplace=True),
        )
        stages, inplanes = [], widths[0]
        for i, (width, n_blocks) in enumerate(zip(widths, blocks)):
            stride = 1 if i == 0 else 2
            layers = []
            for j in range(n_blocks):
                downsample = None
                if j == 0 and (stride != 1 or inplanes != width):
                    downsample = nn.Sequential(conv1x1(inplanes, width, stride), nn.BatchNorm2d(width))
                layers.append(BasicBlock(inplanes, width, stride if j == 0 else 1, downsample))
                inplanes = width
            stages.append(nn.Sequential(*layers))
        self.stages = nn.Sequential(*stages)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.out_features = inplanes

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.flatten(self.pool(self.stages(self.stem(x))), 1)


def make_branch(settings: EncoderSettings) -> tuple[nn.Module, int]:
    """One focal-layer branch and the size of its pooled feature vector."""
    if settings.backbone == "small":
        branch = SmallResNet(settings.small_widths, settings.small_blocks)
        return branch, branch.out_features
    import torchvision

    branch = getattr(torchvision.models, settings.backbone)(weights=None)  # never downloads
    n_features = branch.fc.in_features
    branch.fc = nn.Identity()
    return branch, n_features


def decoder_plan(input_size: int) -> tuple[int, int]:
    """Start side and number of 2x upsamplings of the decoder for a crop side.

    Examples
    --------
    >>> decoder_plan(64), decoder_plan(280), decoder_plan(32)
    ((4, 4), (5, 6), (4, 3))
    """
    n_up = max(1, int(math.floor(math.log2(input_size / 4))))
    return math.ceil(input_size / 2**n_up), n_up


class Decoder(nn.Module):
    """Latent vector -> all focal layers of a grain, ``(batch, layers * 3, size, size)`` in [0, 1]."""

    def __init__(self, latent_dim: int, n_layers: int, input_size: int, width: int):
        super().__init__()
        self.start, n_up = decoder_plan(input_size)
        self.width, self.input_size = width, input_size
        self.project = nn.Linear(latent_dim, width * self.start * self.start)
        blocks, channels = [], width
        for _ in range(n_up):
            out = max(channels // 2, 16)
            blocks += [nn.ConvTranspose2d(channels, out, 4, stride=2, padding=1, bias=False),
                       nn.BatchNorm2d(out), nn.ReLU(inplace=True)]
            channels = out
        self.upsample = nn.Sequential(*blocks)
        self.to_pixels = nn.Conv2d(channels, n_layers * 3, 3, padding=1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.project(z)).view(-1, self.width, self.start, self.start)
        x = self.to_pixels(self.upsample(x))
        if x.shape[-1] != self.input_size:
            x = F.interpolate(x, size=(self.input_size, self.input_size), mode="bilinear", align_corners=False)
        return torch.sigmoid(x)


class GrainVAE(nn.Module):
    """The variational autoencoder of grain stacks.

    Input: ``(batch, layer, 3, size, size)`` floats in [0, 1]. ``forward`` returns the
    reconstruction (same shape), ``mu`` and ``logvar`` (``(batch, latent_dim)`` each).
    """

    def __init__(self, settings: EncoderSettings):
        super().__init__()
        self.settings = settings
        n_branches = 1 if settings.shared_branches else settings.n_layers
        branches, n_features = [], 0
        for _ in range(n_branches):
            branch, n_features = make_branch(settings)
            branches.append(branch)
        self.branches = nn.ModuleList(branches)
        self.n_features = n_features
        self.head = nn.Linear(n_features * settings.n_layers, 2 * settings.latent_dim)
        self.decoder = Decoder(settings.latent_dim, settings.n_layers, settings.input_size, settings.decoder_width)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        self.channels_last = False

    def use_channels_last(self) -> GrainVAE:
        """Switch to the channels-last memory format (faster convolutions on GPUs)."""
        self.channels_last = True
        return self.to(memory_format=torch.channels_last)

    def _check(self, x: torch.Tensor) -> None:
        s = self.settings
        if x.dim() != 5 or x.shape[1] != s.n_layers or x.shape[2] != 3 or x.shape[3:] != (s.input_size, s.input_size):
            raise ValueError(f"expected grains of shape (batch, {s.n_layers}, 3, {s.input_size}, {s.input_size}), "
                             f"got {tuple(x.shape)}")

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``mu`` and ``logvar`` of a batch of grain stacks."""
        self._check(x)
        batch, n_layers = x.shape[:2]
        fmt = torch.channels_last if self.channels_last else torch.contiguous_format
        if self.settings.shared_branches:
            flat = ((x.flatten(0, 1) - self.mean) / self.std).contiguous(memory_format=fmt)
            features = self.branches[0](flat).view(batch, n_layers * self.n_features)
        else:
            features = torch.cat(
                [branch(((x[:, i] - self.mean) / self.std).contiguous(memory_format=fmt))
                 for i, branch in enumerate(self.branches)], dim=1)
        mu, logvar = self.head(features).chunk(2, dim=1)
        return mu, logvar

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        s = self.settings
        return self.decoder(z).view(-1, s.n_layers, 3, s.input_size, s.input_size)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        mu, logvar = self.encode(x)
        if self.training:
            z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        else:
            z = mu
        return self.decode(z), mu, logvar


def dihedral(x: torch.Tensor, i: int) -> torch.Tensor:
    """The ``i``-th of the 8 rotations and flips (0: none) of square images (the last two dimensions).

    ``i % 4`` quarter turns, then a left-right flip when ``i >= 4``.

    Examples
    --------
    >>> x = torch.arange(4.0).view(1, 2, 2)
    >>> [dihedral(x, i).flatten().tolist() for i in (0, 1, 4)]
    [[0.0, 1.0, 2.0, 3.0], [1.0, 3.0, 0.0, 2.0], [1.0, 0.0, 3.0, 2.0]]
    """
    out = torch.rot90(x, i % 4, dims=(-2, -1)) if i % 4 else x
    return torch.flip(out, dims=(-1,)) if i >= 4 else out


def random_dihedral(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Every grain of ``(batch, ...)`` turned and flipped at random (one draw per grain, all layers alike)."""
    draw = torch.randint(0, 8, (x.shape[0],), generator=generator).tolist()
    out = x.clone()
    for i in set(draw) - {0}:
        rows = [j for j, d in enumerate(draw) if d == i]
        out[rows] = dihedral(x[rows], i)
    return out


def invariant_mu(model: GrainVAE, x: torch.Tensor) -> torch.Tensor:
    """The mean ``mu`` of grains over their 8 rotations and flips: the same for a grain turned or flipped."""
    total = None
    for i in range(8):
        mu, _ = model.encode(dihedral(x, i))
        total = mu.float() if total is None else total + mu.float()
    return total / 8


def vae_loss(recon: torch.Tensor, target: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor,
             beta: float = 1.0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Loss = pixel MSE + beta * KL(N(mu, sigma) || N(0, 1)), both per pixel value of a grain.

    The KL of a grain (summed over the latent) is divided by the number of pixel values of the
    grain, so the two terms are on the same per-pixel scale: this is the grain's negative ELBO
    under a Gaussian decoder, divided by its size. Without it a mean MSE (~1e-2) against a summed
    KL (~1e1) drives every ``mu`` to zero. Returns ``(loss, mse, kl_per_grain)``.

    Examples
    --------
    >>> x = torch.zeros(2, 1, 3, 4, 4)
    >>> loss, mse, kl = vae_loss(x, x, torch.zeros(2, 8), torch.zeros(2, 8))
    >>> float(loss), float(kl)
    (0.0, 0.0)
    """
    mse = F.mse_loss(recon.float(), target.float())
    kl = (-0.5 * torch.sum(1 + logvar.float() - mu.float().pow(2) - logvar.float().exp(), dim=1)).mean()
    per_grain = target[0].numel()
    return mse + beta * kl / per_grain, mse, kl
