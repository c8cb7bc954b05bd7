"""Writing ``ARCHIVE/report/``: gather what the archive holds, draw it, and lay out the page.

The report is written into a fresh folder beside ``report/`` and swapped in at the end, so an
interrupted run leaves the previous report whole.
"""
from __future__ import annotations

import os
import shutil
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from catalog import Archive, SampleKey
from catalog.errors import ArchiveError
from catalog.files import replace_dir
from sedarchive.dask import TaskReport
from sedarchive.clustering.umap_map import load_map
from sedarchive.counting.labels import Labels, current_labels, resolve_cluster
from sedarchive.counting.results import read_proportions
from sedarchive.gallery import thumbnails
from sedarchive.gallery.grains import grain_table, read_grain_images
from sedarchive.report import figures
from sedarchive.settings_files import check_keys, read_settings_file
from sedarchive.report.series import downcore_series
from sedarchive.report.summary import run_summary


@dataclass(frozen=True)
class ReportSettings:
    """What the report shows; defaults suit an archive of a few hundred thousand grains."""

    examples_per_cluster: int = 12
    thumbnail_px: int = 96
    map_points: int = 50_000
    seed: int = 0

    @classmethod
    def from_file(cls, path: str | Path, **overrides: Any) -> ReportSettings:
        """Settings from a YAML or TOML file (keys as the fields, optionally under ``report:``), then ``overrides``."""
        raw = read_settings_file(path, "report", section="report")
        check_keys(raw, {f.name for f in fields(cls)}, f"report settings {path}")
        raw.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**raw)

    def __post_init__(self) -> None:
        if self.examples_per_cluster < 1 or self.thumbnail_px < 16 or self.map_points < 10:
            raise ArchiveError("report settings: need examples_per_cluster >= 1, thumbnail_px >= 16, map_points >= 10")


@dataclass
class ClusterView:
    """One gallery: a cluster, what the expert decided about it, its examples and sizes."""

    cluster: int
    size: int
    decision: dict[str, Any]
    examples: list[dict[str, Any]] = field(default_factory=list)
    size_stats: dict[str, float] = field(default_factory=dict)
    histogram: dict[str, Any] | None = None


def write_report(archive: Archive, settings: ReportSettings | None = None, *, keys: list[SampleKey] | None = None,
                 quiet: bool = True) -> Path:
    """Write ``ARCHIVE/report/index.html`` and the files beside it; returns the page's path.

    Works at every stage of an archive: before clustering it shows the summary and the grains'
    sizes, before naming it shows clusters only, and once ``labels.yaml`` names clusters it adds
    the map by class and the down-core class fractions and proxies.
    """
    from sedarchive.report.page import render_page

    settings = settings or ReportSettings()
    timings: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        timings[name] = now - clock
        clock = now
        if not quiet:
            print(f"report: {name} ({timings[name]:.1f} s)", flush=True)

    keys = list(keys) if keys is not None else archive.keys()
    table = grain_table(archive, keys)
    labels = current_labels(archive)  # stale names (another model's) refused; the page says so
    decisions = _decisions(labels, table)
    lap("grain table")

    work = archive.root / f".report.tmp-{os.getpid()}"
    shutil.rmtree(work, ignore_errors=True)
    (work / "grains").mkdir(parents=True)
    (work / "plots").mkdir()
    try:
        maps = _maps(archive, table, labels, decisions, settings, work)
        lap("map")
        clusters = _galleries(archive, table, decisions, settings, work)
        lap("galleries")
        proportions = read_proportions(archive)
        downcore = []
        for core, series, xlabel in downcore_series(proportions, table, labels):
            out = figures.downcore(core, series["depth"], series["series"], work / "plots" / f"downcore_{_safe(core)}.png",
                                   xlabel=xlabel)
            downcore.append({"core": core, "png": f"plots/{out.name}", "series": list(series["series"])})
        lap("down-core plots")
        summary = run_summary(archive, keys, table, labels, settings=asdict(settings))
        for name in ("static/report.css", "static/report.js"):
            shutil.copy(Path(__file__).parent / name, work / Path(name).name)
        summary["report_timings_s"] = dict(timings)
        html = render_page(archive, summary, maps, clusters, downcore, labels)
        (work / "index.html").write_text(html, encoding="utf-8")
        replace_dir(work, archive.report_dir)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    lap("page")
    return archive.report_dir / "index.html"


def run_stage(archive: Archive, keys: list[SampleKey], client: Any, settings: ReportSettings | None, *,
              quiet: bool = False) -> TaskReport:
    """The pipeline's report step: the report of the whole archive (its map and counts are archive-wide).

    ``keys`` and ``client`` are accepted for the pipeline's uniform call; the report reads only
    small per-grain arrays and a few images, so it runs here rather than on Dask.
    """
    path = write_report(archive, settings, quiet=quiet)
    return TaskReport(results={"report": path})


def _safe(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in text)


def _decisions(labels: Labels, table: pd.DataFrame) -> dict[int, dict[str, Any]]:
    ids = sorted(int(c) for c in table["cluster"].unique() if c >= 0) if len(table) else []
    out = {}
    for cid in ids:
        where = resolve_cluster(labels, cid)
        where["merged"] = where["root"] != cid
        out[cid] = where
    return out


