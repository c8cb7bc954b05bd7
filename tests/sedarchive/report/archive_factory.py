"""A small clustered archive for the report, review and export tests (seeded, a second to build).

Two cores, five samples, about 200 grains of four kinds with 6 focal layers of 32x32 pixels; every
grain has a latent, a cluster (kind x size: 8 clusters), flags and measurements, as the contract's
stages would have written them; ``umap.zarr`` and ``proportions.zarr`` beside them.
"""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from catalog import Archive, SampleKey, create_variables, write_position, write_region

KINDS = ("quartz", "dark", "foram_intact", "foram_broken")
SAMPLES = (("AI-3352", 100, 102), ("AI-3352", 110, 112), ("AI-3352", 120, 122), ("B-7", 5, 7), ("B-7", 15, 17))
N_LAYERS, SIDE = 6, 32
K = 8


def grain_stack(kind: int, radius: float, sharpest: int, rng: np.random.Generator) -> np.ndarray:
    """``(layer, 32, 32, 3)`` uint8: a grain of one kind on the green plate, sharp at one layer."""
    yy, xx = np.mgrid[:SIDE, :SIDE] - (SIDE - 1) / 2
    r = np.hypot(yy, xx)
    colour = {0: (225, 220, 210), 1: (60, 45, 35), 2: (240, 225, 190), 3: (200, 170, 130)}[kind]
    inside = r <= radius
    if kind == 2:  # chambers: a ring of light spots
        inside &= ~((np.abs(r - radius * 0.5) < 1.5) & (np.sin(np.arctan2(yy, xx) * 4) > 0.3))
    if kind == 3:  # broken: half of it is gone
        inside &= xx < radius * 0.3
    stack = np.empty((N_LAYERS, SIDE, SIDE, 3), np.uint8)
    for layer in range(N_LAYERS):
        focus = 1.0 - abs(layer - sharpest) / N_LAYERS
        img = np.zeros((SIDE, SIDE, 3), float) + (30, 150, 40)
        img[inside] = np.asarray(colour) * focus + np.asarray((30, 150, 40)) * (1 - focus)
        img += rng.normal(0, 6, img.shape)
        stack[layer] = np.clip(img, 0, 255).astype(np.uint8)
    return stack


