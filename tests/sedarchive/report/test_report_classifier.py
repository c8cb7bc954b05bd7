"""The report's classifier section: read from the saved model's metrics, nothing loaded or refitted."""
from __future__ import annotations

import pytest

from sedarchive.report import write_report
from sedarchive.report.classifier import classifier_section

pytestmark = pytest.mark.slow  # trains and classifies a real archive


def test_classifier_section_before_and_after_training(clustered_archive):
    from sedarchive.classification.training import train
    from sedarchive.counting.labels import exclude_cluster, name_cluster

    assert "No classifier yet" in classifier_section(clustered_archive)
    for cid in range(7):
        name_cluster(clustered_archive, cid, ("quartz", "dark", "foram_intact", "foram_broken")[cid % 4])
    exclude_cluster(clustered_archive, 7, "debris")
    model = train(clustered_archive, clustered_archive.keys(), quiet=True)
    html = write_report(clustered_archive).read_text()
    assert '<a href="#classifier">' in html and f"<code>{model.id}</code>" in html
    assert "debris (not counted)" in html and "<svg class=reliability" in html
    held = model.info["held_out"]
    assert f"{held['n_held_out']} predicted by a model that did not see them" in html
    assert html.count("<tr><th>quartz</th>") == 1  # one confusion row per class
