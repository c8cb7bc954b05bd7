"""The export: an EcoTaxa import folder (TSV with typed second header row + images) and a grain table."""
from __future__ import annotations

import csv
import re
import zipfile

import pandas as pd
import pytest

from catalog.errors import SedarchiveError
from sedarchive.export import export_ecotaxa, export_table
from sedarchive.report import grain_table

PREFIXES = ("img_", "object_", "sample_", "acq_", "process_")


def _read_tsv(path):
    with open(path, newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh, delimiter="\t"))
    return rows[0], rows[1], [dict(zip(rows[0], r)) for r in rows[2:]]


def test_ecotaxa_columns_types_and_images(clustered_archive, tmp_path):
    from sedarchive.counting import labels

    table = grain_table(clustered_archive)
    named = int(sorted(set(table["cluster"]))[0])
    excluded = int(sorted(set(table["cluster"]))[1])
    labels.name_cluster(clustered_archive, named, "quartz", by="ann")
    labels.exclude_cluster(clustered_archive, excluded, "debris", by="ann")
    tsv = export_ecotaxa(clustered_archive, tmp_path / "out")
    assert tsv.name == "ecotaxa_cores.tsv" and tsv.parent.name == "ecotaxa_cores"
    header, types, rows = _read_tsv(tsv)
    assert header[:3] == ["img_file_name", "img_rank", "object_id"]
    assert all(name.startswith(PREFIXES) for name in header)
    assert len(set(header)) == len(header)
    assert set(types) == {"[t]", "[f]"} and len(types) == len(header)
    for must in ("object_annotation_status", "object_annotation_category", "object_depth_min", "sample_id",
                 "object_area_px", "object_chopped", "object_cluster"):
        assert must in header
    assert len(rows) == len(table)
    for name, kind in zip(header, types):
        if kind == "[f]":
            for row in rows:
                if row[name] != "":
                    float(row[name])  # every number column holds numbers
    assert len({r["object_id"] for r in rows}) == len(rows)
    for row in rows:
        assert (tsv.parent / row["img_file_name"]).is_file()
    by_cluster = {}
    for row in rows:
        by_cluster.setdefault(int(row["object_cluster"]), []).append(row)
    assert {r["object_annotation_category"] for r in by_cluster[named]} == {"quartz"}
    assert {r["object_annotation_status"] for r in by_cluster[named]} == {"predicted"}
    assert {r["object_annotation_person_name"] for r in by_cluster[named]} == {"ann"}
    assert all(re.fullmatch(r"\d{8}", r["object_annotation_date"]) for r in by_cluster[named])
    assert {r["object_annotation_category"] for r in by_cluster[excluded]} == {"debris"}
    others = [r for c, rs in by_cluster.items() if c not in (named, excluded) for r in rs]
    assert {r["object_annotation_status"] for r in others} == {""}
    chopped = sum(int(r["object_chopped"]) for r in rows)
    assert chopped == int(table["chopped"].sum())
    assert not list((tmp_path / "out").glob(".*"))  # no temporary folder left


def test_ecotaxa_all_layers_and_zip(clustered_archive, tmp_path):
    from catalog import SampleKey

    key = SampleKey("B-7", 5, 7)
    n = len(grain_table(clustered_archive, [key]))
    out = export_ecotaxa(clustered_archive, tmp_path, [key], layers="all", make_zip=True)
    assert out.suffix == ".zip"
    with zipfile.ZipFile(out) as zf:
        names = zf.namelist()
        assert "ecotaxa_cores.tsv" in names
        assert sum(n.endswith(".png") for n in names) == 6 * n
        lines = zf.read("ecotaxa_cores.tsv").decode().splitlines()
    assert len(lines) == 2 + 6 * n
    ranks = [int(line.split("\t")[1]) for line in lines[2:]]
    assert sorted(set(ranks)) == list(range(6))
    with pytest.raises(SedarchiveError, match="layers"):
        export_ecotaxa(clustered_archive, tmp_path, [key], layers="best")


def test_grain_table_csv(clustered_archive, tmp_path):
    from sedarchive.counting import labels

    first = int(sorted(set(grain_table(clustered_archive)["cluster"]))[0])
    labels.name_cluster(clustered_archive, first, "dark", by="ann")
    written = export_table(clustered_archive, tmp_path)
    assert written[0] == tmp_path / "grains.csv"
    csv_table = pd.read_csv(written[0], keep_default_na=False)
    for column in ("sample", "core", "depth_top_cm", "depth_bottom_cm", "particle", "cluster", "chopped", "clump",
                   "area_px", "size_um", "sharpest_layer", "class", "excluded", "decided_by", "decided_at"):
        assert column in csv_table.columns
    assert len(csv_table) == len(grain_table(clustered_archive))
    assert set(csv_table.loc[csv_table["cluster"] == first, "class"]) == {"dark"}
    assert set(csv_table.loc[csv_table["cluster"] != first, "class"]) == {""}


def test_export_command(clustered_archive, tmp_path, capsys):
    from sedarchive.cli import main

    assert main(["export", str(clustered_archive.root), "--out", str(tmp_path), "--core", "B-7", "--quiet"]) == 0
    printed = capsys.readouterr().out.split()
    assert str(tmp_path / "grains.csv") in printed and printed[-1].endswith("ecotaxa_cores.tsv")
    assert set(pd.read_csv(tmp_path / "grains.csv")["core"]) == {"B-7"}
