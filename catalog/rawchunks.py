"""Whole chunks of a store's arrays as bytes: read without zarr's copies, encoded once, placed by link.

Two uses, both where a stage moves whole chunks of the simple arrays this project writes (one
chunk per position of ``stacks``, one per grain of ``particle_images``; codecs ``bytes`` then
``blosc``, one-byte elements):

- :func:`read_chunk` decodes one such chunk straight into the array it returns (zarr decodes into
  a buffer, then copies it into the output, and re-opens the store for every read);
- :func:`encode_chunk` gives the exact bytes zarr would store for a chunk, so a worker can compress
  a grain once, keep those bytes, and :func:`place_chunk` later puts them under the chunk's key
  (a hard link: no data copied; a copy where links are not possible).

Arrays with other codecs, chunks or element types are refused by :func:`chunk_codec` (``None``),
and their callers use the ordinary zarr path (:func:`catalog.store.read_array`, ``write_region``).
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np


def codec_config(metadata: Any) -> dict | None:
    """The Blosc configuration of an array whose codecs are exactly ``bytes`` + ``blosc`` and whose
    elements are one byte (no byte order to care about), else ``None``. ``metadata`` is a zarr v3
    ``ArrayV3Metadata`` or the parsed ``zarr.json`` of an array."""
    if not isinstance(metadata, dict):
        metadata = metadata.to_dict()
    codecs = metadata.get("codecs") or []
    if metadata.get("data_type") not in ("uint8", "int8", "bool") or len(codecs) != 2:
        return None
    first, second = codecs
    if first.get("name") != "bytes" or second.get("name") != "blosc":
        return None
    return dict(second.get("configuration") or {})


def chunk_codec(config: dict) -> Any:
    """The numcodecs Blosc that zarr's ``BloscCodec`` of this configuration runs (same bytes)."""
    from numcodecs import Blosc

    shuffle = {"noshuffle": Blosc.NOSHUFFLE, "shuffle": Blosc.SHUFFLE, "bitshuffle": Blosc.BITSHUFFLE}
    return Blosc(cname=config["cname"], clevel=int(config["clevel"]), shuffle=shuffle[config["shuffle"]],
                 blocksize=int(config.get("blocksize", 0)), typesize=int(config.get("typesize", 1)))


def encode_chunk(config: dict, data: np.ndarray) -> bytes:
    """The bytes zarr stores for the chunk ``data`` (C order) of an array with Blosc ``config``."""
    return bytes(chunk_codec(config).encode(np.ascontiguousarray(data)))


def _array_meta(path: str | Path, name: str) -> dict:
    return json.loads((Path(path) / name / "zarr.json").read_text())


def chunk_path(path: str | Path, name: str, coords: tuple[int, ...], metadata: dict | None = None) -> Path:
    """The file of chunk ``coords`` of array ``name`` (by the array's chunk key encoding)."""
    meta = metadata or _array_meta(path, name)
    encoding = meta.get("chunk_key_encoding") or {"name": "default"}
    separator = (encoding.get("configuration") or {}).get("separator", "/" if encoding["name"] == "default" else ".")
    parts = [str(int(c)) for c in coords]
    key = "c" + separator + separator.join(parts) if encoding["name"] == "default" else separator.join(parts)
    return Path(path) / name / key


def whole_rows(meta: dict) -> bool:
    """True when each chunk is one row of the first axis and the whole of the others."""
    shape = meta["shape"]
    chunks = meta["chunk_grid"]["configuration"]["chunk_shape"]
    return len(shape) >= 1 and chunks[0] == 1 and list(chunks[1:]) == list(shape[1:])


def read_chunk(path: str | Path, name: str, row: int) -> np.ndarray | None:
    """Row ``row`` of array ``name`` decoded straight from its chunk file, or ``None`` when the array
    is not of the simple kind (see :func:`codec_config`, :func:`whole_rows`) or the chunk file is
    absent (the caller then reads through zarr, which knows fill values and missing chunks)."""
    meta = _array_meta(path, name)
    config = codec_config(meta)
    if config is None or not whole_rows(meta) or not -meta["shape"][0] <= row < meta["shape"][0]:
        return None
    row = row % meta["shape"][0]
    try:
        raw = chunk_path(path, name, (row, *[0] * (len(meta["shape"]) - 1)), meta).read_bytes()
    except FileNotFoundError:
        return None
    out = np.empty(meta["shape"][1:], np.dtype(meta["data_type"]))
    chunk_codec(config).decode(raw, out=out)
    return out


def place_chunk(source: str | Path, target: Path) -> None:
    """Put the finished chunk file ``source`` at ``target``: a hard link, else a copy; replaces a
    chunk already there (a task run again) in one rename, so readers never see half a chunk."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp{os.getpid()}")
    try:
        os.link(source, tmp)
    except FileExistsError:
        os.unlink(tmp)
        os.link(source, tmp)
    except OSError:  # another file system, or one without hard links
        shutil.copyfile(source, tmp)
    os.replace(tmp, target)
    if os.path.lexists(tmp):  # rename(2) does nothing when both names are links to one file already
        os.unlink(tmp)


def write_file(target: Path, data: bytes) -> None:
    """Write ``data`` to ``target`` under a temporary name, then rename: the file appears whole."""
    tmp = target.with_name(f".{target.name}.tmp{os.getpid()}")
    tmp.write_bytes(data)
    os.replace(tmp, target)
