"""labels.yaml: loading, validation against the model's clusters and the class list, atomic saving."""
from __future__ import annotations

import pytest

from catalog import Archive
from sedarchive.counting import labels as lab
from sedarchive.counting.labels import Labels, LabelsError, load_labels, resolve, save_labels

IDS = range(10)


@pytest.fixture
def arc(tmp_path):
    return Archive.create(tmp_path / "arc")


def test_decisions_are_recorded_with_who_and_when(arc):
    lab.name_cluster(arc, 3, "quartz", by="ana", cluster_ids=IDS)
    lab.name_cluster(arc, 4, "foram_broken", cluster_ids=IDS)
    lab.merge_clusters(arc, 5, 3, by="ana", cluster_ids=IDS)
    lab.merge_clusters(arc, 6, 5, cluster_ids=IDS)
    lab.exclude_cluster(arc, 7, "chopped", cluster_ids=IDS)
    lab.add_class(arc, "sponge_spicule")
    lab.name_cluster(arc, 8, "sponge_spicule", cluster_ids=IDS)
    labels = load_labels(arc, cluster_ids=IDS)
    assert labels.clusters[3]["by"] == "ana" and labels.clusters[3]["at"].endswith("+00:00")
    assert labels.classes[-1] == "sponge_spicule"
    assert resolve(labels) == {3: "quartz", 4: "foram_broken", 5: "quartz", 6: "quartz", 7: None, 8: "sponge_spicule"}
    lab.clear_cluster(arc, 8, cluster_ids=IDS)
    assert 8 not in load_labels(arc).clusters


def test_unknown_cluster_is_a_clear_error_and_nothing_is_written(arc):
    lab.name_cluster(arc, 1, "dark", cluster_ids=IDS)
    before = arc.labels_path.read_text()
    with pytest.raises(LabelsError, match=r"cluster 42 is not a cluster of the current K-means model \(ids 0\.\.9\)"):
        lab.name_cluster(arc, 42, "quartz", cluster_ids=IDS)
    assert arc.labels_path.read_text() == before


def test_unknown_class_is_a_clear_error(arc):
    with pytest.raises(LabelsError, match=r"cluster 2 is named 'granite', which is not in classes"):
        lab.name_cluster(arc, 2, "granite", cluster_ids=IDS)
    assert not arc.labels_path.exists()


def test_a_hand_edited_file_naming_unknown_things_fails_on_load(arc):
    arc.labels_path.write_text("version: 1\nclasses: [quartz]\nclusters:\n  12: {class: quartz}\n")
    with pytest.raises(LabelsError, match="labels.yaml: cluster 12 is not a cluster"):
        load_labels(arc, cluster_ids=IDS)
    arc.labels_path.write_text("version: 1\nclasses: [quartz]\nclusters:\n  2: {class: dark}\n")
    with pytest.raises(LabelsError, match="'dark', which is not in classes"):
        load_labels(arc)
    arc.labels_path.write_text("clusters: [oops\n")
    with pytest.raises(LabelsError, match="not valid YAML"):
        load_labels(arc)


def test_bad_merges_are_refused(arc):
    with pytest.raises(LabelsError, match="merged into cluster 3, which has no entry"):
        lab.merge_clusters(arc, 2, 3, cluster_ids=IDS)
    with pytest.raises(LabelsError, match="into itself"):
        lab.merge_clusters(arc, 2, 2, cluster_ids=IDS)
    cyc = Labels(["quartz"], {1: {"merged_into": 2}, 2: {"merged_into": 1}})
    with pytest.raises(LabelsError, match="form a cycle"):
        save_labels(arc, cyc)


def test_entries_need_exactly_one_decision(arc):
    both = Labels(["quartz"], {1: {"class": "quartz", "excluded": True}})
    with pytest.raises(LabelsError, match="exactly one of class, merged_into, excluded"):
        save_labels(arc, both)
    history = Labels(["quartz"], {1: {"split_into": [10, 11]}, 10: {"split_from": 1}})
    save_labels(arc, history, cluster_ids=range(12))
    assert resolve(load_labels(arc)) == {}
