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
    plate_lab = sample_plate(store_path, scratch, segment, sample_name)
    images, tables = [], []
    n_layers = 0
    for position in range(start, stop):
        stack = read_array(store_path, "stacks", position)
        n_layers = len(stack)
        crops, table = extract_grains(stack, segment, position=position, pixel_size_um=pixel_size,
                                      what=f"{sample_name} position {position}", plate_lab=plate_lab)
        images.append(crops)
        tables.append(table)
    table = GrainTable.concat(tables, n_layers, with_um=pixel_size is not None)
    tmp = target.with_name(f"{target.stem}.tmp{os.getpid()}.npz")
    np.savez(tmp, images=np.concatenate(images), **table.columns)
    os.replace(tmp, target)  # the done-mark: the file exists only once complete
    return len(table)


#: The plate colour of a sample is learnt from this many positions spread over it (middle layer).
PLATE_POSITIONS = 8


def sample_plate(store_path: str, scratch: str, settings: SegmentSettings, sample_name: str) -> np.ndarray | None:
    """The sample's plate colour (Lab) by the settings' ``background`` rule; ``None`` for ``paper``.

    Learnt once per sample from :data:`PLATE_POSITIONS` positions spread over it (so that a frame
    filled by a grain is measured against the plate, not taken for an empty plate of its own
    colour) and kept in the scratch folder for the other chunks.
    """
    import fcntl

    cached = Path(scratch) / "plate.json"
    if cached.exists():
        return np.asarray(json.loads(cached.read_text())["lab"], np.float32)
    # one worker learns it, the others (starting on the same sample) wait for its file: the same
    # colour, learnt once (where the file system has no locks, each learns it, as before)
    with open(Path(scratch) / "plate.lock", "a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX)
        except OSError:
            pass
        if cached.exists():
            return np.asarray(json.loads(cached.read_text())["lab"], np.float32)
        lab = learn_plate(store_path, settings, sample_name)
        if lab is None:
            return None
        tmp = cached.with_suffix(f".tmp{os.getpid()}")
        tmp.write_text(json.dumps({"lab": [float(v) for v in lab]}))
        os.replace(tmp, cached)
    return lab


def learn_plate(store_path: str, settings: SegmentSettings, sample_name: str = "sample") -> np.ndarray | None:
    """The sample's plate colour (Lab) from positions spread over it (see :func:`sample_plate`)."""
    from sedarchive.segmentation.background_model import check_blank, parse_background, plate_colour

    background = parse_background(settings.background)
    if background == "paper":
        return None
    n_positions, n_layers = _stack_counts(store_path)
    frames = []
    for position in sorted({int(p) for p in np.linspace(0, n_positions - 1, min(PLATE_POSITIONS, n_positions))}):
        frame = read_array(store_path, "stacks", position)[n_layers // 2]
        try:
            check_blank(frame, f"{sample_name} position {position} layer {n_layers // 2}")
        except Exception:
            continue  # a blank frame says nothing about the plate; it fails when its turn comes
        frames.append(frame)
    return plate_colour(frames, background) if frames else None


def _stack_counts(store_path: str) -> tuple[int, int]:
    """Positions and focal layers of a store's stacks (metadata only)."""
    from catalog.store import array_shape

    shape = array_shape(store_path, "stacks")  # not open_sample: it refuses a store with a lost chunk elsewhere
    return int(shape[0]), int(shape[1])


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
