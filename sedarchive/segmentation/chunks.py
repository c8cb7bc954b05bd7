"""Worker side of the segment stage: a chunk of stack positions to a scratch file, and back into the store.

Pass 1 (:func:`segment_chunk`) reads a few positions of a sample store, extracts their grains and
writes images and measures to one ``.npz`` file under ``ARCHIVE/.work/segment/<sample>/``. The file
appears under its final name only when complete (written to a temporary name, then renamed), so
its presence is the chunk's done-mark and a killed run redoes only the chunks without one.
Pass 2 (:func:`copy_chunk`) copies a chunk's images into ``particle_images``, whole chunks only.
"""
from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from catalog import SampleKey, read_array, read_attrs, write_region
from sedarchive.segmentation.extract import GrainTable, extract_grains
from sedarchive.segmentation.settings import SegmentSettings

SCRATCH = Path(".work") / "segment"


@dataclass(frozen=True, order=True)
class ChunkKey:
    """Positions ``start:stop`` of one sample: the unit of work of the segment stage."""

    sample: SampleKey
    start: int
    stop: int

    @property
    def name(self) -> str:
        return f"{self.sample.name}[{self.start}:{self.stop}]"


def scratch_dir(archive_root: str | Path, key: SampleKey) -> Path:
    return Path(archive_root) / SCRATCH / key.name


def chunk_file(scratch: str | Path, start: int, stop: int) -> Path:
    return Path(scratch) / f"positions-{start:06d}-{stop:06d}.npz"


def prepare_scratch(scratch: Path, settings: SegmentSettings) -> None:
    """Make the scratch folder; chunks left by a run with other settings (or chunking) are removed."""
    stamp = json.dumps(settings.to_dict(), sort_keys=True)
    marker = scratch / "settings.json"
    if scratch.exists() and (not marker.exists() or marker.read_text() != stamp):
        shutil.rmtree(scratch)
    if not scratch.exists():
        scratch.mkdir(parents=True)
        tmp = marker.with_suffix(f".tmp{os.getpid()}")
        tmp.write_text(stamp)
        os.replace(tmp, marker)


def segment_chunk(store_path: str, scratch: str, start: int, stop: int, settings: dict[str, Any],
                  sample_name: str) -> int:
    """Pass 1 for positions ``start:stop``: grains to the chunk's scratch file; returns their count.

    A chunk already done (its file exists) is not segmented again.
    """
    target = chunk_file(scratch, start, stop)
    if target.exists():
        return chunk_count(target)
    segment = SegmentSettings.from_dict(settings)
    pixel_size = read_attrs(store_path).get("pixel_size_um")
    images, tables = [], []
    n_layers = 0
    for position in range(start, stop):
        stack = read_array(store_path, "stacks", position)
        n_layers = len(stack)
        crops, table = extract_grains(stack, segment, position=position, pixel_size_um=pixel_size,
                                      what=f"{sample_name} position {position}")
        images.append(crops)
        tables.append(table)
    table = GrainTable.concat(tables, n_layers, with_um=pixel_size is not None)
    tmp = target.with_name(f"{target.stem}.tmp{os.getpid()}.npz")
    np.savez(tmp, images=np.concatenate(images), **table.columns)
    os.replace(tmp, target)  # the done-mark: the file exists only once complete
    return len(table)


def chunk_count(path: str | Path) -> int:
    with np.load(path) as data:
        return int(data["position"].shape[0])


def read_chunk_table(path: str | Path) -> GrainTable:
    """The per-grain measures of a done chunk (without its images)."""
    with np.load(path) as data:
        return GrainTable({name: data[name] for name in data.files if name != "images"})


def copy_chunk(store_path: str, path: str, first_particle: int, target: str = "particle_images") -> int:
    """Pass 2: write a done chunk's images into ``target`` (the staged ``particle_images``) from ``first_particle`` on."""
    with np.load(path) as data:
        images = data["images"]
    write_region(store_path, target, first_particle, images)
    return len(images)
