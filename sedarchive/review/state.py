"""What the review page shows and changes: clusters, their grains, decisions and proportions.

The server (:mod:`sedarchive.review.server`) turns requests into calls here; every check of what a
request may ask lives here too, so it is tested without HTTP.
"""
from __future__ import annotations

import threading
from typing import Any

import numpy as np

from catalog import Archive, SampleKey, read_array, read_attrs
from catalog.errors import ArchiveError, SedarchiveError
from catalog.store import array_names
from sedarchive.clustering.model import current_model
from sedarchive.counting import decisions
from sedarchive.counting.labels import current_labels, resolve_cluster
from sedarchive.counting.results import read_proportions
from sedarchive.gallery import thumbnails
from sedarchive.gallery.grains import grain_table, read_grain_images
from sedarchive.review import order as grain_order

MAX_PAGE = 200
SIDES = (64, 96, 128, 160, 200, 280)
TYPICAL, DOUBTFUL = 30, 30  # the first page: the most typical grains, then the most doubtful
MAX_SIMILAR = 100
ROLES = ("typical", "doubtful", "")


class NotFound(ArchiveError):
    """A cluster, sample or grain that the archive does not hold."""


class ReviewState:
    """The archive as the review page sees it; decisions go through :func:`sedarchive.counting.decisions.apply_decision`."""

    def __init__(self, archive: Archive, user: str):
        self.archive = archive
        self.user = user
        self._lock = threading.Lock()
        self.reload()

    def reload(self) -> None:
        """Re-read the grains (after a split changed the clusters)."""
        table = grain_table(self.archive)
        with self._lock:
            self.table = table
            self.samples = table["sample"].value_counts().to_dict() if len(table) else {}
            clusters = table["cluster"].to_numpy() if len(table) else np.zeros(0, int)
            ids, counts = np.unique(clusters[clusters >= 0], return_counts=True)
            self.sizes = dict(zip(ids.tolist(), counts.tolist()))
            self.by_cluster = {c: np.flatnonzero(clusters == c) for c in self.sizes}
            self.pixel_um = {s: _pixel_size(self.archive, s) for s in self.samples}
            self._orders: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    # -- reading --------------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        """Classes, every cluster with its decision, and the class proportions of the archive."""
        labels = current_labels(self.archive, warn=False)  # stale names: none shown, and the page says why
        clusters = []
        for cid, size in sorted(self.sizes.items()):
            where = resolve_cluster(labels, cid)
            entry = labels.clusters.get(cid, {})
            clusters.append({"id": cid, "size": size, "class": where["class"], "excluded": where["excluded"],
                             "reason": where["reason"], "root": where["root"],
                             "by": entry.get("by"), "at": entry.get("at")})
        return {"archive": self.archive.root.name, "user": self.user, "classes": list(labels.classes),
                "reasons": list(decisions.EXCLUDE_REASONS), "clusters": clusters,
                "grains": int(len(self.table)), "proportions": self.proportions(),
                "stale_labels": labels.stale_note}

    def proportions(self) -> dict[str, Any]:
        """Grains per class over the whole archive, from ``proportions.zarr``."""
        ds = read_proportions(self.archive)
        if ds is None or "class_count" not in ds:
            return {"classes": {}, "total": 0}
        counts = ds["class_count"].sum("sample").values
        names = [str(c) for c in ds["grain_class"].values]
        return {"classes": {str(n): int(c) for n, c in zip(names, counts)}, "total": int(counts.sum())}

    def cluster_grains(self, cluster: int, offset: int = 0, limit: int = 60) -> dict[str, Any]:
        """A page of a cluster's grains, typical first, then doubtful (see :mod:`sedarchive.review.order`).

        Each grain: sample, particle, sharpest layer, size, flags, ``role`` and its box in µm
        (``box_um``: height, width; in pixels when the sample has no pixel size), so the page can
        draw every grain at the same scale.
        """
        if cluster not in self.sizes:
            raise NotFound(f"cluster {cluster} is not in this archive")
        if not (0 <= offset and 1 <= limit <= MAX_PAGE):
            raise ArchiveError(f"offset {offset} and limit {limit}: need offset >= 0 and 1 <= limit <= {MAX_PAGE}")
        rows, roles = self._order(cluster)
        picked = rows[offset:offset + limit]
        grains = [dict(self._grain(r), role=ROLES[int(role)]) for r, role in zip(picked, roles[offset:offset + limit])]
        return {"cluster": cluster, "size": int(len(rows)), "offset": offset, "grains": grains,
                "largest_box_um": self._largest_box(rows)}

    def _grain(self, row: int) -> dict[str, Any]:
        r = self.table.iloc[int(row)]
        px = self.pixel_um.get(r["sample"]) or 1.0
        box = [None, None]
        if "bbox_y0" in self.table.columns:
            box = [round(float(r["bbox_y1"] - r["bbox_y0"]) * px, 1), round(float(r["bbox_x1"] - r["bbox_x0"]) * px, 1)]
        size = r["size_um"]
        return {"sample": r["sample"], "particle": int(r["particle"]), "layer": int(r["sharpest_layer"]),
                "cluster": int(r["cluster"]), "size": None if not np.isfinite(size) else round(float(size), 1),
                "unit": r["size_unit"], "chopped": bool(r["chopped"]), "clump": bool(r["clump"]),
                "box_um": box, "box_unit": "µm" if self.pixel_um.get(r["sample"]) else "px"}

    def _largest_box(self, rows: np.ndarray) -> float | None:
        if "bbox_y0" not in self.table.columns or not len(rows):
            return None
        t = self.table.iloc[rows]
        px = t["sample"].map(lambda s: self.pixel_um.get(s) or 1.0).to_numpy(float)
        side = np.maximum(t["bbox_y1"] - t["bbox_y0"], t["bbox_x1"] - t["bbox_x0"]).to_numpy(float) * px
        return round(float(np.percentile(side, 95)), 1)

    def _latents(self, rows: np.ndarray, model=None) -> np.ndarray:
        """The latents of table rows ``rows`` (NaN rows where a sample has none), read a sample at a time.

        With a K-means ``model``: the features it clusters (its recipe may add morphometrics).
        """
        rows = np.asarray(rows, np.int64)
        out: np.ndarray | None = None
        sub = self.table.iloc[rows]
        for sample, where in sub.groupby("sample").indices.items():
            path = self.archive.sample_path(SampleKey.from_name(sample))
            if "latent" not in array_names(path):
                continue
            values = read_array(path, "latent")
            if model is not None and values.shape[1] == model.latent_dim:
                recipe = model.recipe(model.latent_dim)
                if recipe.uses_morphometrics:
                    try:
                        values = recipe.apply(recipe.read(path, slice(None)))
                    except SedarchiveError:  # a sample without the measures: shown in the default order
                        pass
            if out is None:
                out = np.full((len(rows), values.shape[1]), np.nan, np.float32)
            out[where] = values[sub["particle"].to_numpy()[where]]
        return out if out is not None else np.full((len(rows), 1), np.nan, np.float32)

    def _order(self, cluster: int) -> tuple[np.ndarray, np.ndarray]:
        """The cluster's table rows in display order and their roles (cached until the grains change)."""
        with self._lock:
            cached = self._orders.get(cluster)
            rows = self.by_cluster[cluster]
        if cached is not None:
            return cached
        model = current_model(self.archive)
        latents = self._latents(rows, model)
        samples = self.table["sample"].to_numpy()[rows]
        if model is None or latents.shape[1] != model.n_features or not 0 <= cluster < model.n_centres:
            result = rows, np.full(len(rows), 2, np.int64)
        else:
            active = ~np.asarray(model.retired, bool)
            d_own, d_other = grain_order.centre_distances(latents, model.centres, np.full(len(rows), cluster), active)
            n_typical = min(TYPICAL, (len(rows) + 1) // 2)  # a small cluster shows both halves on one page
            order, roles = grain_order.typical_first(d_own, d_other, samples, n_typical, DOUBTFUL)
            result = rows[order], roles
        with self._lock:
            self._orders[cluster] = result
        return result

    def similar(self, sample: str, particle: int, k: int = 24) -> dict[str, Any]:
        """The ``k`` grains of the archive whose latents are nearest to this grain's (itself left out)."""
        if sample not in self.samples:
            raise NotFound(f"sample {sample!r} is not in this archive")
        if not 1 <= k <= MAX_SIMILAR:
            raise ArchiveError(f"k={k}: ask for 1 to {MAX_SIMILAR} grains")
        table = self.table
        match = np.flatnonzero((table["sample"].to_numpy() == sample) & (table["particle"].to_numpy() == particle))
        if not len(match):
            raise NotFound(f"grain {particle} is not in sample {sample}")
        query = self._latents(match)[0]
        if not np.isfinite(query).all():
            raise ArchiveError(f"grain {particle} of {sample} has no latent yet; run `sedarchive encode`")
        everyone = np.arange(len(table))
        idx, dist = grain_order.nearest_grains(query, self._latents(everyone), k + 1)
        keep = [(i, d) for i, d in zip(idx, dist) if i != match[0]][:k]
        return {"sample": sample, "particle": int(particle),
                "grains": [dict(self._grain(i), distance=round(float(d), 4)) for i, d in keep]}

    def grain_image(self, sample: str, particle: int, layer: int | None, side: int) -> bytes:
        """JPEG of one focal layer of a grain (``layer=None``: all layers side by side)."""
        if sample not in self.samples:
            raise NotFound(f"sample {sample!r} is not in this archive")
        if side not in SIDES:
            raise ArchiveError(f"image side {side}: expected one of {SIDES}")
        n = int(self.samples[sample])
        if not 0 <= particle < n:
            raise NotFound(f"grain {particle} is not in sample {sample} (it has {n})")
        stack = read_grain_images(self.archive, sample, [particle])[0]
        if layer is None:
            return thumbnails.jpeg_bytes(thumbnails.layer_strip(stack, side))
        if not 0 <= layer < len(stack):
            raise NotFound(f"layer {layer} is not in 0..{len(stack) - 1}")
        return thumbnails.jpeg_bytes(thumbnails.resized(stack[layer], side))

    # -- deciding -------------------------------------------------------------------------------
    def decide(self, request: Any) -> dict[str, Any]:
        """Apply one decision sent by the page: ``{"action": ..., params}``; returns the new state."""
        action, params = check_decision(request)
        result = decisions.apply_decision(self.archive, action, params, user=self.user,
                                          known_clusters=set(self.sizes))
        if result.get("new_clusters") or action == "move":
            self.reload()
        state = self.state()
        state["new_clusters"] = result.get("new_clusters", [])
        return state


#: the fields each action takes, and their types (what the page sends, nothing else)
DECISION_FIELDS: dict[str, dict[str, tuple[type, ...]]] = {
    "name": {"cluster": (int,), "class": (str,)},
    "merge": {"clusters": (list,), "into": (int,)},
    "exclude": {"cluster": (int,), "reason": (str,)},
    "clear": {"cluster": (int,)},
    "add_class": {"class": (str,)},
    "split": {"cluster": (int,), "n": (int,)},
    "move": {"sample": (str,), "particle": (int,), "into": (int,)},
}


def check_decision(request: Any) -> tuple[str, dict[str, Any]]:
    """Refuse anything but a JSON object with a known action and exactly its fields, well typed."""
    if not isinstance(request, dict):
        raise ArchiveError("a decision must be a JSON object")
    action = request.get("action")
    if action not in DECISION_FIELDS:
        raise ArchiveError(f"unknown action {action!r}; expected one of {', '.join(DECISION_FIELDS)}")
    fields = DECISION_FIELDS[action]
    params = {k: v for k, v in request.items() if k != "action"}
    extra = set(params) - set(fields)
    if extra:
        raise ArchiveError(f"{action}: unexpected field(s) {', '.join(sorted(extra))}")
    for name, types in fields.items():
        if name == "n" and name not in params:
            continue
        if name not in params:
            raise ArchiveError(f"{action}: missing field {name!r}")
        value = params[name]
        if isinstance(value, bool) or not isinstance(value, types):
            raise ArchiveError(f"{action}: field {name!r} must be {types[0].__name__}, got {type(value).__name__}")
    if action == "merge" and (len(params["clusters"]) > 1000
                              or not all(isinstance(c, int) and not isinstance(c, bool) for c in params["clusters"])):
        raise ArchiveError("merge: 'clusters' must be a list of at most 1000 integer ids")
    return action, params


def _pixel_size(archive: Archive, sample: str) -> float | None:
    """µm per pixel of a sample's photos (None when the store does not say)."""
    try:
        value = read_attrs(archive.sample_path(SampleKey.from_name(sample))).get("pixel_size_um")
    except ArchiveError:
        return None
    return float(value) if value else None
