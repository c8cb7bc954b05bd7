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


#: what EcoTaxa calls the grains of excluded clusters (its own non-living categories), by exclusion reason;
#: a mapping file may override them (``cut_off: "artefact"``). Older reasons are mapped too.
EXCLUDED_CATEGORIES = {"cut_off": "artefact", "touching": "multiple<other", "not_a_grain": "detritus",
                       "other": "artefact", "chopped": "artefact", "clump": "multiple<other", "debris": "detritus"}
EXCLUDED_CHOICES = ("category", "leave-out")


def read_category_map(path: str | Path) -> dict[str, str]:
    """A mapping file, class (or exclusion reason) -> EcoTaxa category name, as YAML or two-column TSV/CSV.

    YAML: ``quartz: "Quartz<mineral"``; TSV/CSV: one ``class<TAB>category`` line each (a header
    ``class,category`` is skipped).
    """
    import yaml

    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as err:
        raise ArchiveError(f"cannot read category mapping {path}: {err}") from None
    if path.suffix.lower() in (".yaml", ".yml", ".json"):
        try:
            raw = yaml.safe_load(text) or {}
        except yaml.YAMLError as err:
            raise ArchiveError(f"{path} is not valid YAML: {str(err).splitlines()[0]}") from None
        if not isinstance(raw, dict) or not all(isinstance(v, str) and v.strip() for v in raw.values()):
            raise ArchiveError(f"{path}: expected class: EcoTaxa category lines")
        return {str(k): v.strip() for k, v in raw.items()}
    out = {}
    for line, row in enumerate(csv.reader(text.splitlines(), delimiter="\t" if "\t" in text else ","), start=1):
        if not row or row[0].startswith("#") or (line == 1 and [c.strip().lower() for c in row[:2]] == ["class", "category"]):
            continue
        if len(row) != 2 or not row[1].strip():
            raise ArchiveError(f"{path}:{line}: expected two columns, class and EcoTaxa category")
        out[row[0].strip()] = row[1].strip()
    return out


