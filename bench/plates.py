"""Shared by the classifier benchmark: ``bench/accuracy.py``'s plates, split into training and unseen samples.

The samples, their plate truth and the simulated expert are ``bench/accuracy.py``'s own (imported,
not copied): :func:`build` simulates them (``accuracy.simulate``: class-dependent grain sizes,
10 x 10 frames with 30 % overlap, > 500 grains per sample on the scanned plate) and runs the real
upstream stages so that the unseen samples stay unseen: the encoder is trained on the training
samples' grains only, then every sample is encoded with it; the clustering is fitted on the
training samples only (:func:`cluster_training`).

:func:`plate_truth_fractions` is the truth the fractions are compared with (``plate_fractions`` of
``<name>.grains.csv``: the class mix of the grains whose centre lies in the scanned area).
"""
from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))  # accuracy.py, groundtruth.py

import accuracy  # noqa: E402
from accuracy import FRAME, KINDS, MIXES, grain_tables, name_clusters  # noqa: E402,F401

from catalog import Archive, SampleKey  # noqa: E402


SWAP = False  # True: the other half trains (``--swap``)


def split(keys: list[SampleKey]) -> tuple[list[SampleKey], list[SampleKey]]:
    """Training samples (even places: mixes 1, 3, 5, ..) and unseen samples (odd places: mixes 2, 4, 6, ..)."""
    return (keys[1::2], keys[0::2]) if SWAP else (keys[0::2], keys[1::2])


def build(root: Path, n_samples: int = 6, n_positions: int = 100, *, epochs: int = 4, crop_size: int = 64,
          overlap: float = 0.3, density: float = 2.0, quiet: bool = True) -> dict[str, float]:
    """Simulate (when ``root`` holds no sample yet) and run segment (all), train (training samples) and encode (all)."""
    import time

    from sedarchive.dask import dask_client
    from sedarchive.features.settings import EncodeSettings, preset
    from sedarchive.pipeline import STAGES, PipelineSettings, run_pipeline
    from sedarchive.segmentation.settings import SegmentSettings

    seconds: dict[str, float] = {}
    start = time.perf_counter()
    archive = Archive.create(root)
    if not archive.keys():
        archive = accuracy.simulate(root, n_samples, n_positions, overlap, density)
    seconds["simulate"] = time.perf_counter() - start
    train_keys, _ = split(archive.keys())
    settings = PipelineSettings(segment=SegmentSettings(crop_size=crop_size),
                                train=replace(preset("cpu"), epochs=epochs), encode=EncodeSettings())
    steps = {name: [s for s in STAGES if s.name == name] for name in ("segment", "train", "encode")}
    with dask_client(n_workers=2, quiet=True) as client:
        for name, keys in (("segment", archive.keys()), ("train", train_keys), ("encode", archive.keys())):
            start = time.perf_counter()
            report = run_pipeline(archive, keys, client, settings, stages=steps[name], quiet=quiet)
            if not report.ok:
                raise SystemExit(f"{name} failed:\n{report.summary()}")
            seconds[name] = time.perf_counter() - start
    return seconds


def cluster_training(archive: Archive, k: int) -> None:
    """Fit K-means on the training samples only (a new model) and label them; the unseen samples get no cluster."""
    from sedarchive.clustering import ClusterSettings, run_stage as cluster

    train_keys, _ = split(archive.keys())
    cluster(archive, train_keys, None, ClusterSettings(k=k, umap_points=0, refit=True), quiet=True)


def sample_table(archive: Archive, key: SampleKey) -> dict:
    """One sample as ``accuracy.grain_tables`` gives it (truths, matched true kind of every found grain), for a
    sample with or without clusters, plus ``weight``: the count weights of ``sedarchive.counting`` (not written)."""
    from groundtruth import match

    from acquisition.sim import plate_fractions, read_plate_truth, read_truth
    from catalog import read_array
    from catalog.store import array_names
    from sedarchive.counting.sample import count_sample

    path = archive.sample_path(key)
    truth = read_truth(path)
    grains, _ = read_plate_truth(path)
    index, _ = match(read_array(path, "position"), read_array(path, "bbox"), truth)
    kinds = truth["kind"].to_numpy().astype(object)  # a clump: the kind of its largest grain
    chopped = read_array(path, "chopped").astype(bool)
    return {
        "key": key, "path": path, "truth": truth,
        "plate": plate_fractions(grains, KINDS), "n_plate": int(grains["in_scan"].sum()),
        "kind": np.array([kinds[i] if i >= 0 else "" for i in index], dtype=object),
        "chopped": chopped, "flagged": chopped | read_array(path, "clump").astype(bool),
        "cluster": (read_array(path, "cluster").astype(np.int64) if "cluster" in array_names(path)
                    else np.full(len(index), -1, np.int64)),
        "weight": np.asarray(count_sample(path, write=False, warn=False).weight, float),
    }


def plate_truth_fractions(table: dict) -> np.ndarray:
    """The plate truth of one sample of :func:`accuracy.grain_tables`, in :data:`KINDS` order."""
    return np.array([table["plate"][k] for k in KINDS], float)


def main() -> None:
    import argparse
    import os

    parser = argparse.ArgumentParser(description="build the classifier benchmark's archive once (reused after)")
    parser.add_argument("archive")
    parser.add_argument("--samples", type=int, default=6)
    parser.add_argument("--positions", type=int, default=100)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--swap", action="store_true", help="the other half of the samples trains")
    opts = parser.parse_args()
    global SWAP
    SWAP = opts.swap
    load = os.getloadavg()[0]
    seconds = build(Path(opts.archive), opts.samples, opts.positions, epochs=opts.epochs, quiet=False)
    print(", ".join(f"{k} {v:.0f} s" for k, v in seconds.items()), f"load {load:.1f} -> {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
