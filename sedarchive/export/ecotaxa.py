"""Grains for the tools the field already uses: an EcoTaxa import folder, and a plain table.

``export_ecotaxa`` writes ``ecotaxa_<archive>.tsv`` with EcoTaxa's column conventions (prefixes
``img_``, ``object_``, ``sample_``, ``acq_``, ``process_``; a second header row typing each column
``[t]`` text or ``[f]`` number; dates ``YYYYMMDD`` and times ``HHMMSS``) and the grain images beside
it, zipped when asked, so the folder or zip imports as is. ``export_table`` writes one row per grain
as CSV (and Parquet when pyarrow is installed). Cluster names come from ``labels.yaml``: a grain of
a named cluster is ``predicted`` with its class; one of an excluded cluster gets the exclusion reason.
"""
from __future__ import annotations

import csv
import math
import os
import shutil
import zipfile
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from catalog import Archive, SampleKey, read_attrs
from catalog.errors import ArchiveError
from catalog.files import atomic_write, replace_dir
from sedarchive import __version__
from sedarchive.counting.labels import current_labels, resolve_cluster
from sedarchive.gallery.grains import MEASUREMENTS, grain_table, read_grain_images

LAYER_CHOICES = ("sharpest", "all")
IMAGE_BATCH = 256  # grains read at a time from a sample store


def labelled_grains(archive: Archive, keys: Sequence[SampleKey] | None = None) -> pd.DataFrame:
    """The grain table with the expert's decision per grain: ``class``, ``excluded``, ``reason``, ``by``, ``at``."""
    table = grain_table(archive, keys)
    labels = current_labels(archive)  # names of another (refitted) model are refused, with a warning
    decisions = {}
    for cid in sorted(set(table["cluster"].tolist())) if len(table) else []:
        where = resolve_cluster(labels, cid) if cid >= 0 else {"class": None, "excluded": False, "reason": None, "root": cid}
        entry = labels.clusters.get(where["root"], {})
        decisions[cid] = (where["class"] or "", bool(where["excluded"]), where["reason"] or "",
                          entry.get("by", ""), entry.get("at", ""))
    columns = ("class", "excluded", "reason", "decided_by", "decided_at")
    for i, name in enumerate(columns):
        table[name] = [decisions[c][i] for c in table["cluster"]] if len(table) else []
    return table


def export_table(archive: Archive, out: str | Path, keys: Sequence[SampleKey] | None = None) -> list[Path]:
    """``grains.csv`` (and ``grains.parquet`` with pyarrow) in ``out``: one row per grain."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    table = labelled_grains(archive, keys)
    written = [_atomic_csv(table, out / "grains.csv")]
    try:
        import pyarrow  # noqa: F401 - optional
    except ImportError:
        return written
    atomic_write(out / "grains.parquet", lambda tmp: table.to_parquet(tmp, index=False))
    return [*written, out / "grains.parquet"]


def _atomic_csv(table: pd.DataFrame, path: Path) -> Path:
    return atomic_write(path, lambda tmp: table.to_csv(tmp, index=False))


def ecotaxa_rows(table: pd.DataFrame, archive: Archive, layers: str = "sharpest") -> tuple[list[str], list[str], list[dict[str, Any]]]:
    """Column names, their ``[t]``/``[f]`` types and the rows of the EcoTaxa TSV (no images)."""
    if layers not in LAYER_CHOICES:
        raise ArchiveError(f"layers {layers!r}: expected one of {', '.join(LAYER_CHOICES)}")
    measures = [m for m in (*MEASUREMENTS, "size_um") if m in table.columns]
    bbox = [c for c in ("bbox_y0", "bbox_x0", "bbox_y1", "bbox_x1") if c in table.columns]
    text = ["img_file_name", "object_id", "object_annotation_status", "object_annotation_category",
            "object_annotation_person_name", "object_annotation_date", "object_annotation_time",
            "sample_id", "sample_core", "acq_id", "process_id", "process_software"]
    numbers = ["img_rank", "object_depth_min", "object_depth_max", "object_cluster", "object_position",
               "object_sharpest_layer", "object_chopped", "object_clump",
               *(f"object_{m}" for m in measures), *(f"object_{b}" for b in bbox),
               "sample_depth_top_cm", "sample_depth_bottom_cm", "acq_pixel_size_um", "acq_focal_layers"]
    order = ["img_file_name", "img_rank", "object_id", "object_depth_min", "object_depth_max",
             "object_annotation_status", "object_annotation_category", "object_annotation_person_name",
             "object_annotation_date", "object_annotation_time", "object_cluster", "object_position",
             "object_sharpest_layer", "object_chopped", "object_clump", *(f"object_{m}" for m in measures),
             *(f"object_{b}" for b in bbox), "sample_id", "sample_core", "sample_depth_top_cm",
             "sample_depth_bottom_cm", "acq_id", "acq_pixel_size_um", "acq_focal_layers", "process_id",
             "process_software"]
    types = ["[t]" if c in text else "[f]" for c in order]
    untyped = sorted(set(order) ^ (set(text) | set(numbers)))
    if untyped:  # not an input check: the column lists above must agree (kept as an error, not an assert)
        raise ArchiveError(f"EcoTaxa columns without exactly one type: {', '.join(untyped)}")
    rows = []
    attrs_of: dict[str, dict[str, Any]] = {}
    for grain in table.to_dict("records"):
        sample = grain["sample"]
        if sample not in attrs_of:
            attrs_of[sample] = read_attrs(archive.sample_path(SampleKey.from_name(sample)))
        attrs = attrs_of[sample]
        n_layers = len(attrs.get("focal_offsets_um", [])) or 1
        status, category, person, day, clock = "", "", "", "", ""
        if grain["excluded"] or grain["class"]:
            status = "predicted"
            category = grain["class"] or grain["reason"] or "excluded"
            person = grain["decided_by"]
            day, clock = _ecotaxa_date(grain["decided_at"])
        base = {
            "object_id": f"{sample}_g{grain['particle']}",
            "object_depth_min": grain["depth_top_cm"] / 100.0, "object_depth_max": grain["depth_bottom_cm"] / 100.0,
            "object_annotation_status": status, "object_annotation_category": category,
            "object_annotation_person_name": person, "object_annotation_date": day,
            "object_annotation_time": clock, "object_cluster": grain["cluster"], "object_position": grain["position"],
            "object_sharpest_layer": grain["sharpest_layer"], "object_chopped": int(grain["chopped"]),
            "object_clump": int(grain["clump"]),
            **{f"object_{m}": grain[m] for m in measures},
            **{f"object_{b}": grain[b] for b in bbox},
            "sample_id": sample, "sample_core": grain["core"], "sample_depth_top_cm": grain["depth_top_cm"],
            "sample_depth_bottom_cm": grain["depth_bottom_cm"], "acq_id": f"{sample}_acq",
            "acq_pixel_size_um": attrs.get("pixel_size_um", ""), "acq_focal_layers": n_layers,
            "process_id": attrs.get("kmeans_id", "") or "unclustered", "process_software": f"sedarchive {__version__}",
        }
        ranks = [int(grain["sharpest_layer"])] if layers == "sharpest" else list(range(n_layers))
        for rank, layer in enumerate(ranks):
            rows.append({**base, "img_file_name": image_name(sample, grain["particle"], layer), "img_rank": rank,
                         "_layer": layer, "_particle": grain["particle"]})
    return order, types, rows


def image_name(sample: str, particle: int, layer: int) -> str:
    """Where a grain's picture lies inside the export (relative to the TSV)."""
    return f"images/{sample}/{sample}_g{int(particle)}_z{int(layer)}.png"


