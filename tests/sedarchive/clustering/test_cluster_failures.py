"""A failed cluster stage changes nothing: failures injected at the start, middle and end."""
from __future__ import annotations

import numpy as np
import pytest
from latent_archive import make_archive

from catalog import SampleKey, read_array, read_attrs
from catalog.store import array_names
from sedarchive.clustering import ClusterSettings, ClusteringError, run_stage
from sedarchive.clustering import latents as latents_module
from sedarchive.clustering import stage as stage_module
from sedarchive.clustering.model import read_current

PLAN = {SampleKey("F", 0, 2): 120, SampleKey("F", 2, 4): 100}
FIRST = ClusterSettings(k=3, umap_points=0)
REFIT = ClusterSettings(k=4, umap_points=0, refit=True, seed=5)


@pytest.fixture
def clustered(tmp_path):
    archive, _ = make_archive(tmp_path / "arc", PLAN)
    assert run_stage(archive, list(PLAN), None, FIRST, quiet=True).ok
    before = {key: (read_array(archive.sample_path(key), "cluster"), read_attrs(archive.sample_path(key)))
              for key in PLAN}
    return archive, before, read_current(archive)


def assert_unchanged(archive, before, current):
    assert read_current(archive) == current
    for key, (labels, attrs) in before.items():
        path = archive.sample_path(key)
        np.testing.assert_array_equal(read_array(path, "cluster"), labels)
        now = read_attrs(path)
        assert (now["status"], now["kmeans_id"]) == (attrs["status"], attrs["kmeans_id"])
        assert "cluster.next" not in array_names(path)


def test_a_failure_while_fitting_changes_nothing(clustered, monkeypatch):
    archive, before, current = clustered

    def fit_fails(*args, **kwargs):
        raise ClusteringError("out of memory (injected)")

    monkeypatch.setattr(stage_module, "fit_model", fit_fails)
    with pytest.raises(ClusteringError, match="injected"):
        run_stage(archive, list(PLAN), None, REFIT, quiet=True)
    assert_unchanged(archive, before, current)


def test_one_sample_failing_to_label_leaves_every_sample_and_the_model_as_they_were(clustered, monkeypatch):
    archive, before, current = clustered
    real, calls = latents_module.assign_sample, []

    def second_fails(*args):
        calls.append(args[0])
        if len(calls) == 2:
            raise OSError("disk error (injected)")
        return real(*args)

    monkeypatch.setattr(latents_module, "assign_sample", second_fails)
    report = run_stage(archive, list(PLAN), None, REFIT, quiet=True)
    assert len(report.failures) == 1 and "injected" in next(iter(report.failures.values()))
    assert_unchanged(archive, before, current)
    monkeypatch.setattr(latents_module, "assign_sample", real)
    assert run_stage(archive, list(PLAN), None, REFIT, quiet=True).ok
    assert read_current(archive) != current


def test_a_failure_at_the_swap_keeps_the_old_labels(clustered, monkeypatch):
    archive, before, current = clustered

    def swap_fails(path, name):
        raise OSError(28, "No space left on device (injected)")

    monkeypatch.setattr(stage_module, "swap_in", swap_fails)
    with pytest.raises(OSError, match="injected"):
        run_stage(archive, list(PLAN), None, REFIT, quiet=True)
    assert read_current(archive) == current
    for key, (labels, attrs) in before.items():
        np.testing.assert_array_equal(read_array(archive.sample_path(key), "cluster"), labels)
