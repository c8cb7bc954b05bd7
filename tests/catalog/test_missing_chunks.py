"""A chunk missing from a store is an error naming sample, variable and chunk, never fill values."""
from __future__ import annotations

import numpy as np
import pytest

from catalog import Archive, ArchiveError, SampleKey, create_variables, read_array, write_region
from catalog.store import open_array, open_sample, write_position


@pytest.fixture
def store(tmp_path):
    archive = Archive.create(tmp_path / "a")
    key = SampleKey("C", 0, 1)
    archive.create_sample(key, 3, 1, 4, 4)
    path = archive.sample_path(key)
    create_variables(path, {"bbox": (("particle", "side"), (10, 4), np.int32, (4, 4))})
    write_region(path, "bbox", 0, np.zeros((10, 4), np.int32))  # all-fill chunks are stored too
    return path


def test_all_chunks_are_stored_even_when_equal_to_the_fill_value(store):
    assert sorted(p.name for p in (store / "bbox" / "c").iterdir()) == ["0", "1", "2"]
    assert read_array(store, "bbox").shape == (10, 4)


def test_a_deleted_chunk_is_an_error_naming_sample_variable_and_chunk(store):
    (store / "bbox" / "c" / "1" / "0").unlink()
    with pytest.raises(ArchiveError, match=r"sample C_.*chunk 1\.0 of 'bbox' \(rows 4-7\) is missing"):
        read_array(store, "bbox")
    with pytest.raises(ArchiveError, match="chunk 1.0 of 'bbox'"):
        read_array(store, "bbox", (np.array([0, 5]), slice(None)))
    with pytest.raises(ArchiveError, match="chunk 1.0 of 'bbox'"):
        open_array(store, "bbox")[4:6]
    with pytest.raises(ArchiveError, match="chunk 1.0 of 'bbox'"):
        open_sample(store)
    # rows in chunks that are present still read
    assert read_array(store, "bbox", slice(0, 4)).shape == (4, 4)
    assert open_array(store, "bbox")[8:10].shape == (2, 4)


def test_positions_not_acquired_read_as_fill_but_a_lost_acquired_frame_is_an_error(store):
    write_position(store, 0, np.full((1, 4, 4, 3), 7, np.uint8), (1.0, 2.0))
    # positions 1 and 2 are not done: their frames read as zeros (the contract)
    assert read_array(store, "stacks", 1).max() == 0
    assert np.isnan(read_array(store, "stage_xy_mm", 2)).all()
    assert open_sample(store)["stacks"].shape[0] == 3
    (store / "stacks" / "c" / "0" / "0" / "0" / "0" / "0").unlink()
    with pytest.raises(ArchiveError, match="chunk 0.0.0.0.0 of 'stacks' \\(row 0\\)"):
        read_array(store, "stacks", 0)