def _ecotaxa_date(stamp: str) -> tuple[str, str]:
    """``2026-11-24T10:00:00+00:00`` -> ``("20261124", "100000")`` (empty when unreadable)."""
    try:
        when = datetime.fromisoformat(str(stamp))
    except ValueError:
        return "", ""
    return when.strftime("%Y%m%d"), when.strftime("%H%M%S")


def export_ecotaxa(archive: Archive, out: str | Path, keys: Sequence[SampleKey] | None = None, *,
                   layers: str = "sharpest", make_zip: bool = False, quiet: bool = True) -> Path:
    """Write an EcoTaxa import folder ``out/ecotaxa_<archive>/`` (TSV + images); returns the TSV or zip.

    Everything is written into a temporary folder first and renamed at the end.
    """
    out = Path(out)
    name = f"ecotaxa_{_safe(archive.root.name)}"
    final = out / name
    work = out / f".{name}.tmp-{os.getpid()}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    try:
        table = labelled_grains(archive, keys)
        order, types, rows = ecotaxa_rows(table, archive, layers)
        _write_images(archive, rows, work, quiet)
        with open(work / f"{name}.tsv", "w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh, delimiter="\t", lineterminator="\n")
            writer.writerow(order)
            writer.writerow(types)
            for row in rows:
                writer.writerow([_cell(row[c]) for c in order])
        replace_dir(work, final)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    if not make_zip:
        return final / f"{name}.tsv"
    zip_path = out / f"{name}.zip"

    def write_zip(tmp: Path) -> None:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED) as zf:  # PNGs are compressed already
            for path in sorted(final.rglob("*")):
                if path.is_file():
                    zf.write(path, path.relative_to(final).as_posix())

    return atomic_write(zip_path, write_zip)


def _write_images(archive: Archive, rows: list[dict[str, Any]], work: Path, quiet: bool) -> None:
    from PIL import Image

    by_sample: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        by_sample.setdefault(row["sample_id"], []).append(row)
    for i, (sample, items) in enumerate(by_sample.items()):
        (work / "images" / sample).mkdir(parents=True, exist_ok=True)
        particles = sorted({r["_particle"] for r in items})
        for start in range(0, len(particles), IMAGE_BATCH):
            batch = particles[start:start + IMAGE_BATCH]
            stacks = dict(zip(batch, read_grain_images(archive, sample, batch)))
            for row in items:
                if row["_particle"] in stacks:
                    image = stacks[row["_particle"]][row["_layer"]]
                    Image.fromarray(np.ascontiguousarray(image)).save(work / row["img_file_name"], format="PNG",
                                                                      compress_level=1)
        if not quiet:
            print(f"export: {i + 1}/{len(by_sample)} {sample} ({len(items)} images)", flush=True)


def _cell(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, (bool, np.bool_)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        return f"{float(value):.6g}"
    return str(value)


def _safe(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in text)
