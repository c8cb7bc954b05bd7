from __future__ import annotations

import pytest

from catalog import ArchiveError, SampleKey, parse_depth_range


def test_name_round_trip_and_formatting():
    key = SampleKey("AI-3352", 120, 122.5)
    assert key.name == "AI-3352_120-122.5cm"
    assert SampleKey.from_name(key.name) == key


@pytest.mark.parametrize("text", ["", "120", "122-120", "a-b", "10--20", "5-5"])
def test_bad_depths_are_rejected(text):
    with pytest.raises(ArchiveError, match="depth"):
        parse_depth_range(text)


@pytest.mark.parametrize("core", ["", "a/b", "has space", "-lead", "../up"])
def test_bad_core_names_are_rejected(core):
    with pytest.raises(ArchiveError, match="core"):
        SampleKey(core, 1, 2)


def test_overlap_excludes_touching_ends():
    key = SampleKey("C", 100, 102)
    assert key.overlaps(101, 200)
    assert key.overlaps(0, 100.5)
    assert not key.overlaps(102, 150)
    assert not key.overlaps(50, 100)