def make_archive(root: Path, *, seed: int = 7, clustered: bool = True, umap_points: int = 0,
                 quick_map: bool = True) -> Archive:
    """Build the archive under ``root``; ``clustered=False`` stops after the grains (no latent, cluster).

    Clustering is the real stage (``sedarchive.counting.stage.run_stage``, K = 8, no Dask client), which
    also writes ``proportions.zarr`` and, with ``umap_points``, ``umap.zarr`` (UMAP's first fit takes
    half a minute here, so ``quick_map`` writes the map in the same schema from a PCA instead).
    """
    rng = np.random.default_rng(seed)
    archive = Archive.create(root)
    for s, (core, top, bottom) in enumerate(SAMPLES):
        key = SampleKey(core, top, bottom)
        archive.create_sample(key, n_positions=2, n_layers=N_LAYERS, height=48, width=64,
                              pixel_size_um=3.5, focal_offsets_um=[0, 20, 40, 60, 80, 100])
        path = archive.sample_path(key)
        for pos in range(2):
            write_position(path, pos, rng.integers(0, 255, (N_LAYERS, 48, 64, 3), dtype=np.uint8), (pos * 2.0, 0.0))
        n = int(rng.integers(34, 46))
        weights = np.array([4, 2, 3, 1 + s], float)
        kinds = rng.choice(4, size=n, p=weights / weights.sum())
        radius = rng.uniform(6, 14, n)
        big = (radius > 10).astype(int)
        sharpest = rng.integers(1, 5, n)
        images = np.stack([grain_stack(k, r, l, rng) for k, r, l in zip(kinds, radius, sharpest)])
        sharpness = -np.abs(np.arange(N_LAYERS)[None, :] - sharpest[:, None]).astype(np.float32)
        bbox = np.stack([rng.integers(0, 20, n), rng.integers(0, 30, n)], 1)
        bbox = np.concatenate([bbox, bbox + np.round(2 * radius[:, None]).astype(int)], 1)
        chopped = rng.random(n) < 0.1
        clump = (rng.random(n) < 0.05) & ~chopped
        variables = {
            "particle_images": (("particle", "layer", "py", "px", "channel"), images.shape, np.uint8, (16, N_LAYERS, SIDE, SIDE, 3)),
            "position": (("particle",), (n,), np.int64, (n,)),
            "bbox": (("particle", "corner"), (n, 4), np.int64, (n, 4)),
            "area_px": (("particle",), (n,), np.int64, (n,)),
            "chopped": (("particle",), (n,), bool, (n,)),
            "clump": (("particle",), (n,), bool, (n,)),
            "sharpness": (("particle", "layer"), (n, N_LAYERS), np.float32, (n, N_LAYERS)),
            "aspect_ratio": (("particle",), (n,), np.float32, (n,)),
        }
        values = {
            "particle_images": images, "position": rng.integers(0, 2, n), "bbox": bbox,
            "area_px": np.round(np.pi * radius**2).astype(np.int64), "chopped": chopped, "clump": clump,
            "sharpness": sharpness, "aspect_ratio": rng.uniform(1, 1.6, n).astype(np.float32),
        }
        if clustered:
            latent = np.zeros((n, 8), np.float32)
            latent[np.arange(n), kinds] = 3.0
            latent[:, 4] = 3.0 * big
            latent += rng.normal(0, 0.2, latent.shape).astype(np.float32)
            variables["latent"] = (("particle", "feature"), (n, 8), np.float32, (n, 8))
            values["latent"] = latent
        create_variables(path, variables, compressed=["particle_images"])
        for name, data in values.items():
            write_region(path, name, 0, data)
        archive.set_status(key, "encoded" if clustered else "segmented", segment_settings={"method": "fast"},
                           segment_elapsed_s=1.5, **({"encoder_id": "synthetic"} if clustered else {}))
    if clustered:
        from sedarchive.clustering import ClusterSettings
        from sedarchive.counting.stage import run_stage

        report = run_stage(archive, archive.keys(), None, ClusterSettings(k=K, umap_points=umap_points, seed=seed),
                           quiet=True)
        assert report.ok, report.failures
        if quick_map and not umap_points:
            write_quick_map(archive)
    return archive


def write_quick_map(archive: Archive) -> None:
    """``umap.zarr`` as CONTRIBUTING.md describes it, with a 2-D PCA standing in for UMAP."""
    import xarray as xr

    from catalog import read_array

    cols: dict[str, list] = {k: [] for k in ("latent", "cluster", "sample", "core", "top", "bottom", "particle")}
    for key in archive.keys():
        path = archive.sample_path(key)
        latent = read_array(path, "latent")
        cols["latent"].append(latent)
        cols["cluster"].append(read_array(path, "cluster"))
        cols["particle"].append(np.arange(len(latent)))
        for name, value in (("sample", key.name), ("core", key.core), ("top", key.top_cm), ("bottom", key.bottom_cm)):
            cols[name].append(np.full(len(latent), value))
    c = {k: np.concatenate(v) for k, v in cols.items()}
    centred = c["latent"] - c["latent"].mean(axis=0)
    xy = centred @ np.linalg.svd(centred, full_matrices=False)[2][:2].T
    ds = xr.Dataset({
        "umap": (("point", "dim"), xy.astype(np.float32)),
        "cluster": ("point", c["cluster"].astype(np.int32)),
        "sample": ("point", c["sample"].astype(object)),
        "core": ("point", c["core"].astype(object)),
        "depth_top_cm": ("point", c["top"].astype(float)),
        "depth_bottom_cm": ("point", c["bottom"].astype(float)),
        "particle": ("point", c["particle"].astype(np.int64)),
    })
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zarr: consolidated metadata is not yet in the v3 spec
        ds.to_zarr(archive.root / "umap.zarr", mode="w", zarr_format=3, consolidated=True)
