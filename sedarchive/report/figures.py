"""The report's plots as PNG files (matplotlib, Agg): the map, grain sizes, down-core series."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

CLASS_COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
                 "#17becf", "#bcbd22", "#7f7f7f")
UNNAMED, EXCLUDED = "#d0d0d0", "#555555"


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def cluster_colour(cluster: int) -> str:
    """A stable colour per cluster id (tab20, repeating; ids are also written on the map)."""
    import matplotlib

    return matplotlib.colors.to_hex(matplotlib.colormaps["tab20"](int(cluster) % 20))


def class_colours(classes: Sequence[str]) -> dict[str, str]:
    return {name: CLASS_COLOURS[i % len(CLASS_COLOURS)] for i, name in enumerate(classes)}


def map_by_cluster(xy: np.ndarray, cluster: np.ndarray, out: Path, *, title: str) -> Path:
    """Scatter of the 2-D map, one colour per cluster, the id written at each cluster's median."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 7), dpi=110)
    colours = [cluster_colour(c) for c in cluster]
    size = max(1.0, min(12.0, 4000.0 / max(len(xy), 1)))
    ax.scatter(xy[:, 0], xy[:, 1], c=colours, s=size, linewidths=0, alpha=0.8, rasterized=True)
    for cid in np.unique(cluster):
        centre = np.median(xy[cluster == cid], axis=0)
        ax.annotate(str(int(cid)), centre, fontsize=8, ha="center", va="center", weight="bold",
                    bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none", "alpha": 0.7})
    _finish_map(ax, title)
    return _save(fig, out)


def map_by_class(xy: np.ndarray, cls: Sequence[str | None], classes: Sequence[str], out: Path, *,
                 title: str) -> Path:
    """Scatter of the map coloured by named class (grey: not named yet; dark: excluded)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 7), dpi=110)
    colours = class_colours(classes)
    cls = np.asarray([c if c is not None else "" for c in cls], dtype=object)
    size = max(1.0, min(12.0, 4000.0 / max(len(xy), 1)))
    groups = [("", "not named", UNNAMED), ("excluded", "excluded", EXCLUDED)]
    groups += [(name, name, colours[name]) for name in classes]
    for value, label, colour in groups:
        sel = cls == value
        if sel.any():
            ax.scatter(xy[sel, 0], xy[sel, 1], c=colour, s=size, linewidths=0, alpha=0.85,
                       label=f"{label} ({int(sel.sum())})", rasterized=True)
    ax.legend(loc="best", fontsize=8, markerscale=3, frameon=True)
    _finish_map(ax, title)
    return _save(fig, out)


def _finish_map(ax, title: str) -> None:
    ax.set_title(title)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_aspect("equal", adjustable="datalim")


def downcore(core: str, depth: np.ndarray, series: Mapping[str, tuple[np.ndarray, np.ndarray | None, np.ndarray | None]],
             out: Path, *, xlabel: str) -> Path:
    """One panel per series: value against depth (depth increasing downwards), with intervals.

    ``series`` maps a name to ``(value, lower, upper)`` along samples (bounds may be None).
    """
    plt = _pyplot()
    names = list(series)
    ncols = max(1, min(len(names), 5))
    nrows = int(np.ceil(len(names) / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(2.4 * ncols + 0.6, 3.6 * nrows), dpi=100,
                             sharey=True, squeeze=False)
    order = np.argsort(depth)
    for ax, name in zip(axes.ravel(), names):
        value, low, high = series[name]
        v = np.asarray(value, float)[order]
        d = np.asarray(depth, float)[order]
        if low is not None and high is not None:
            lo, hi = np.asarray(low, float)[order], np.asarray(high, float)[order]
            ax.fill_betweenx(d, lo, hi, color="#6a8caf", alpha=0.25, linewidth=0)
            ax.errorbar(v, d, xerr=[np.clip(v - lo, 0, None), np.clip(hi - v, 0, None)], fmt="o-",
                        ms=4, color="#23466e", ecolor="#6a8caf", capsize=2, lw=1)
        else:
            ax.plot(v, d, "o-", ms=4, color="#23466e", lw=1)
        ax.set_title(name, fontsize=9)
        ax.set_xlabel(xlabel, fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    for ax in axes.ravel()[len(names):]:
        ax.set_visible(False)
    axes[0, 0].invert_yaxis()
    for row in axes:
        row[0].set_ylabel("depth (cm)", fontsize=8)
    fig.suptitle(f"core {core}", fontsize=11)
    # fixed margins: tight_layout took most of this figure's time
    fig.subplots_adjust(left=0.6 / fig.get_figwidth() * 1.6, right=0.98, bottom=0.55 / fig.get_figheight(),
                        top=1 - 0.55 / fig.get_figheight(), wspace=0.25, hspace=0.45)
    return _save(fig, out, tight=False)


def _save(fig, out: Path, tight: bool = True) -> Path:
    plt = _pyplot()
    out = Path(out)
    if tight:
        fig.tight_layout()
    fig.savefig(out, format="png")
    plt.close(fig)
    return out
