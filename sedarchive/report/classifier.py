"""The report's classifier section: precision and recall, confusion matrix and reliability curve measured on
grains the predicting model did not see (out of fold; a held-out part in models saved before).

Read as data from ``models/current.json`` (key ``classifier``) and the model's ``model.json``, written
by ``sedarchive classify-train``; the report does not load the classifier itself.
"""
from __future__ import annotations

import json
from html import escape
from typing import Any

from catalog import Archive
from catalog.models import read_current


def saved_metrics(archive: Archive) -> dict[str, Any] | None:
    """The current classifier's ``model.json`` (None without one, or when it cannot be read)."""
    name = read_current(archive).get("classifier")
    if not name:
        return None
    try:
        return json.loads((archive.models_dir / name / "model.json").read_text())
    except (OSError, ValueError):
        return None


def reliability_svg(curve: dict[str, Any], size: int = 220) -> str:
    """Confidence against accuracy per bin as a small inline SVG (the diagonal is perfect calibration)."""
    pad = 24
    span = size - 2 * pad

    def xy(c: float, a: float) -> str:
        return f"{pad + c * span:.1f},{size - pad - a * span:.1f}"

    points = [xy(c, a) for c, a in zip(curve["confidence"], curve["accuracy"]) if c is not None and a is not None]
    dots = "".join(f'<circle cx="{p.split(",")[0]}" cy="{p.split(",")[1]}" r="3"/>' for p in points)
    return (f'<svg class=reliability width="{size}" height="{size}" viewBox="0 0 {size} {size}" role="img" '
            f'aria-label="reliability curve"><rect x="{pad}" y="{pad}" width="{span}" height="{span}" fill="none" '
            f'stroke="#999"/><line x1="{pad}" y1="{size - pad}" x2="{size - pad}" y2="{pad}" stroke="#bbb" '
            f'stroke-dasharray="4 3"/><polyline fill="none" stroke="#1f77b4" points="{" ".join(points)}"/>'
            f'<g fill="#1f77b4">{dots}</g><text x="{size / 2}" y="{size - 4}" text-anchor="middle" font-size="11">'
            f'confidence</text><text x="10" y="{size / 2}" font-size="11" transform="rotate(-90 10 {size / 2})" '
            f'text-anchor="middle">accuracy</text></svg>')


def classifier_section(archive: Archive) -> str:
    """``<section id=classifier>``: empty note before ``classify-train``."""
    meta = saved_metrics(archive)
    if meta is None:
        return ('<section id=classifier><h2>Classifier</h2><p class=empty>No classifier yet '
                '(name clusters, then run <code>sedarchive classify-train</code>).</p></section>')
    held = meta.get("held_out") or {}
    classes = list(meta.get("classes", []))
    rows = "".join(
        f"<tr><td>{escape(c)}{'' if counted else ' (not counted)'}</td>"
        f"<td>{_num(held.get('precision', {}).get(c))}</td><td>{_num(held.get('recall', {}).get(c))}</td>"
        f"<td>{meta.get('class_counts', {}).get(c, '')}</td></tr>"
        for c, counted in zip(classes, meta.get("counted", [True] * len(classes))))
    confusion = held.get("confusion") or []
    head = "".join(f"<th>{escape(c)}</th>" for c in classes)
    matrix = "".join(f"<tr><th>{escape(c)}</th>" + "".join(f"<td>{v}</td>" for v in row) + "</tr>"
                     for c, row in zip(classes, confusion))
    curve = held.get("reliability")
    figure = reliability_svg(curve) + f"<p>expected calibration error {curve['ece']:.3f}</p>" if curve else ""
    accuracy = held.get("accuracy")
    return (
        "<section id=classifier><h2>Classifier</h2>"
        f"<p>model <code>{escape(str(meta.get('id')))}</code> on encoder <code>{escape(str(meta.get('encoder_id')))}"
        f"</code>: {meta.get('n_train', '?')} training grains ({meta.get('n_corrections', 0)} corrected by hand), "
        f"{held.get('n_held_out', 0)} predicted by a model that did not see them (out of fold), accuracy {_num(accuracy)}.</p><div class=cols>"
        f"<table><tr><th>class</th><th>precision</th><th>recall</th><th>grains</th></tr>{rows}</table>"
        f"<table><caption>out-of-fold confusion (rows: expert's class, columns: predicted)</caption>"
        f"<tr><th></th>{head}</tr>{matrix}</table><div>{figure}</div></div></section>"
    )


def _num(value: Any) -> str:
    return "–" if value is None else f"{value:.3f}"
