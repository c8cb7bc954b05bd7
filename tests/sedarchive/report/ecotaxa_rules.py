"""A small checker of EcoTaxa's rules for an import TSV (what its back-end's TSV checks refuse).

Written from EcoTaxa's import documentation and its back-end checks (``TSVFile`` / ``ImportHowTo``):
the file is UTF-8 with a byte-order mark (without it EcoTaxa reads Latin-1); row 1 names the columns,
lower-case ``[a-z0-9_]``, each with a known prefix, none twice; row 2 types them ``[t]`` or ``[f]``;
``[f]`` cells are numbers (or empty); ``object_id`` is present and unique per image rank;
``img_file_name`` points at a file beside the TSV; ``img_rank`` is a whole number; an
``object_annotation_status`` is empty, ``predicted``, ``validated`` or ``dubious``, and a set status needs
a category; ``object_date`` is ``YYYYMMDD`` and ``object_time`` ``HHMMSS``; ``object_lat``/``object_lon``
are within the globe; every row of a ``sample_id`` (``acq_id``, ``process_id``) carries the same
``sample_*`` (``acq_*``, ``process_*``) values. Returns the list of errors (empty: importable).
"""
from __future__ import annotations

import csv
import io
import re
from pathlib import Path

PREFIXES = ("img", "object", "sample", "acq", "process")
STATUSES = ("", "predicted", "validated", "dubious")


def check_tsv(path: str | Path) -> list[str]:
    path = Path(path)
    raw = path.read_bytes()
    errors: list[str] = []
    if not raw.startswith(b"\xef\xbb\xbf"):
        errors.append("no UTF-8 byte-order mark: EcoTaxa would read the file as Latin-1")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        return errors + [f"not UTF-8: {err}"]
    rows = list(csv.reader(io.StringIO(text), delimiter="\t"))
    if len(rows) < 2:
        return errors + ["needs a header row and a type row"]
    header, types, body = rows[0], rows[1], rows[2:]
    for name in header:
        if not re.fullmatch(r"[a-z0-9_]+", name):
            errors.append(f"column {name!r}: lower-case letters, digits and _ only")
        if name.split("_", 1)[0] not in PREFIXES:
            errors.append(f"column {name!r}: prefix must be one of {PREFIXES}")
    if len(set(header)) != len(header):
        errors.append("a column is named twice")
    if len(types) != len(header) or any(t not in ("[t]", "[f]") for t in types):
        errors.append("the second row must type every column [t] or [f]")
    if "object_id" not in header or "img_file_name" not in header:
        errors.append("object_id and img_file_name are required")
        return errors
    typed = dict(zip(header, types))
    seen = set()
    groups: dict[tuple[str, str], dict[str, str]] = {}
    for n, cells in enumerate(body, start=3):
        if len(cells) != len(header):
            errors.append(f"line {n}: {len(cells)} cells for {len(header)} columns")
            continue
        row = dict(zip(header, cells))
        for name, value in row.items():
            if typed.get(name) == "[f]" and value != "":
                try:
                    float(value)
                except ValueError:
                    errors.append(f"line {n}: {name} is typed [f] but holds {value!r}")
        if not row["object_id"]:
            errors.append(f"line {n}: empty object_id")
        rank = row.get("img_rank", "0") or "0"
        if not re.fullmatch(r"\d+", rank):
            errors.append(f"line {n}: img_rank {rank!r} is not a whole number")
        if (row["object_id"], rank) in seen:
            errors.append(f"line {n}: object {row['object_id']} rank {rank} twice")
        seen.add((row["object_id"], rank))
        if not (path.parent / row["img_file_name"]).is_file():
            errors.append(f"line {n}: image {row['img_file_name']} is missing")
        status = row.get("object_annotation_status", "")
        if status not in STATUSES:
            errors.append(f"line {n}: annotation status {status!r}")
        if status and not row.get("object_annotation_category"):
            errors.append(f"line {n}: status {status} without a category")
        if row.get("object_date") and not re.fullmatch(r"\d{8}", row["object_date"]):
            errors.append(f"line {n}: object_date {row['object_date']!r} is not YYYYMMDD")
        if row.get("object_time") and not re.fullmatch(r"\d{6}", row["object_time"]):
            errors.append(f"line {n}: object_time {row['object_time']!r} is not HHMMSS")
        for name, bound in (("object_lat", 90), ("object_lon", 180)):
            if row.get(name) and abs(float(row[name])) > bound:
                errors.append(f"line {n}: {name} {row[name]} is off the globe")
        for prefix, key in (("sample", "sample_id"), ("acq", "acq_id"), ("process", "process_id")):
            if key in row:
                values = {k: v for k, v in row.items() if k.startswith(prefix + "_")}
                if groups.setdefault((prefix, row[key]), values) != values:
                    errors.append(f"line {n}: {key} {row[key]} has other {prefix}_ values than on an earlier line")
    return errors
