"""Image codecs: grain crops in lz4, stacks in zstd, stores of either kind read the same (issue 16)."""
from __future__ import annotations

import json

import numpy as np
import pytest

from catalog import Archive, ArchiveError, SampleKey, create_variables, read_array, write_region


@pytest.fixture
def store(tmp_path):
    archive = Archive.create(tmp_path / "archive")
    key = SampleKey("AI-1", 0, 2)
    archive.create_sample(key, 1, 1, 8, 8)
    return archive.sample_path(key)


def _compressor(path, name) -> dict:
    meta = json.loads((path / name / "zarr.json").read_text())
    (blosc,) = [c for c in meta["codecs"] if c["name"] == "blosc"]
    return blosc["configuration"]


def test_grain_and_stack_codecs_write_what_they_say_and_read_back_alike(store):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 255, (3, 2, 16, 16, 3), dtype=np.uint8)
    shape, chunks = images.shape, (1, *images.shape[1:])
    dims = ("particle", "layer", "py", "px", "channel")
    create_variables(store, {"old_images": (dims, shape, "uint8", chunks)}, compressed=["old_images"])
    create_variables(store, {"new_images": (dims, shape, "uint8", chunks)}, compressed=["new_images"],
                     codec="grains")
    for name in ("old_images", "new_images"):
        write_region(store, name, 0, images)
        np.testing.assert_array_equal(read_array(store, name), images)
    assert _compressor(store, "old_images")["cname"] == "zstd"
    assert _compressor(store, "new_images")["cname"] == "lz4"
    assert _compressor(store, "new_images")["shuffle"] == "bitshuffle"
    assert _compressor(store, "stacks")["cname"] == "zstd"


def test_an_unknown_codec_is_refused(store):
    with pytest.raises(ArchiveError, match="unknown codec 'brotli'"):
        create_variables(store, {"x": (("particle",), (2,), "uint8", (1,))}, compressed=["x"], codec="brotli")
