from __future__ import annotations

import pytest

from catalog import ArchiveError
from catalog.models import read_current, update_current


def test_update_keeps_the_other_stages_models(archive):
    assert read_current(archive.models_dir) == {}
    update_current(archive.models_dir, {"encoder": "abc"})
    update_current(archive.models_dir, {"kmeans": "kmeans-1"})
    assert read_current(archive.models_dir) == {"encoder": "abc", "kmeans": "kmeans-1"}


def test_a_broken_file_is_a_clear_error(archive):
    (archive.models_dir / "current.json").write_text("[1, 2")
    with pytest.raises(ArchiveError, match="current.json is not valid JSON"):
        read_current(archive.models_dir)
