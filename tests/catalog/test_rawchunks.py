"""Whole chunks as bytes (issue 16): encoded once as zarr would, linked in, rows decoded straight."""
from __future__ import annotations

import json
import os

import numpy as np
import pytest

from catalog import Archive, ArchiveError, SampleKey, create_variables, read_array, write_region
from catalog.rawchunks import chunk_path, codec_config, encode_chunk, place_chunk, read_chunk
from catalog.store import open_array, write_position

DIMS = ("particle", "layer", "py", "px", "channel")


@pytest.fixture
def store(tmp_path):
    archive = Archive.create(tmp_path / "archive")
    key = SampleKey("AI-1", 0, 2)
    archive.create_sample(key, 3, 2, 24, 20)
    return archive.sample_path(key)


def _meta(path, name) -> dict:
    return json.loads((path / name / "zarr.json").read_text())


@pytest.mark.parametrize("codec", ["grains", "stacks"])
def test_encoded_chunks_are_the_bytes_zarr_writes_and_link_in_whole(store, tmp_path, codec):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 60, (3, 2, 16, 16, 3), dtype=np.uint8)  # compressible, not trivially
    images[1] = 0
    shape, chunks = images.shape, (1, *images.shape[1:])
    create_variables(store, {"by_zarr": (DIMS, shape, "uint8", chunks), "by_link": (DIMS, shape, "uint8", chunks)},
                     compressed=["by_zarr", "by_link"], codec=codec)
    write_region(store, "by_zarr", 0, images)
    config = codec_config(_meta(store, "by_link"))
    assert config == codec_config(_meta(store, "by_zarr")) and config is not None
    for i, image in enumerate(images):
        encoded = encode_chunk(config, image)
        assert encoded == chunk_path(store, "by_zarr", (i, 0, 0, 0, 0)).read_bytes()
        source = tmp_path / f"grain{i}"
        source.write_bytes(encoded)
        place_chunk(source, chunk_path(store, "by_link", (i, 0, 0, 0, 0)))
    place_chunk(tmp_path / "grain2", chunk_path(store, "by_link", (2, 0, 0, 0, 0)))  # a task run again
    np.testing.assert_array_equal(read_array(store, "by_link"), images)
    assert os.stat(tmp_path / "grain0").st_nlink == 2  # linked, not copied
    assert not [p for p in (store / "by_link").rglob(".*tmp*")]
    for i in (0, 2, -1):
        np.testing.assert_array_equal(read_chunk(store, "by_link", i), images[i])


def test_rows_read_straight_equal_zarr_and_fall_back_where_they_cannot(store):
    rng = np.random.default_rng(1)
    stack = rng.integers(0, 255, (2, 24, 20, 3), dtype=np.uint8)
    write_position(store, 0, stack, (1.0, 2.0))
    assert codec_config(_meta(store, "stacks"))["cname"] == "zstd"
    np.testing.assert_array_equal(read_chunk(store, "stacks", 0), stack)
    np.testing.assert_array_equal(read_array(store, "stacks", 0), open_array(store, "stacks")[0:1][0])
    # not acquired yet: no chunk file, zarr's fill value (the contract)
    assert read_chunk(store, "stacks", 2) is None and read_array(store, "stacks", 2).max() == 0
    # arrays of another kind go through zarr
    create_variables(store, {"bbox": (("particle", "corner"), (4, 4), "int32", (4, 4))})
    write_region(store, "bbox", 0, np.arange(16, dtype=np.int32).reshape(4, 4))
    assert codec_config(_meta(store, "bbox")) is None
    assert read_chunk(store, "bbox", 1) is None and read_array(store, "bbox", 1).tolist() == [4, 5, 6, 7]
    # a lost chunk of an acquired position is still an error, not zeros
    chunk_path(store, "stacks", (0, 0, 0, 0, 0)).unlink()
    with pytest.raises(ArchiveError, match="chunk 0.0.0.0.0 of 'stacks'"):
        read_array(store, "stacks", 0)
    with pytest.raises(ArchiveError, match="no array 'nothing'"):
        read_array(store, "nothing", 0)
