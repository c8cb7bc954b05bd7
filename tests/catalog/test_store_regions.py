"""write_region covers whole chunks (concurrent writers rely on it); shapes are read through catalog."""
from __future__ import annotations

import numpy as np
import pytest

from catalog import Archive, ArchiveError, SampleKey, array_chunks, array_shape, create_variables, read_array, write_region


@pytest.fixture
def store(tmp_path):
    archive = Archive.create(tmp_path / "a")
    key = SampleKey("C", 0, 1)
    archive.create_sample(key, 1, 1, 8, 8)
    path = archive.sample_path(key)
    create_variables(path, {"latent": (("particle", "feature"), (10, 3), np.float32, (4, 3))})
    return path


def test_shape_and_chunks_come_from_catalog(store):
    assert array_shape(store, "latent") == (10, 3)
    assert array_chunks(store, "latent") == (4, 3)
    with pytest.raises(ArchiveError, match="has no array 'nope'"):
        array_shape(store, "nope")


def test_whole_chunks_and_the_last_partial_chunk_are_written(store):
    write_region(store, "latent", 0, np.ones((8, 3), np.float32))
    write_region(store, "latent", 8, np.full((2, 3), 2, np.float32))  # ends at the end of the array
    assert read_array(store, "latent")[:, 0].tolist() == [1] * 8 + [2, 2]


@pytest.mark.parametrize("start, rows", [(1, 3), (0, 3), (4, 5), (2, 8)])
def test_misaligned_regions_are_refused_and_write_nothing(store, start, rows):
    with pytest.raises(ArchiveError, match="not whole chunks of 4 rows"):
        write_region(store, "latent", start, np.ones((rows, 3), np.float32))
    with pytest.raises(ArchiveError, match="chunk 0.0 of 'latent'"):  # nothing was written
        read_array(store, "latent")
