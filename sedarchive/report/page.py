"""The report's HTML: plain markup around the PNGs, with report.css and report.js beside it."""
from __future__ import annotations

import json
from datetime import datetime, timezone
from html import escape
from typing import TYPE_CHECKING, Any

from catalog import Archive
from sedarchive import __version__
from sedarchive.report.classifier import classifier_section
from sedarchive.report.figures import class_colours, cluster_colour

if TYPE_CHECKING:
    from sedarchive.counting.labels import Labels


def render_page(archive: Archive, summary: dict[str, Any], maps: list[dict[str, str]], clusters: list,
                downcore: list[dict[str, Any]], labels: Labels) -> str:
    """The whole page as one string (every link relative, nothing fetched from elsewhere)."""
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    nav = [("summary", "Run summary"), ("map", "Map"), ("downcore", "Down-core"), ("classifier", "Classifier"),
           ("clusters", "Clusters")]
    body = [
        f"<header><h1>{escape(archive.root.name)} <span class=sub>sediment grains report</span></h1>",
        f"<p class=meta>written {stamp} by sedarchive {escape(__version__)} from <code>{escape(str(archive.root))}</code></p>",
        "<nav>" + " ".join(f'<a href="#{a}">{t}</a>' for a, t in nav) + "</nav></header>",
        (f"<p class=warning id=stale-labels>{escape(labels.stale_note)}</p>" if labels.stale_note else ""),
        _summary(summary),
        _maps(maps),
        _downcore(downcore),
        classifier_section(archive),
        _clusters(clusters, labels),
        '<div id=lightbox hidden><div class=box><button class=close aria-label=close>&times;</button>'
        '<img alt="all focal layers"><p class=caption></p></div></div>',
        '<div id=hoverbox hidden><img alt="all focal layers"></div>',
    ]
    return (
        "<!doctype html>\n<html lang=en><head><meta charset=utf-8>"
        '<meta name=viewport content="width=device-width, initial-scale=1">'
        f"<title>{escape(archive.root.name)} — sedarchive report</title>"
        '<link rel=stylesheet href="report.css"></head>\n<body>\n'
        + "\n".join(body)
        + '\n<script src="report.js"></script>\n</body></html>\n'
    )


def _row(name: str, value: Any) -> str:
    return f"<tr><th>{escape(name)}</th><td>{escape(str(value))}</td></tr>"


def _summary(s: dict[str, Any]) -> str:
    grains = s["grains"]
    pct = (lambda n: f"{n:,} ({100 * n / grains:.1f}%)") if grains else (lambda n: f"{n:,}")
    rows = [
        _row("samples", f"{s['samples']:,} in {len(s['cores'])} core(s): {', '.join(s['cores'])}"),
        _row("status", ", ".join(f"{k}: {v}" for k, v in s["statuses"].items())),
        _row("stage positions", f"{s['positions']:,}"),
        _row("frames", f"{s['frames']:,}"),
        _row("grains", f"{grains:,}"),
        _row("flagged grains", f"{pct(s['flagged'])}: chopped {s['chopped']:,}, clumps {s['clumps']:,}"),
        _row("clustered grains", f"{s['clustered_grains']:,} in {s['clusters']} clusters"),
        _row("expert decisions", f"{s['named_clusters']} named, {s['merged_clusters']} merged, "
                                 f"{s['excluded_clusters']} excluded"),
        _row("classes", ", ".join(s["classes"]) or "none"),
    ]
    counting = s.get("counting") or {}
    if counting.get("plate") or counting.get("per_frame"):
        rows.append(_row("counting", f"{counting.get('plate', 0)} sample(s) on the plate (each grain once, "
                                     f"corrected for frame edges); {len(counting.get('per_frame', []))} per frame"
                                     + "".join(f"; {name}: {note}" for name, note in counting.get("per_frame", []))))
    settings = []
    for stage, variants in s["stage_settings"].items():
        for text, n in variants.items():
            settings.append(f"<tr><th>{escape(stage)}</th><td>{n} sample(s)</td>"
                            f"<td><code>{escape(_pretty(text))}</code></td></tr>")
    timings = [_row(name, f"{seconds:.1f} s") for name, seconds in s["stage_timings_s"].items()]
    timings += [_row(f"report: {name}", f"{seconds:.2f} s") for name, seconds in s["report_timings_s"].items()]
    models = f"<pre>{escape(json.dumps(s['models'], indent=1))}</pre>" if s["models"] else "<p>no models/current.json</p>"
    return (
        '<section id=summary><h2>Run summary</h2><div class=cols>'
        f'<table class=facts>{"".join(rows)}</table>'
        '<div><h3>Timings</h3>'
        + (f'<table class=facts>{"".join(timings)}</table>' if timings else "<p>none recorded</p>")
        + "</div></div>"
        '<details><summary>Settings of every stage</summary>'
        + (f'<table class=settings>{"".join(settings)}</table>' if settings else "<p>none recorded</p>")
        + f"<h3>Models in use</h3>{models}"
        + f"<h3>Report settings</h3><code>{escape(json.dumps(s['report_settings']))}</code></details></section>"
    )


