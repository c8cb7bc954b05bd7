"""Encoder benchmark: training and encoding throughput (grains/s), and how well ``mu`` separates kinds.

    python bench/encode.py                    # throughput: parts cpu and paper (about 2 min)
    python bench/encode.py --quick            # fewer grains
    python bench/encode.py --part separation  # one part: cpu | paper | separation (about 6 min)
    python bench/encode.py --device cuda      # the GPU path: bf16/fp16 autocast, channels-last,
                                              # and the paper preset on 4096 grains

Parts:

- ``cpu``: the ``cpu`` preset (small ResNet branches, 64x64, latent 32) on seeded synthetic
  6-layer crops written into sample stores. Training: grains/s of the last epoch of
  ``train_encoder`` (store reads, resizing, forward, backward, Adam). Encoding: grains/s of the
  encode stage run in this process (store -> ``latent``), and of the ``encode_crops`` kernel on
  crops already in memory.
- ``paper``: the ``paper`` preset (six ResNet-152 branches, 280x280, latent 512). On a CPU only a
  few grains (the figure says what a CPU can do, nothing about the GPU target of >= 2,000 grains/s
  on an H100); with ``--device cuda`` thousands, with mixed precision.
- ``separation``: simulated samples (``acquisition.sim``, ground truth per grain) are segmented and
  encoded with the project's stages; K-means (K = 4 and K = 20) on ``mu`` and on downscaled raw
  pixels is scored against the true kinds of the unflagged grains (adjusted Rand index, purity).

Torch uses ``--threads`` intra-op threads (default: all cores). On a machine shared with other
work, one thread can be much faster than two spinning ones: try ``--threads 1``.
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))  # groundtruth.py

from catalog import Archive, SampleKey, create_variables, write_region  # noqa: E402


def synthetic_archive(root: Path, n_grains: int, size: int, n_layers: int = 6, per_sample: int = 256,
                      seed: int = 0) -> Archive:
    """Segmented-looking samples of seeded random grain stacks (disks of a few colours on green)."""
    archive = Archive.create(root)
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] / size - 0.5
    for s, start in enumerate(range(0, n_grains, per_sample)):
        n = min(per_sample, n_grains - start)
        key = SampleKey("BENCH", 10.0 * s, 10.0 * s + 2)
        path = archive.create_sample(key, 1, n_layers, 16, 16)
        crops = np.empty((n, n_layers, size, size, 3), np.uint8)
        for i in range(n):
            r = np.hypot(yy - rng.uniform(-0.1, 0.1), xx - rng.uniform(-0.1, 0.1))
            colour = rng.uniform(30, 240, 3)
            for layer in range(n_layers):
                disk = 1 / (1 + np.exp((r - rng.uniform(0.2, 0.35)) / (0.01 + 0.02 * abs(layer - 2.5))))
                img = np.array([40, 170, 60]) * (1 - disk[..., None]) + colour * disk[..., None]
                crops[i, layer] = np.clip(img + rng.normal(0, 4, img.shape), 0, 255)
        create_variables(path, {
            "particle_images": (("particle", "layer", "py", "px", "channel"), crops.shape, np.uint8,
                                (1, n_layers, size, size, 3)),
            "chopped": (("particle",), (n,), bool, (n,)),
            "clump": (("particle",), (n,), bool, (n,)),
        }, compressed=["particle_images"])
        write_region(path, "particle_images", 0, crops)
        write_region(path, "chopped", 0, np.zeros(n, bool))
        write_region(path, "clump", 0, np.zeros(n, bool))
        archive.set_status(key, "segmented")
    return archive


def throughput(settings, archive: Archive, workdir: Path, encode_batch: int, label: str) -> list[tuple[str, str]]:
    """Train (last epoch's grains/s), then encode through the stage and through the kernel."""
    from catalog import read_array
    from sedarchive.features.data import build_index
    from sedarchive.features.encode import encode_crops
    from sedarchive.features.settings import EncodeSettings
    from sedarchive.features.stage import run_stage
    from sedarchive.features.store import save_encoder
    from sedarchive.features.registry import set_current
    from sedarchive.features.train import resolve_device, train_encoder

    index = build_index([archive.sample_path(k) for k in archive.keys()])
    start = time.monotonic()
    model, history = train_encoder(index, settings, workdir / f"train-{label}")
    wall = time.monotonic() - start
    rows = [(f"{label}: train", f"{history[-1]['grains_per_s']:.3g} grains/s "
                                f"(epoch {len(history)} of {index.n_grains} grains; {wall:.1f} s in all)")]
    info = {"encoder": {**vars(model.settings)}}
    model_id = save_encoder(archive.models_dir, model.to("cpu"), info, history)
    set_current(archive.models_dir, encoder=model_id)
    device = str(resolve_device(settings.device))
    start = time.monotonic()
    report = run_stage(archive, archive.keys(), None, EncodeSettings(batch_size=encode_batch, device=device),
                       quiet=True)
    seconds = time.monotonic() - start
    n = sum(v for v in report.results.values() if isinstance(v, int))
    rows.append((f"{label}: encode stage", f"{n / seconds:.3g} grains/s ({n} grains, stores -> latent, {device})"))
    crops = read_array(archive.sample_path(archive.keys()[0]), "particle_images")
    model = model.to(device).eval()
    if device.startswith("cuda"):
        model = model.use_channels_last()
    encode_crops(model, crops[:encode_batch], encode_batch)  # warm-up
    _sync(device)
    start = time.monotonic()
    encode_crops(model, crops, encode_batch)
    _sync(device)
    seconds = time.monotonic() - start
    rows.append((f"{label}: encode kernel", f"{len(crops) / seconds:.3g} grains/s ({len(crops)} grains in memory)"))
    return rows


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize()


def part_cpu(args, workdir: Path) -> list[tuple[str, str]]:
    from sedarchive.features.settings import preset

    n = 128 if args.quick else 512
    archive = synthetic_archive(workdir / "cpu", n, 64)
    settings = replace(preset("cpu"), epochs=1 if args.quick else 2, device=args.device)
    return throughput(settings, archive, workdir, 64, "cpu preset 64x64x6")


def part_paper(args, workdir: Path) -> list[tuple[str, str]]:
    from sedarchive.features.settings import preset

    gpu = args.device == "cuda"
    n = args.paper_grains or (4096 if gpu else 2)
    archive = synthetic_archive(workdir / "paper", n, 280, per_sample=min(n, 1024))
    settings = replace(preset("paper"), epochs=1, batch_size=32 if gpu else 2, device=args.device,
                       max_grains=min(n, 1024) if gpu else None)
    return throughput(settings, archive, workdir, 256 if gpu else 2, f"paper preset 280x280x6 ({args.device})")


def part_separation(args, workdir: Path) -> list[tuple[str, str]]:
    from groundtruth import true_kinds
    from sklearn.cluster import KMeans
    from sklearn.metrics import adjusted_rand_score

    from acquisition.sim import read_truth, simulate_sample
    from catalog import read_array
    from sedarchive.dask.tasks import dask_client
    from sedarchive.features.settings import EncodeSettings, preset
    from sedarchive.features.stage import run_stage, train_stage
    from sedarchive.segmentation.settings import SegmentSettings
    from sedarchive.segmentation.stage import run_stage as segment

    archive = Archive.create(workdir / "sim")
    keys = [SampleKey("SIM", 10.0 * i, 10.0 * i + 2) for i in range(2 if args.quick else 3)]
    for i, key in enumerate(keys):
        simulate_sample(archive, key, n_positions=12 if args.quick else 20, seed=500 + i)
    settings = replace(preset("cpu"), epochs=8 if args.quick else 20, device=args.device)
    with dask_client(n_workers=2, quiet=True) as client:
        seg = segment(archive, keys, client, SegmentSettings(method="fast"), quiet=True)
        if not seg.ok:
            raise SystemExit(f"segmentation failed: {seg.failures}")
        start = time.monotonic()
        train_stage(archive, keys, None, settings, quiet=True)
        trained = time.monotonic() - start
        run_stage(archive, keys, client, EncodeSettings(device=args.device), quiet=True)
    mu, raw, kinds = [], [], []
    for key in keys:
        path = archive.sample_path(key)
        kind = true_kinds(read_array(path, "position"), read_array(path, "bbox"), read_truth(path))
        keep = (kind != "") & ~read_array(path, "chopped").astype(bool) & ~read_array(path, "clump").astype(bool)
        images = read_array(path, "particle_images")[keep]
        step = max(1, images.shape[2] // 16)
        raw.append(images[:, :, ::step, ::step].reshape(len(images), -1).astype(np.float32) / 255)
        mu.append(read_array(path, "latent")[keep])
        kinds.append(kind[keep])
    mu, raw, kinds = np.concatenate(mu), np.concatenate(raw), np.concatenate(kinds)
    rows = [("separation: grains", f"{len(kinds)} unflagged matched grains, "
                                   f"{ {str(k): int(c) for k, c in zip(*np.unique(kinds, return_counts=True))} }; training {trained:.0f} s")]
    for name, features in (("mu (cpu preset)", mu), ("raw pixels 16x16x6", raw)):
        ari = adjusted_rand_score(kinds, KMeans(4, n_init=10, random_state=0).fit_predict(features))
        labels = KMeans(20, n_init=4, random_state=0).fit_predict(features)
        purity = sum(np.unique(kinds[labels == c], return_counts=True)[1].max() for c in np.unique(labels)) / len(kinds)
        rows.append((f"separation: {name}", f"ARI(K=4) {ari:.3f}, purity(K=20) {purity:.3f}"))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer grains and epochs")
    parser.add_argument("--part", choices=("cpu", "paper", "separation"), action="append",
                        help="run only this part (repeatable)")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--threads", type=int, help="torch intra-op threads (default: all cores)")
    parser.add_argument("--paper-grains", type=int, help="grains for the paper preset (default 2 on CPU, 4096 on CUDA)")
    args = parser.parse_args()
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    parts = args.part or ["cpu", "paper"]
    workdir = Path(tempfile.mkdtemp(prefix="bench-encode-"))
    rows = [("machine", f"{os.cpu_count()} CPU cores, torch {torch.__version__}, {torch.get_num_threads()} threads"
                        + (f", {torch.cuda.get_device_name()}" if args.device == "cuda" else ""))]
    try:
        for part in parts:
            start = time.monotonic()
            rows += {"cpu": part_cpu, "paper": part_paper, "separation": part_separation}[part](args, workdir)
            print(f"[{part} done in {time.monotonic() - start:.0f} s]", file=sys.stderr, flush=True)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"{name.ljust(width)}  {value}")


if __name__ == "__main__":
    main()
