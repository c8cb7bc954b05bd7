"""Worker side of the segment stage: a chunk of stack positions to a scratch file, and back into the store.

Pass 1 (:func:`segment_chunk`) reads a few positions of a sample store, extracts their grains,
compresses each grain's images once, with the codec of ``particle_images``, into its own file under
``ARCHIVE/.work/segment/<sample>/positions-<start>-<stop>.grains/``, and writes the measures to one
``.npz`` file beside it. The ``.npz`` appears under its final name only when complete (written to a
temporary name, then renamed, after the grain files), so its presence is the chunk's done-mark and
a killed run redoes only the chunks without one.
Pass 2 (:func:`copy_chunk`) puts a chunk's grain files into ``particle_images`` as its chunk files
(hard links: nothing is decoded, encoded or copied), whole chunks only.
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
from catalog.rawchunks import chunk_codec, chunk_path, codec_config, encode_chunk, place_chunk, whole_rows, write_file
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
    codec = grains_codec_config()
    folder = grains_dir(target)
    folder.mkdir(exist_ok=True)
    tables = []
    n_layers, n_grains = 0, 0
    for position in range(start, stop):
        stack = read_array(store_path, "stacks", position)
        n_layers = len(stack)
        crops, table = extract_grains(stack, segment, position=position, pixel_size_um=pixel_size,
                                      what=f"{sample_name} position {position}", plate_lab=plate_lab)
        for crop in crops:  # each grain compressed once, as the chunk file it will be
            write_file(folder / f"{n_grains:06d}", encode_chunk(codec, crop))
            n_grains += 1
        tables.append(table)
    table = GrainTable.concat(tables, n_layers, with_um=pixel_size is not None)
    image_shape = (n_layers, segment.crop_size, segment.crop_size, 3)
    tmp = target.with_name(f"{target.stem}.tmp{os.getpid()}.npz")
    np.savez(tmp, codec=np.asarray(json.dumps(codec, sort_keys=True)), image_shape=np.asarray(image_shape),
             **table.columns)
    os.replace(tmp, target)  # the done-mark: the file exists only once complete
    return len(table)


def grains_codec_config() -> dict:
    """The Blosc configuration of ``particle_images`` (the bytes pass 1 writes are its chunks)."""
    from catalog.store import grains_codec

    return grains_codec().to_dict()["configuration"]


def grains_dir(chunk: Path) -> Path:
    """The folder of a chunk's compressed grain images (one file per grain, in order)."""
    return chunk.with_suffix(".grains")


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


#: entries of a chunk's scratch file that are not per-grain measures
NOT_MEASURES = ("images", "codec", "image_shape")


def read_chunk_table(path: str | Path) -> GrainTable:
    """The per-grain measures of a done chunk (without its images)."""
    with np.load(path) as data:
        return GrainTable({name: data[name] for name in data.files if name not in NOT_MEASURES})


def copy_chunk(store_path: str, path: str, first_particle: int, target: str = "particle_images") -> int:
    """Pass 2: put a done chunk's grain images into ``target`` (the staged ``particle_images``) from
    ``first_particle`` on: the grain files of pass 1 are linked in as its chunk files when the array
    has the codec and shape they were encoded for, else decoded and written through zarr (as is a
    scratch file of an older version, which holds the images themselves)."""
    with np.load(path) as data:
        if "images" in data.files:
            images = data["images"]
            write_region(store_path, target, first_particle, images)
            return len(images)
        codec = json.loads(str(data["codec"]))
        image_shape = [int(v) for v in data["image_shape"]]
        n = int(data["position"].shape[0])
    files = [grains_dir(Path(path)) / f"{i:06d}" for i in range(n)]
    meta = json.loads((Path(store_path) / target / "zarr.json").read_text())
    if codec_config(meta) == codec and whole_rows(meta) and list(meta["shape"][1:]) == image_shape \
            and first_particle + n <= meta["shape"][0]:
        for i, file in enumerate(files):
            place_chunk(file, chunk_path(store_path, target, (first_particle + i, *[0] * len(image_shape)), meta))
        return n
    blosc = chunk_codec(codec)
    images = np.empty((n, *image_shape), np.uint8)
    for i, file in enumerate(files):
        blosc.decode(file.read_bytes(), out=images[i])
    write_region(store_path, target, first_particle, images)
    return n
