"""Names made for another K-means model (before a refit) are refused the same way by every reader.

The archive's labels.yaml is re-stamped with another model id, exactly what a ``cluster --refit``
leaves behind: the names are about the clusters of the model that was replaced.
"""
from __future__ import annotations

import pytest
import yaml

from sedarchive.counting import labels as lab
from sedarchive.counting.labels import StaleLabelsWarning, current_labels


@pytest.fixture
def stale_archive(clustered_archive):
    """The clustered archive with two clusters named, then the names stamped with a replaced model."""
    lab.name_cluster(clustered_archive, 0, "quartz", by="ann")
    lab.exclude_cluster(clustered_archive, 1, "debris", by="ann")
    raw = yaml.safe_load(clustered_archive.labels_path.read_text())
    assert raw["kmeans_id"]  # the review's edits stamp the model they were made for
    raw["kmeans_id"] = "kmeans-replaced-by-a-refit"
    clustered_archive.labels_path.write_text(yaml.safe_dump(raw))
    return clustered_archive


def test_the_one_reader_drops_stale_names_and_says_why(stale_archive):
    with pytest.warns(StaleLabelsWarning, match="kmeans-replaced-by-a-refit"):
        labels = current_labels(stale_archive)
    assert labels.clusters == {} and "not applied" in labels.stale_note
    assert "quartz" in labels.classes  # the class list itself is kept for naming the new clusters


def test_export_refuses_stale_names(stale_archive, tmp_path):
    from sedarchive.export import export_ecotaxa
    from sedarchive.export.ecotaxa import labelled_grains

    with pytest.warns(StaleLabelsWarning):
        table = labelled_grains(stale_archive)
    assert (table["class"] == "").all() and not table["excluded"].any()
    with pytest.warns(StaleLabelsWarning):
        tsv = export_ecotaxa(stale_archive, tmp_path / "out")
    text = tsv.read_text(encoding="utf-8-sig")
    assert "predicted" not in text and "quartz" not in text


def test_export_command_prints_the_note(stale_archive, tmp_path, capsys):
    from sedarchive.cli import main

    assert main(["export", str(stale_archive.root), "--out", str(tmp_path / "o"), "--table-only"]) == 0
    assert "sedarchive: warning: labels.yaml names the clusters of K-means model" in capsys.readouterr().err


def test_report_refuses_stale_names_and_says_so(stale_archive):
    from sedarchive.report import write_report

    with pytest.warns(StaleLabelsWarning):
        page = write_report(stale_archive).read_text(encoding="utf-8")
    assert 'id=stale-labels' in page and "kmeans-replaced-by-a-refit" in page
    assert "0 named" in page  # the run summary counts no decision


def test_proportions_refuse_stale_names(stale_archive):
    from sedarchive.counting.proportions import write_proportions
    from sedarchive.counting.results import open_proportions

    with pytest.warns(StaleLabelsWarning):
        write_proportions(stale_archive)
    ds = open_proportions(stale_archive)
    assert "class_count" not in ds and "kmeans-replaced-by-a-refit" in ds.attrs["labels_note"]


def test_review_state_refuses_stale_names_and_says_so(stale_archive):
    from sedarchive.review.state import ReviewState

    state = ReviewState(stale_archive, "tester").state()
    assert "kmeans-replaced-by-a-refit" in state["stale_labels"]
    assert not any(c["class"] or c["excluded"] for c in state["clusters"])
