"""Ingest throughput (frames/s, MB/s with 1 and 2 workers) and the compression of realistic frames.

    python bench/ingest.py            # 16 positions x 6 layers of 1280x1024 frames
    python bench/ingest.py --quick    # 4 positions

Frames come from the simulated microscope (green plate, grains, defocus, vignetting, noise) and are
written as PNG files first, as a lab's existing photographs would be.
"""
from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from acquisition.sim import VirtualPlate, render_stack
from catalog import Archive, SampleKey
from sedarchive.dask.tasks import dask_client
from sedarchive.ingest import ingest, plan_ingest


def make_frames(n_positions: int, height: int, width: int, seed: int = 0) -> np.ndarray:
    plate = VirtualPlate.generate(seed=seed)
    stacks = []
    for p in range(n_positions):
        x, y = 2.0 + 0.5 * (p % 4), 2.0 + 0.5 * (p // 4)
        stack, _ = render_stack(plate, x, y, height=height, width=width)
        stacks.append(stack)
    return np.stack(stacks)


def compression(frames: np.ndarray) -> list[tuple[str, float, float]]:
    """Ratio and encode MB/s of candidate codecs on whole position chunks."""
    from numcodecs import Blosc, Zstd

    candidates = {
        "blosc-zstd3-bitshuffle (chosen)": Blosc(cname="zstd", clevel=3, shuffle=Blosc.BITSHUFFLE),
        "blosc-zstd3-shuffle": Blosc(cname="zstd", clevel=3, shuffle=Blosc.SHUFFLE),
        "blosc-lz4-bitshuffle": Blosc(cname="lz4", clevel=5, shuffle=Blosc.BITSHUFFLE),
        "blosc-lz4-noshuffle": Blosc(cname="lz4", clevel=5, shuffle=Blosc.NOSHUFFLE),
        "zstd-3": Zstd(level=3),
    }
    rows = []
    for name, codec in candidates.items():
        raw = packed = 0
        start = time.perf_counter()
        for chunk in frames:
            data = np.ascontiguousarray(chunk)
            raw += data.nbytes
            packed += len(codec.encode(data))
        seconds = time.perf_counter() - start
        rows.append((name, raw / packed, raw / seconds / 1e6))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--positions", type=int, default=16)
    args = parser.parse_args()
    n_positions = 4 if args.quick else args.positions
    height, width = 1024, 1280
    work = Path(tempfile.mkdtemp(prefix="bench-ingest-"))
    try:
        frames = make_frames(n_positions, height, width)
        src = work / "frames"
        src.mkdir()
        for p in range(n_positions):
            for z in range(frames.shape[1]):
                Image.fromarray(frames[p, z]).save(src / f"plate_p{p}_z{z}.png", compress_level=1)
        n_frames = frames.shape[0] * frames.shape[1]
        mb = frames.nbytes / 1e6
        print(f"{n_frames} frames of {width}x{height} RGB ({mb:.0f} MB raw) from PNG files\n")
        print(f"{'workers':>7}  {'seconds':>8}  {'frames/s':>8}  {'MB/s':>6}")
        for n_workers in (1, 2):
            with dask_client(n_workers=n_workers, quiet=True) as client:
                archive = Archive.create(work / f"archive{n_workers}")
                plan = plan_ingest(src)
                start = time.perf_counter()
                ingest(archive, SampleKey("BENCH", 0, 1), plan, client, positions_per_task=1, quiet=True)
                seconds = time.perf_counter() - start
            print(f"{n_workers:>7}  {seconds:8.2f}  {n_frames / seconds:8.1f}  {mb / seconds:6.1f}")
        stored = sum(f.stat().st_size for f in (work / "archive1").rglob("*") if f.is_file())
        print(f"\nstored sample: {stored / 1e6:.0f} MB for {mb:.0f} MB raw (ratio {mb * 1e6 / stored:.2f})\n")
        print(f"{'codec':<34}  {'ratio':>5}  {'encode MB/s':>11}")
        for name, ratio, speed in compression(frames):
            print(f"{name:<34}  {ratio:5.2f}  {speed:11.0f}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