def grain_class(decision: dict[str, Any] | None) -> str | None:
    """The class a grain counts as: its cluster's class, ``"excluded"``, or None (not named)."""
    if decision is None:
        return None
    if decision["excluded"]:
        return "excluded"
    return decision["class"]


def _maps(archive, table, labels, decisions, settings, work) -> list[dict[str, str]]:
    umap = load_map(archive)
    method = "UMAP"
    if umap is not None and umap.sizes.get("point", 0):
        xy = np.asarray(umap["umap"].values, float)
        cluster = np.asarray(umap["cluster"].values, np.int64)
    else:
        xy, cluster = _pca_map(archive, table, settings)
        method = "PCA of the latents (no UMAP map in the archive yet)"
        if xy is None:
            return []
    rng = np.random.default_rng(settings.seed)
    if len(xy) > settings.map_points:
        pick = rng.choice(len(xy), settings.map_points, replace=False)
        xy, cluster = xy[pick], cluster[pick]
    keep = cluster >= 0
    xy, cluster = xy[keep], cluster[keep]
    out = [{"png": "plots/map_clusters.png", "title": f"{method}, coloured by cluster ({len(xy):,} grains)"}]
    figures.map_by_cluster(xy, cluster, work / out[0]["png"], title=f"{method} — by cluster")
    if any(d["class"] or d["excluded"] for d in decisions.values()):
        cls = [grain_class(decisions.get(int(c))) for c in cluster]
        figures.map_by_class(xy, cls, labels.classes, work / "plots/map_classes.png",
                             title=f"{method} — by class")
        out.append({"png": "plots/map_classes.png", "title": f"{method}, coloured by class"})
    return out


def _pca_map(archive, table, settings):
    from catalog import read_array
    from catalog.store import array_names

    rng = np.random.default_rng(settings.seed)
    parts, clusters = [], []
    for name, rows in table.groupby("sample", sort=False):
        path = archive.sample_path(SampleKey.from_name(name))
        if "latent" not in array_names(path):
            continue
        parts.append(read_array(path, "latent"))
        clusters.append(rows["cluster"].to_numpy())
    if not parts:
        return None, None
    latent, cluster = np.concatenate(parts).astype(float), np.concatenate(clusters)
    if len(latent) > settings.map_points:
        pick = rng.choice(len(latent), settings.map_points, replace=False)
        latent, cluster = latent[pick], cluster[pick]
    centred = latent - latent.mean(axis=0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    return centred @ vt[:2].T, cluster


def _galleries(archive, table, decisions, settings, work) -> list[ClusterView]:
    if not decisions:
        return []
    rng = np.random.default_rng(settings.seed)
    sizes = table["size_um"].to_numpy(float)
    finite = sizes[np.isfinite(sizes)]
    bins = np.linspace(*np.nanpercentile(finite, [0.5, 99.5]), 21) if finite.size > 1 else np.linspace(0, 1, 21)
    units = set(table["size_unit"])
    unit = units.pop() if len(units) == 1 else "µm or px"
    views = []
    picks: dict[str, list[tuple[int, int, int]]] = {}
    for cid, decision in decisions.items():
        rows = table.index[table["cluster"].to_numpy() == cid]
        chosen = rng.choice(rows, min(settings.examples_per_cluster, len(rows)), replace=False)
        view = ClusterView(cid, len(rows), decision)
        cs = sizes[rows]
        cs = cs[np.isfinite(cs)]
        if cs.size:
            view.size_stats = {"median": float(np.median(cs)), "p10": float(np.percentile(cs, 10)),
                               "p90": float(np.percentile(cs, 90))}
            counts, _ = np.histogram(np.clip(cs, bins[0], bins[-1]), bins=bins)
            view.histogram = {"counts": counts.tolist(), "edges": [float(bins[0]), float(bins[-1])], "unit": unit}
        for slot, row in enumerate(sorted(chosen)):
            grain = table.loc[row]
            picks.setdefault(grain["sample"], []).append((cid, slot, int(row)))
            view.examples.append({"sample": grain["sample"], "particle": int(grain["particle"]),
                                  "layer": int(grain["sharpest_layer"]), "size_um": float(grain["size_um"]),
                                  "chopped": bool(grain["chopped"]), "clump": bool(grain["clump"]),
                                  "thumb": f"grains/c{cid}_{slot}.jpg", "layers": f"grains/c{cid}_{slot}_layers.jpg"})
        views.append(view)
    for sample, items in picks.items():
        particles = [int(table.loc[row, "particle"]) for _, _, row in items]
        images = read_grain_images(archive, sample, particles)
        for (cid, slot, row), stack in zip(items, images):
            layer = int(np.clip(table.loc[row, "sharpest_layer"], 0, len(stack) - 1))
            thumb = thumbnails.resized(stack[layer], settings.thumbnail_px)
            (work / f"grains/c{cid}_{slot}.jpg").write_bytes(thumbnails.jpeg_bytes(thumb))
            strip = thumbnails.layer_strip(stack, min(settings.thumbnail_px * 2, max(stack.shape[1:3])))
            (work / f"grains/c{cid}_{slot}_layers.jpg").write_bytes(thumbnails.jpeg_bytes(strip))
    return views


