"""The report: written at every stage of an archive, self-contained, showing what the labels say."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from catalog.errors import SedarchiveError
from sedarchive.report import ReportSettings, write_report
from sedarchive.gallery.grains import grain_table


def _links(html: str) -> list[str]:
    return re.findall(r'(?:src|href)="([^"]+)"', html)


def test_report_of_an_archive_with_no_labels_yet(clustered_archive):
    assert not clustered_archive.labels_path.exists()
    page = write_report(clustered_archive, ReportSettings(examples_per_cluster=5))
    html = page.read_text()
    table = grain_table(clustered_archive)
    clusters = sorted(set(table["cluster"]))
    assert page == clustered_archive.root / "report" / "index.html"
    assert len(re.findall(r'<section class=cluster id="cluster-', html)) == len(clusters)
    assert html.count(">not named<") == len(clusters)
    assert "plots/map_clusters.png" in html and "map_classes" not in html
    assert f"<tr><th>grains</th><td>{len(table):,}</td></tr>" in html
    assert "<tr><th>frames</th><td>60</td></tr>" in html  # 5 samples x 2 positions x 6 focal layers
    flagged = int((table["chopped"] | table["clump"]).sum())
    assert f"{flagged:,} (" in html
    # every file the page uses lies beside it; nothing is fetched from elsewhere
    for link in _links(html):
        if link.startswith("#"):
            continue
        assert not re.match(r"^[a-z]+:", link), link
        assert (page.parent / link).is_file(), link
    for name in ("index.html", "report.css", "report.js"):
        assert "http://" not in (page.parent / name).read_text() and "https://" not in (page.parent / name).read_text()
    shown = re.findall(r'<figure class=grain><img src="(grains/c(\d+)_\d+\.jpg)" data-layers="(grains/[^"]+)"', html)
    assert len(shown) == sum(min(5, int((table["cluster"] == c).sum())) for c in clusters)
    # the down-core plots fall back to cluster fractions, one figure per core
    assert sorted(p.name for p in (page.parent / "plots").glob("downcore_*.png")) == ["downcore_AI-3352.png",
                                                                                      "downcore_B-7.png"]


def test_report_follows_the_labels(clustered_archive):
    from sedarchive.counting import labels
    from sedarchive.counting import decisions as upstream

    table = grain_table(clustered_archive)
    first, second, third = sorted(set(table["cluster"]))[:3]
    labels.name_cluster(clustered_archive, first, "quartz", by="ann")
    labels.merge_clusters(clustered_archive, second, first, by="ann")
    labels.exclude_cluster(clustered_archive, third, "debris", by="ann")
    upstream.refresh_proportions(clustered_archive)
    html = write_report(clustered_archive).read_text()
    assert "plots/map_classes.png" in html
    assert f"merged into {first}: quartz" in html
    assert "excluded (debris)" in html
    assert "quartz fraction" in html  # a down-core class fraction
    assert "foram_fragmentation" in html  # a proxy of proportions.zarr
    assert "<tr><th>expert decisions</th><td>1 named, 1 merged, 1 excluded</td></tr>" in html


def test_report_before_clustering(tmp_path, archive_factory):
    archive = archive_factory.make_archive(tmp_path / "raw", clustered=False)
    html = write_report(archive).read_text()
    assert "No clusters yet" in html and "No map yet" in html
    assert "flagged (chopped or clump)" in html  # down-core straight from the grains


def test_report_replaces_the_previous_one_whole(clustered_archive):
    from sedarchive.report import run_stage

    write_report(clustered_archive, ReportSettings(examples_per_cluster=3))
    stale = clustered_archive.report_dir / "grains" / "stale.jpg"
    stale.write_bytes(b"old")
    # the pipeline's call: run_stage(archive, keys, client, settings, quiet=...)
    done = run_stage(clustered_archive, clustered_archive.keys()[:1], None, None, quiet=True)
    assert done.ok and done.results["report"] == clustered_archive.report_dir / "index.html"
    assert not stale.exists()
    assert not list(clustered_archive.root.glob(".report.*"))


def test_report_settings_refuse_nonsense(tmp_path):
    with pytest.raises(SedarchiveError, match="examples_per_cluster"):
        ReportSettings(examples_per_cluster=0)
    bad = tmp_path / "report.yaml"
    bad.write_text("report: {examples: 3}\n")
    with pytest.raises(SedarchiveError, match="report settings"):
        ReportSettings.from_file(bad)
    good = tmp_path / "ok.yaml"
    good.write_text("report: {examples_per_cluster: 3}\n")
    assert ReportSettings.from_file(good, map_points=100) == ReportSettings(examples_per_cluster=3, map_points=100)


def test_report_command(clustered_archive, capsys):
    from sedarchive.cli import main

    assert main(["report", str(clustered_archive.root), "--report-examples", "2", "--quiet"]) == 0
    assert Path(capsys.readouterr().out.strip()) == clustered_archive.report_dir / "index.html"
    assert main(["report", str(clustered_archive.root / "nowhere")]) == 2
