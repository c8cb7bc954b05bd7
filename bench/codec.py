"""Codec benchmark for grain crops and stacks: encode and decode speed, and bytes stored.

    python bench/codec.py [--positions N] [--grains-per-mm2 D] [--json FILE]

Grain crops (one ``(1, 6, 280, 280, 3)`` uint8 chunk per grain, as ``particle_images`` stores them)
are cut by the real segmentation from a simulated sample of full-size frames; the stack chunk is
one position ``(1, 6, 1024, 1280, 3)``. Each codec is Blosc with one thread (the workers are
single-threaded), timed in CPU seconds of this process (less sensitive to a loaded machine than
wall time). Simulated frames compress differently from photographs: the ranking is what counts.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

CODECS = {
    "zstd-3 bitshuffle": ("zstd", 3, "bitshuffle"),
    "zstd-1 bitshuffle": ("zstd", 1, "bitshuffle"),
    "lz4 bitshuffle": ("lz4", 5, "bitshuffle"),
    "zstd-1 byte-shuffle": ("zstd", 1, "shuffle"),
    "lz4 no shuffle": ("lz4", 5, "noshuffle"),
}


def measure(chunks: list[np.ndarray], cname: str, clevel: int, shuffle: str, repeats: int = 3) -> dict:
    """CPU ms per chunk to encode and to decode, and raw bytes / stored bytes, over ``chunks``."""
    from numcodecs import Blosc

    shuffles = {"noshuffle": Blosc.NOSHUFFLE, "shuffle": Blosc.SHUFFLE, "bitshuffle": Blosc.BITSHUFFLE}
    codec = Blosc(cname=cname, clevel=clevel, shuffle=shuffles[shuffle], blocksize=0)
    encoded = [codec.encode(c) for c in chunks]
    start = time.process_time()
    for _ in range(repeats):
        encoded = [codec.encode(c) for c in chunks]
    encode = (time.process_time() - start) / repeats / len(chunks)
    start = time.process_time()
    for _ in range(repeats):
        for e in encoded:
            codec.decode(e)
    decode = (time.process_time() - start) / repeats / len(chunks)
    raw = sum(c.nbytes for c in chunks)
    stored = sum(len(e) for e in encoded)
    return {"encode_ms": 1000 * encode, "decode_ms": 1000 * decode, "ratio": raw / stored,
            "encode_mb_s": raw / len(chunks) / encode / 1e6, "stored_bytes": stored}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--positions", type=int, default=2, help="stack positions to cut grains from (default 2)")
    parser.add_argument("--grains-per-mm2", type=float, default=10.0, help="grain density of the simulated plate")
    parser.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    args = parser.parse_args(argv)

    from numcodecs import blosc

    from acquisition.sim import simulate_sample
    from catalog import Archive, SampleKey, read_array
    from sedarchive.segmentation import SegmentSettings
    from sedarchive.segmentation.extract import extract_grains

    blosc.set_nthreads(1)
    with tempfile.TemporaryDirectory() as tmp:
        archive = Archive.create(Path(tmp) / "archive")
        path = simulate_sample(archive, SampleKey("CODEC", 0, 2), n_positions=args.positions, height=1024,
                               width=1280, n_layers=6, seed=7, pixel_size_um=1.5,
                               grains_per_mm2=args.grains_per_mm2)
        stacks = read_array(path, "stacks")
    crops = [extract_grains(stacks[p], SegmentSettings(method="fast"), position=p, pixel_size_um=1.5)[0]
             for p in range(len(stacks))]
    grains = [np.ascontiguousarray(g[None]) for c in crops for g in c]
    stack_chunks = [np.ascontiguousarray(stacks[p:p + 1]) for p in range(len(stacks))]
    figures: dict = {"grains": len(grains), "positions": len(stacks), "codecs": {}}
    print(f"{len(grains)} grain chunks of {grains[0].shape} and {len(stack_chunks)} stack chunks of "
          f"{stack_chunks[0].shape}; Blosc, 1 thread, CPU time")
    header = ("codec", "grain encode ms", "grain decode ms", "grain ratio", "stack encode ms", "stack MB/s",
              "stack ratio")
    rows = []
    for name, (cname, clevel, shuffle) in CODECS.items():
        g = measure(grains, cname, clevel, shuffle)
        s = measure(stack_chunks, cname, clevel, shuffle, repeats=1)
        figures["codecs"][name] = {"grains": g, "stacks": s}
        rows.append((name, f"{g['encode_ms']:.2f}", f"{g['decode_ms']:.2f}", f"{g['ratio']:.2f}",
                     f"{s['encode_ms']:.0f}", f"{s['encode_mb_s']:.0f}", f"{s['ratio']:.2f}"))
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(str(c).rjust(w) for c, w in zip(row, widths)))
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
