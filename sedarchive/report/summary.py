"""The run summary of the report: what the archive holds, the settings and the timings recorded."""
from __future__ import annotations

import json
from collections import Counter, defaultdict
from typing import TYPE_CHECKING, Any

import pandas as pd

from catalog import Archive, SampleKey, positions_done, read_attrs
from catalog.errors import ArchiveError
from catalog.models import read_current
from catalog.store import array_names, summary as store_summary

if TYPE_CHECKING:
    from sedarchive.counting.labels import Labels

STAGES = ("acquire", "ingest", "segment", "train", "encode", "cluster", "umap", "proportions")
TIMING_SUFFIXES = ("_seconds", "_elapsed_s", "_time_s", "_wall_s", "_duration_s")


def run_summary(archive: Archive, keys: list[SampleKey], table: pd.DataFrame, labels: Labels,
                *, settings: dict[str, Any]) -> dict[str, Any]:
    """Counts, the settings of every stage (with how many samples used each), timings and models."""
    frames = positions = 0
    statuses: Counter[str] = Counter()
    stage_settings: dict[str, Counter[str]] = defaultdict(Counter)
    timings: dict[str, float] = defaultdict(float)
    counting: dict[str, Any] = {"plate": 0, "per_frame": []}  # how write_proportions counted (issue 12)
    for key in keys:
        path = archive.sample_path(key)
        meta = store_summary(path)
        attrs = read_attrs(path)
        how = attrs.get("counting") if isinstance(attrs.get("counting"), dict) else None
        if how and how.get("mode") == "plate":
            counting["plate"] += 1
        elif how:
            counting["per_frame"].append((key.name, str(how.get("note", ""))))
        statuses[meta["status"]] += 1
        positions += meta["n_positions"]
        if "position_done" in array_names(path):  # frames actually taken, not the template's
            frames += int(positions_done(path).sum()) * max(1, len(attrs.get("focal_offsets_um", [])))
        for name, value in attrs.items():
            if name.endswith("_settings") and isinstance(value, dict):
                stage_settings[name[: -len("_settings")]][json.dumps(value, sort_keys=True)] += 1
            elif name.endswith(TIMING_SUFFIXES) and isinstance(value, (int, float)):
                timings[name] += float(value)
            elif name.endswith(("_timing", "_timings")) and isinstance(value, dict):
                for step, seconds in value.items():
                    if isinstance(seconds, (int, float)):
                        timings[f"{name[: name.rindex('_timing')]}: {step}"] += float(seconds)
    run_file = archive.run_path  # written by `sedarchive run` after each stage
    try:
        for stage, seconds in json.loads(run_file.read_text()).get("stages_s", {}).items():
            timings[f"run: {stage}"] = float(seconds)
    except (OSError, ValueError, AttributeError, TypeError):
        pass  # no pipeline run yet (stages run one by one), or an unreadable file: no timings from it
    clustered = table[table["cluster"] >= 0] if len(table) else table
    decisions = labels.clusters
    try:
        current = read_current(archive.models_dir) or None
    except ArchiveError as err:
        current = {"error": str(err)}
    return {
        "samples": len(keys),
        "cores": sorted({k.core for k in keys}),
        "statuses": dict(statuses),
        "positions": positions,
        "frames": frames,
        "grains": int(len(table)),
        "chopped": int(table["chopped"].sum()) if len(table) else 0,
        "clumps": int(table["clump"].sum()) if len(table) else 0,
        "flagged": int((table["chopped"] | table["clump"]).sum()) if len(table) else 0,
        "clustered_grains": int(len(clustered)),
        "clusters": int(clustered["cluster"].nunique()) if len(clustered) else 0,
        "named_clusters": sum(1 for d in decisions.values() if d.get("class")),
        "merged_clusters": sum(1 for d in decisions.values() if "merged_into" in d),
        "excluded_clusters": sum(1 for d in decisions.values() if d.get("excluded")),
        "classes": list(labels.classes),
        "counting": counting,
        "stage_settings": {stage: dict(c) for stage, c in sorted(stage_settings.items(), key=_stage_order)},
        "stage_timings_s": dict(timings),
        "models": current,
        "report_settings": settings,
    }


def _stage_order(item: tuple[str, Any]) -> tuple[int, str]:
    stage = item[0]
    return (STAGES.index(stage) if stage in STAGES else len(STAGES), stage)
