"""Grain crops for the encoder: which grains to learn from, streamed in shuffled batches.

An index of the eligible grains (``GrainIndex``: blocks of particles per sample, chopped grains and
clumps left out by default) is built from the small flag arrays only. An epoch reads the blocks in
a seeded random order into a bounded shuffle buffer and yields batches from it, so the crops of an
archive never have to fit in memory, and the same seed and epoch give the same batches.
"""
from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from catalog import read_array, read_attrs, status_rank
from catalog.errors import SedarchiveError
from catalog.store import array_chunks, array_names, array_shape, read_flags
from sedarchive.errors import InputError

IMAGES = "particle_images"
BLOCK = 64  # particles read at once, at least when chunks are small (one read per grain is slow)


@dataclass(frozen=True)
class GrainBlock:
    """Particles ``start..stop`` of one sample store; ``keep`` lists those used (absolute indices)."""

    path: str
    start: int
    stop: int
    keep: tuple[int, ...]


@dataclass
class GrainIndex:
    """The grains a model learns from, and the samples that could not be used (name -> reason)."""

    blocks: list[GrainBlock]
    n_layers: int
    samples: dict[str, int] = field(default_factory=dict)
    failures: dict[str, str] = field(default_factory=dict)

    @property
    def n_grains(self) -> int:
        return sum(len(b.keep) for b in self.blocks)

    def fingerprint(self) -> str:
        """A digest of which grains are in (sample names and kept indices)."""
        digest = hashlib.sha256()
        for block in self.blocks:
            digest.update(f"{Path(block.path).name}:{block.start}:{block.stop}:".encode())
            digest.update(np.asarray(block.keep, dtype=np.int64).tobytes())
        return digest.hexdigest()


def sample_blocks(path: str | Path, include_flagged: bool = False) -> tuple[list[GrainBlock], tuple[int, ...]]:
    """The blocks of one sample store and its crop shape ``(layer, py, px, channel)``."""
    path = Path(path)
    status = read_attrs(path).get("status", "acquiring")
    if status_rank(status) < status_rank("segmented"):
        raise InputError(f"sample {path.name} is not segmented yet (status {status})")
    if IMAGES not in array_names(path):
        raise InputError(f"sample {path.name} has no {IMAGES}; run `sedarchive segment` first")
    full = array_shape(path, IMAGES)
    n = int(full[0])
    shape = tuple(int(v) for v in full[1:])
    if len(shape) != 4 or shape[3] != 3:
        raise InputError(f"sample {path.name}: {IMAGES} has shape {full}, expected (particle, layer, py, px, 3)")
    keep = np.ones(n, dtype=bool)
    if not include_flagged:
        chopped, clump = read_flags(path, n)
        keep &= ~(chopped | clump)
    step = block_size(int(array_chunks(path, IMAGES)[0]))
    blocks = []
    for start in range(0, n, step):
        stop = min(n, start + step)
        kept = tuple(int(i) for i in np.flatnonzero(keep[start:stop]) + start)
        if kept:
            blocks.append(GrainBlock(str(path), start, stop, kept))
    return blocks, shape


