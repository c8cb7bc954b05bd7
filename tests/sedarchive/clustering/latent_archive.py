"""Seeded synthetic archives for the clustering tests: encoded sample stores holding Gaussian blobs."""
from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from catalog import Archive, SampleKey, create_variables, update_attrs, write_region

KINDS = ("quartz", "dark", "foram_intact", "foram_broken")


def blob_centres(n_blobs: int, n_features: int, seed: int = 0, spread: float = 10.0) -> np.ndarray:
    return np.random.default_rng(seed).normal(0, spread, (n_blobs, n_features)).astype(np.float32)


def add_encoded_sample(
    archive: Archive,
    key: SampleKey,
    blob: np.ndarray,
    centres: np.ndarray,
    *,
    seed: int,
    noise: float = 1.0,
    chopped: np.ndarray | None = None,
    clump: np.ndarray | None = None,
    encoder_id: str = "enc-test",
    chunk: int = 64,
) -> np.ndarray:
    """An encoded sample whose grain ``i`` has a latent near ``centres[blob[i]]``; returns the latents."""
    rng = np.random.default_rng(seed)
    n, d = len(blob), centres.shape[1]
    latents = (centres[blob] + rng.normal(0, noise, (n, d))).astype(np.float32)
    path = archive.create_sample(key, 1, 1, 8, 8)
    create_variables(path, {
        "bbox": (("particle", "corner"), (n, 4), np.int64, (chunk, 4)),
        "latent": (("particle", "feature"), (n, d), np.float32, (chunk, d)),
        "chopped": (("particle",), (n,), bool, (chunk,)),
        "clump": (("particle",), (n,), bool, (chunk,)),
    })
    write_region(path, "latent", 0, latents)
    write_region(path, "chopped", 0, np.zeros(n, bool) if chopped is None else chopped)
    write_region(path, "clump", 0, np.zeros(n, bool) if clump is None else clump)
    update_attrs(path, encoder_id=encoder_id)
    archive.set_status(key, "encoded")
    return latents


def make_archive(root, plan: Mapping[SampleKey, int], *, n_blobs: int = 4, n_features: int = 8, seed: int = 0,
                 flag_every: int = 0, encoder_id: str = "enc-test") -> tuple[Archive, dict]:
    """An archive with ``plan[key]`` grains per sample; returns it and the true blob of every grain."""
    archive = Archive.create(root)
    centres = blob_centres(n_blobs, n_features, seed)
    truth = {}
    for i, (key, n) in enumerate(plan.items()):
        rng = np.random.default_rng(seed + 100 + i)
        blob = rng.integers(0, n_blobs, n)
        flags = np.zeros(n, bool)
        if flag_every:
            flags[::flag_every] = True
        add_encoded_sample(archive, key, blob, centres, seed=seed + 200 + i, chopped=flags, encoder_id=encoder_id)
        truth[key] = blob
    return archive, truth