def _pretty(text: str) -> str:
    return ", ".join(f"{k}={v}" for k, v in json.loads(text).items())


def _maps(maps: list[dict[str, str]]) -> str:
    if not maps:
        return ('<section id=map><h2>Map</h2><p class=empty>No map yet: the grains have no latents '
                "(run <code>sedarchive encode</code> and <code>cluster</code>).</p></section>")
    figs = "".join(f'<figure class=map><img src="{escape(m["png"])}" alt="{escape(m["title"])}">'
                   f"<figcaption>{escape(m['title'])}</figcaption></figure>" for m in maps)
    return f"<section id=map><h2>Map</h2><div class=maps>{figs}</div></section>"


def _downcore(items: list[dict[str, Any]]) -> str:
    if not items:
        return '<section id=downcore><h2>Down-core</h2><p class=empty>No counts yet.</p></section>'
    figs = "".join(f'<figure class=downcore><img src="{escape(d["png"])}" alt="down-core series of core {escape(d["core"])}">'
                   f"<figcaption>core {escape(d['core'])}: {escape(', '.join(d['series']))} "
                   "(points: estimate; bars and band: 95% interval)</figcaption></figure>" for d in items)
    return f"<section id=downcore><h2>Down-core</h2>{figs}</section>"


def _decision_text(view) -> tuple[str, str]:
    d = view.decision
    if d["excluded"]:
        text = f"excluded ({d.get('reason') or 'no reason'})"
    elif d["class"]:
        text = d["class"]
    else:
        text = "not named"
    if d["merged"]:
        text = f"merged into {d['root']}: {text}"
    return text, ("excluded" if d["excluded"] else d["class"] or "")


def size_svg(histogram: dict[str, Any], cluster: int) -> str:
    """A small inline SVG histogram of grain sizes (bins shared by every cluster)."""
    counts = histogram["counts"]
    lo, hi = histogram["edges"]
    width, height, base = 200, 70, 56
    peak = max(counts) or 1
    bar = width / len(counts)
    rects = "".join(
        f'<rect x="{i * bar:.1f}" y="{base - base * c / peak:.1f}" width="{bar - 1:.1f}" height="{base * c / peak:.1f}"/>'
        for i, c in enumerate(counts) if c)
    unit = escape(histogram["unit"])
    return (f'<svg class=hist viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" '
            f'aria-label="grain sizes of cluster {cluster}"><g fill="#6a8caf">{rects}</g>'
            f'<line x1="0" x2="{width}" y1="{base}" y2="{base}" stroke="#888"/>'
            f'<text x="0" y="{height - 2}">{lo:.0f}</text><text x="{width}" y="{height - 2}" text-anchor="end">'
            f"{hi:.0f} {unit}</text><text x=\"{width / 2}\" y=\"{height - 2}\" text-anchor=\"middle\">size</text></svg>")


def _clusters(views: list, labels: Labels) -> str:
    if not views:
        return '<section id=clusters><h2>Clusters</h2><p class=empty>No clusters yet (run <code>sedarchive cluster</code>).</p></section>'
    total = sum(v.size for v in views) or 1
    colours = class_colours(labels.classes)
    index = "".join(f'<a href="#cluster-{v.cluster}" style="border-color:{cluster_colour(v.cluster)}">{v.cluster}</a>'
                    for v in views)
    parts = [f"<section id=clusters><h2>Clusters</h2><p class=index>{index}</p>"]
    for v in views:
        text, cls = _decision_text(v)
        badge = colours.get(cls, "#555" if cls == "excluded" else "#bbb")
        stats = ""
        if v.size_stats:
            stats = (f"size median {v.size_stats['median']:.0f}, 10–90%: {v.size_stats['p10']:.0f}–"
                     f"{v.size_stats['p90']:.0f}")
        grains = "".join(
            f'<figure class=grain><img src="{escape(g["thumb"])}" data-layers="{escape(g["layers"])}" '
            f'alt="grain {g["particle"]} of {escape(g["sample"])}" loading=lazy '
            f'data-caption="{escape(g["sample"])} · grain {g["particle"]} · sharpest layer {g["layer"]} · '
            f'{g["size_um"]:.0f}{" · chopped" if g["chopped"] else ""}{" · clump" if g["clump"] else ""}">'
            "</figure>" for g in v.examples)
        hist = size_svg(v.histogram, v.cluster) if v.histogram else ""
        parts.append(
            f'<section class=cluster id="cluster-{v.cluster}" data-cluster="{v.cluster}">'
            f'<header><h3><span class=swatch style="background:{cluster_colour(v.cluster)}"></span>'
            f'cluster {v.cluster}</h3><span class=badge style="background:{badge}">{escape(text)}</span>'
            f"<span class=count>{v.size:,} grains ({100 * v.size / total:.1f}%)</span>"
            f"<span class=stats>{escape(stats)}</span></header>"
            f'<div class=body><div class=gallery>{grains}</div>{hist}</div></section>'
        )
    parts.append("</section>")
    return "".join(parts)