def block_size(chunk: int) -> int:
    """Particles per read: whole chunks, about :data:`BLOCK` grains (at most four times that).

    Examples
    --------
    >>> block_size(1), block_size(10), block_size(100), block_size(4096)
    (64, 60, 100, 256)
    """
    if chunk >= BLOCK:
        return min(chunk, 4 * BLOCK)
    return max(1, BLOCK // chunk) * chunk


def build_index(paths: Sequence[str | Path], include_flagged: bool = False, max_grains: int | None = None,
                seed: int = 0) -> GrainIndex:
    """Index the eligible grains of the samples; a sample that cannot be used is a failure, not a stop.

    With ``max_grains`` a seeded random subset of that many grains is kept.
    """
    blocks: list[GrainBlock] = []
    failures: dict[str, str] = {}
    samples: dict[str, int] = {}
    n_layers = None
    for path in paths:
        name = Path(path).name.removesuffix(".zarr")
        try:
            found, shape = sample_blocks(path, include_flagged)
            if n_layers is not None and shape[0] != n_layers and found:
                raise InputError(f"sample {name} has {shape[0]} focal layers, other samples have {n_layers}")
        except SedarchiveError as err:
            failures[name] = str(err)
            continue
        if found:
            n_layers = shape[0] if n_layers is None else n_layers
        blocks += found
        samples[name] = sum(len(b.keep) for b in found)
    index = GrainIndex(blocks, n_layers or 0, samples, failures)
    if max_grains is not None and index.n_grains > max_grains:
        index = _subset(index, max_grains, seed)
    return index


def _subset(index: GrainIndex, max_grains: int, seed: int) -> GrainIndex:
    chosen = set(np.random.default_rng([seed, 7]).choice(index.n_grains, size=max_grains, replace=False).tolist())
    blocks, offset, samples = [], 0, {}
    for block in index.blocks:
        kept = tuple(g for i, g in enumerate(block.keep) if offset + i in chosen)
        offset += len(block.keep)
        if kept:
            blocks.append(GrainBlock(block.path, block.start, block.stop, kept))
            name = Path(block.path).name.removesuffix(".zarr")
            samples[name] = samples.get(name, 0) + len(kept)
    return GrainIndex(blocks, index.n_layers, samples, index.failures)


class CropCache:
    """Resized crops kept between epochs, up to ``limit_bytes`` (blocks beyond it are read each time).

    Reading and resizing 280x280 crops costs more than a small model's training step; a data set
    that fits the budget is read once. The cached bytes are those read, so results do not change.
    """

    def __init__(self, limit_bytes: int = 0):
        self.limit = int(limit_bytes)
        self.used = 0
        self._blocks: dict[int, np.ndarray] = {}

    def get(self, index: GrainIndex, i: int, size: int) -> np.ndarray:
        if i in self._blocks:
            return self._blocks[i]
        crops = read_block(index.blocks[i], size)
        if self.used + crops.nbytes <= self.limit:
            self._blocks[i] = crops
            self.used += crops.nbytes
        return crops


def read_block(block: GrainBlock, size: int) -> np.ndarray:
    """The kept crops of a block, resized to ``size``: ``(grain, layer, size, size, 3)`` uint8."""
    crops = read_array(block.path, IMAGES, slice(block.start, block.stop))
    crops = crops[np.asarray(block.keep) - block.start]
    return resize_crops(crops, size)


def resize_crops(crops: np.ndarray, size: int) -> np.ndarray:
    """Resize ``(grain, layer, py, px, 3)`` uint8 crops to ``size`` x ``size``.

    Pixel-area averaging when shrinking (no aliasing), bilinear when enlarging; OpenCV on uint8,
    many times faster than converting the crops to floats first.

    Examples
    --------
    >>> resize_crops(np.zeros((2, 6, 40, 30, 3), np.uint8), 16).shape
    (2, 6, 16, 16, 3)
    """
    import cv2

    crops = np.asarray(crops)
    if crops.ndim != 5 or crops.shape[-1] != 3 or crops.dtype != np.uint8:
        raise InputError(f"crops of shape {crops.shape} {crops.dtype} are not (grain, layer, py, px, 3) uint8")
    n, n_layers, height, width, _ = crops.shape
    if (height, width) == (size, size):
        return crops
    out = np.empty((n, n_layers, size, size, 3), dtype=np.uint8)
    shrink = height >= size and width >= size
    interpolation = cv2.INTER_AREA if shrink else cv2.INTER_LINEAR
    for i in range(n):
        for layer in range(n_layers):
            out[i, layer] = cv2.resize(crops[i, layer], (size, size), interpolation=interpolation)
    return out


def to_model_input(crops: np.ndarray, device: str | torch.device = "cpu", channels_last: bool = False) -> torch.Tensor:
    """uint8 crops ``(grain, layer, size, size, 3)`` -> floats in [0, 1], ``(grain, layer, 3, size, size)``."""
    x = torch.from_numpy(np.ascontiguousarray(crops)).to(device, non_blocking=True)
    return x.permute(0, 1, 4, 2, 3).float().div_(255.0).contiguous()


def batches(index: GrainIndex, size: int, batch_size: int, epoch: int, seed: int = 0,
            shuffle_buffer: int = 512, cache: CropCache | None = None) -> Iterator[np.ndarray]:
    """Shuffled batches of resized crops for one epoch (deterministic in ``seed`` and ``epoch``).

    Blocks are read in a random order into a buffer of at most ``shuffle_buffer`` grains (plus one
    block), which is shuffled and emptied in whole batches, keeping one batch back for the end. Every
    indexed grain comes exactly once; a last batch of a single grain joins the one before it (batch
    normalisation needs two).
    """
    rng = np.random.default_rng([seed, epoch])
    cache = cache or CropCache()
    buffer: list[np.ndarray] = []
    held = 0
    for i in rng.permutation(len(index.blocks)):
        crops = cache.get(index, int(i), size)
        buffer.append(crops)
        held += len(crops)
        if held >= max(shuffle_buffer, 2 * batch_size):
            pool = np.concatenate(buffer)[rng.permutation(held)]
            n_out = (held // batch_size - 1) * batch_size
            yield from (pool[j:j + batch_size] for j in range(0, n_out, batch_size))
            buffer, held = [pool[n_out:]], held - n_out
    if held:
        pool = np.concatenate(buffer)[rng.permutation(held)]
        starts = list(range(0, held, batch_size))
        if len(starts) > 1 and held - starts[-1] == 1:
            starts.pop()
        for j, start in enumerate(starts):
            yield pool[start:starts[j + 1] if j + 1 < len(starts) else held]
