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

from ecotaxa_rules import check_tsv  # noqa: E402 - beside this file

PREFIXES = ("img_", "object_", "sample_", "acq_", "process_")


def _read_tsv(path):
    assert path.read_bytes()[:3] == b"\xef\xbb\xbf"  # BOM: EcoTaxa reads UTF-8 only with it
    with open(path, newline="", encoding="utf-8-sig") as fh:
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
    # predicted rows carry no annotator or date (EcoTaxa keeps those only for validated objects)
    assert not any(h.startswith(("object_annotation_person", "object_annotation_date", "object_annotation_time"))
                   for h in header)
    # an excluded cluster arrives as EcoTaxa's own non-living category, its reason kept beside it
    assert {r["object_annotation_category"] for r in by_cluster[excluded]} == {"detritus"}
    assert {r["object_exclusion_reason"] for r in by_cluster[excluded]} == {"debris"}
    assert check_tsv(tsv) == []
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
        lines = zf.read("ecotaxa_cores.tsv").decode("utf-8-sig").splitlines()
    assert len(lines) == 2 + 6 * n
    header = lines[0].split("\t")
    rows = [dict(zip(header, line.split("\t"))) for line in lines[2:]]
    assert sorted({int(r["img_rank"]) for r in rows}) == list(range(6))
    # rank 0 is the sharpest focal layer of each grain
    sharp = dict(zip(grain_table(clustered_archive, [key])["particle"], grain_table(clustered_archive, [key])["sharpest_layer"]))
    for r in rows:
        if r["img_rank"] == "0":
            assert int(r["object_layer"]) == sharp[int(r["object_id"].rpartition("_g")[2])]
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


def test_ecotaxa_core_metadata_mapping_and_leaving_excluded_out(clustered_archive, tmp_path):
    from catalog.cores import CoreInfo, read_cores, set_cores
    from sedarchive.counting import labels
    from sedarchive.export.ecotaxa import read_category_map

    set_cores(clustered_archive.root, [CoreInfo("AI-3352", -45.25, 170.5, 1250.0, "2019-03-14", "Sonne–SO258")])
    assert read_cores(clustered_archive.root)["AI-3352"].water_depth_m == 1250.0
    clusters = sorted(set(grain_table(clustered_archive)["cluster"]))
    labels.name_cluster(clustered_archive, int(clusters[0]), "quartz", by="ann")
    labels.exclude_cluster(clustered_archive, int(clusters[1]), "not_a_grain", by="ann")
    mapping = tmp_path / "taxa.yaml"
    mapping.write_text("quartz: Quartz (minéral)\nnot_a_grain: detritus\n", encoding="utf-8")
    tsv = export_ecotaxa(clustered_archive, tmp_path / "out", categories=read_category_map(mapping))
    assert check_tsv(tsv) == []
    header, types, rows = _read_tsv(tsv)
    typed = dict(zip(header, types))
    assert all(typed[c] == "[f]" for c in ("sample_depth_top_cm", "sample_water_depth_m", "acq_pixel_size_um",
                                           "object_lat", "object_lon", "object_depth_min"))
    ai = [r for r in rows if r["sample_core"] == "AI-3352"]
    b7 = [r for r in rows if r["sample_core"] == "B-7"]
    assert {(r["object_lat"], r["object_lon"], r["object_date"], r["sample_cruise"]) for r in ai} == \
        {("-45.25", "170.5", "20190314", "Sonne–SO258")}  # non-ASCII survives: the BOM says UTF-8
    assert {r["object_depth_min"] for r in ai} == {"1250"}  # water depth, not the depth in the core
    assert {r["object_depth_min"] for r in b7} == {""} and {r["sample_depth_top_cm"] for r in b7} == {"5", "15"}
    assert {r["object_annotation_category"] for r in rows if r["object_cluster"] == str(clusters[0])} == {"Quartz (minéral)"}
    left = export_ecotaxa(clustered_archive, tmp_path / "out2", excluded="leave-out")
    _, _, kept = _read_tsv(left)
    assert check_tsv(left) == []
    assert len(kept) == len(rows) - sum(r["object_cluster"] == str(clusters[1]) for r in rows)
    assert not any(r["object_cluster"] == str(clusters[1]) for r in kept)


def test_the_checker_catches_what_ecotaxa_refuses(tmp_path):
    bad = tmp_path / "bad.tsv"
    bad.write_text("img_file_name\tobject_id\tObject_Depth\tobject_annotation_status\n[t]\t[t]\t[f]\t[t]\n"
                   "x.png\to1\tdeep\tpredicted\n", encoding="utf-8")
    errors = "\n".join(check_tsv(bad))
    for part in ("byte-order mark", "Object_Depth", "holds 'deep'", "x.png is missing", "without a category"):
        assert part in errors


def test_catalog_imports_cores_from_csv(clustered_archive, tmp_path, capsys):
    from sedarchive.cli import main

    table = tmp_path / "cores.csv"
    table.write_text("core,latitude,longitude,water_depth_m,collection_date,cruise\n"
                     "AI-3352,-45.25,170.5,1250,2019-03-14,SO258\nB-7,,,,,\n", encoding="utf-8")
    assert main(["catalog", str(clustered_archive.root), "--import-cores", str(table)]) == 0
    out = capsys.readouterr().out
    assert "AI-3352" in out and "1250.0" in out
    table.write_text("core,latitude\nX,95\n", encoding="utf-8")
    assert main(["catalog", str(clustered_archive.root), "--import-cores", str(table)]) == 2
    assert "latitude 95.0 is not a number between -90 and 90" in capsys.readouterr().err