def ecotaxa_rows(table: pd.DataFrame, archive: Archive, layers: str = "sharpest", *,
                 categories: dict[str, str] | None = None, excluded: str = "category"
                 ) -> tuple[list[str], list[str], list[dict[str, Any]]]:
    """Column names, their ``[t]``/``[f]`` types and the rows of the EcoTaxa TSV (no images).

    ``categories`` maps classes and exclusion reasons to EcoTaxa category names (unmapped classes
    keep their name; reasons default to :data:`EXCLUDED_CATEGORIES`); ``excluded="leave-out"``
    drops the grains of excluded clusters. ``object_depth_min/max`` is the water depth at the core
    site (metres, from the catalog's cores table; EcoTaxa reads it so), the depth in the core is
    ``sample_depth_top_cm``/``sample_depth_bottom_cm``. Rows are ``predicted`` without annotator or
    date (EcoTaxa keeps those only for validated objects); who decided is in grains.csv.
    """
    from catalog.cores import read_cores

    if layers not in LAYER_CHOICES:
        raise ArchiveError(f"layers {layers!r}: expected one of {', '.join(LAYER_CHOICES)}")
    if excluded not in EXCLUDED_CHOICES:
        raise ArchiveError(f"excluded {excluded!r}: expected one of {', '.join(EXCLUDED_CHOICES)}")
    mapping = {**EXCLUDED_CATEGORIES, **(categories or {})}
    cores = read_cores(archive.root)
    measures = [m for m in (*MEASUREMENTS, "size_um") if m in table.columns]
    bbox = [c for c in ("bbox_y0", "bbox_x0", "bbox_y1", "bbox_x1") if c in table.columns]
    text = ["img_file_name", "object_id", "object_date", "object_annotation_status", "object_annotation_category",
            "object_class", "object_exclusion_reason", "sample_id", "sample_core", "sample_cruise",
            "sample_collection_date", "acq_id", "process_id", "process_software"]
    numbers = ["img_rank", "object_lat", "object_lon", "object_depth_min", "object_depth_max", "object_cluster",
               "object_position", "object_layer", "object_sharpest_layer", "object_chopped", "object_clump",
               *(f"object_{m}" for m in measures), *(f"object_{b}" for b in bbox),
               "sample_depth_top_cm", "sample_depth_bottom_cm", "sample_water_depth_m", "sample_latitude",
               "sample_longitude", "acq_pixel_size_um", "acq_focal_layers"]
    order = ["img_file_name", "img_rank", "object_id", "object_lat", "object_lon", "object_date", "object_depth_min",
             "object_depth_max", "object_annotation_status", "object_annotation_category", "object_class",
             "object_exclusion_reason", "object_cluster", "object_position", "object_layer", "object_sharpest_layer",
             "object_chopped", "object_clump", *(f"object_{m}" for m in measures), *(f"object_{b}" for b in bbox),
             "sample_id", "sample_core", "sample_cruise", "sample_collection_date", "sample_latitude",
             "sample_longitude", "sample_water_depth_m", "sample_depth_top_cm", "sample_depth_bottom_cm", "acq_id",
             "acq_pixel_size_um", "acq_focal_layers", "process_id", "process_software"]
    types = ["[t]" if c in text else "[f]" for c in order]
    untyped = sorted(set(order) ^ (set(text) | set(numbers)))
    if untyped:  # not an input check: the column lists above must agree (kept as an error, not an assert)
        raise ArchiveError(f"EcoTaxa columns without exactly one type: {', '.join(untyped)}")
    rows = []
    attrs_of: dict[str, dict[str, Any]] = {}
    for grain in table.to_dict("records"):
        if grain["excluded"] and excluded == "leave-out":
            continue
        sample = grain["sample"]
        if sample not in attrs_of:
            attrs_of[sample] = read_attrs(archive.sample_path(SampleKey.from_name(sample)))
        attrs = attrs_of[sample]
        core = cores.get(grain["core"])
        n_layers = len(attrs.get("focal_offsets_um", [])) or 1
        status, category = "", ""
        if grain["excluded"] or grain["class"]:
            status = "predicted"
            key = grain["class"] or grain["reason"]
            category = mapping.get(key, key) if key else "artefact"
        water = core.water_depth_m if core else None
        date = core.collection_date.replace("-", "") if core and core.collection_date else ""
        base = {
            "object_id": f"{sample}_g{grain['particle']}",
            "object_lat": core.latitude if core else None, "object_lon": core.longitude if core else None,
            "object_date": date, "object_depth_min": water, "object_depth_max": water,
            "object_annotation_status": status, "object_annotation_category": category,
            "object_class": grain["class"], "object_exclusion_reason": grain["reason"] if grain["excluded"] else "",
            "object_cluster": grain["cluster"], "object_position": grain["position"],
            "object_sharpest_layer": grain["sharpest_layer"], "object_chopped": int(grain["chopped"]),
            "object_clump": int(grain["clump"]),
            **{f"object_{m}": grain[m] for m in measures},
            **{f"object_{b}": grain[b] for b in bbox},
            "sample_id": sample, "sample_core": grain["core"], "sample_cruise": (core.cruise if core else "") or "",
            "sample_collection_date": date, "sample_latitude": core.latitude if core else None,
            "sample_longitude": core.longitude if core else None, "sample_water_depth_m": water,
            "sample_depth_top_cm": grain["depth_top_cm"], "sample_depth_bottom_cm": grain["depth_bottom_cm"],
            "acq_id": f"{sample}_acq", "acq_pixel_size_um": attrs.get("pixel_size_um"), "acq_focal_layers": n_layers,
            "process_id": attrs.get("kmeans_id", "") or "unclustered", "process_software": f"sedarchive {__version__}",
        }
        sharpest = int(grain["sharpest_layer"])
        # img_rank 0 is the sharpest layer (EcoTaxa shows rank 0 first); the others follow in focal order
        ranks = [sharpest] if layers == "sharpest" else [sharpest, *(i for i in range(n_layers) if i != sharpest)]
        for rank, layer in enumerate(ranks):
            rows.append({**base, "img_file_name": image_name(sample, grain["particle"], layer), "img_rank": rank,
                         "object_layer": layer, "_layer": layer, "_particle": grain["particle"]})
    return order, types, rows


def image_name(sample: str, particle: int, layer: int) -> str:
    """Where a grain's picture lies inside the export (relative to the TSV)."""
    return f"images/{sample}/{sample}_g{int(particle)}_z{int(layer)}.png"


def export_ecotaxa(archive: Archive, out: str | Path, keys: Sequence[SampleKey] | None = None, *,
                   layers: str = "sharpest", make_zip: bool = False, quiet: bool = True,
                   categories: dict[str, str] | None = None, excluded: str = "category") -> Path:
    """Write an EcoTaxa import folder ``out/ecotaxa_<archive>/`` (TSV + images); returns the TSV or zip.

    The TSV is UTF-8 with a byte-order mark (as EcoTaxa's own exports; without it EcoTaxa reads
    Latin-1). ``categories`` and ``excluded``: see :func:`ecotaxa_rows`. Everything is written into
    a temporary folder first and renamed at the end.
    """
    out = Path(out)
    name = f"ecotaxa_{_safe(archive.root.name)}"
    final = out / name
    work = out / f".{name}.tmp-{os.getpid()}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    try:
        table = labelled_grains(archive, keys)
        order, types, rows = ecotaxa_rows(table, archive, layers, categories=categories, excluded=excluded)
        _write_images(archive, rows, work, quiet)
        with open(work / f"{name}.tsv", "w", newline="", encoding="utf-8-sig") as fh:
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
