"""Seeded synthetic segmented samples for the feature tests: small crops of a few grain kinds.

Until segmentation writes real crops, a "segmented" sample is made with the catalog API alone:
``particle_images (particle, layer, py, px, 3)`` uint8 on a green plate, ``chopped`` and ``clump``
flags, status ``segmented``.
"""
from __future__ import annotations

import numpy as np

from catalog import Archive, SampleKey, create_variables, write_region

KINDS = ("quartz", "dark", "foram")


def synthetic_crops(n: int, n_layers: int, size: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``n`` grain stacks on a green background and their kind index (0 quartz, 1 dark, 2 foram).

    A grain is a disk of a kind-specific colour (a ring for forams); its focus (blur) changes
    across the focal layers, best in the middle one.
    """
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] / size - 0.5
    kinds = rng.integers(0, len(KINDS), n)
    out = np.empty((n, n_layers, size, size, 3), dtype=np.uint8)
    colours = np.array([[225, 215, 190], [60, 50, 45], [240, 240, 235]], dtype=float)
    for i, kind in enumerate(kinds):
        cy, cx = rng.uniform(-0.1, 0.1, 2)
        radius = rng.uniform(0.2, 0.38)
        r = np.hypot(yy - cy, xx - cx)
        for layer in range(n_layers):
            soft = 0.01 + 0.03 * abs(layer - (n_layers - 1) / 2)
            disk = 1 / (1 + np.exp((r - radius) / soft))
            if kind == 2:
                disk = disk * (0.4 + 0.6 * (r > radius * 0.55))
            background = np.array([40, 170, 60], dtype=float)
            colour = colours[kind] + rng.normal(0, 8, 3)
            img = background * (1 - disk[..., None]) + colour * disk[..., None]
            out[i, layer] = np.clip(img + rng.normal(0, 4, img.shape), 0, 255).astype(np.uint8)
    return out, kinds


def make_segmented_sample(archive: Archive, key: SampleKey, n: int = 24, n_layers: int = 3, size: int = 32,
                          seed: int = 0, flagged: int = 4, chunk: int = 8) -> np.ndarray:
    """A registered sample with ``n`` synthetic grains (``flagged`` of them chopped or clumps).

    Returns the crops written.
    """
    path = archive.create_sample(key, 1, n_layers, 16, 16)
    crops, _ = synthetic_crops(n, n_layers, size, seed)
    chopped = np.zeros(n, dtype=bool)
    clump = np.zeros(n, dtype=bool)
    chopped[: flagged // 2] = True
    clump[flagged // 2 : flagged] = True
    create_variables(path, {
        "particle_images": (("particle", "layer", "py", "px", "channel"), crops.shape, np.uint8,
                            (chunk, n_layers, size, size, 3)),
        "chopped": (("particle",), (n,), bool, (n,)),
        "clump": (("particle",), (n,), bool, (n,)),
    }, compressed=["particle_images"])
    write_region(path, "particle_images", 0, crops)
    write_region(path, "chopped", 0, chopped)
    write_region(path, "clump", 0, clump)
    archive.set_status(key, "segmented")
    return crops
