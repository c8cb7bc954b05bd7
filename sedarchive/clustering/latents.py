"""Reading latents out of the sample stores in bounded pieces, and writing ``cluster`` back.

:class:`LatentSource` streams the latents of many stores in shuffled batches (memory stays at a few
blocks however large the archive) and draws uniform random samples. :func:`assign_sample` is the
Dask task that labels one sample's grains.
"""
from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from catalog import read_array, write_region
from catalog.store import array_chunks, array_names, array_shape, read_flags
from sedarchive.clustering.features import FeatureRecipe
from sedarchive.clustering.model import ClusteringError, load_model_dir


@dataclass
class _Store:
    path: Path
    n: int
    eligible: np.ndarray  # bool per grain: used for fitting

    @property
    def n_eligible(self) -> int:
        return int(self.eligible.sum())


def n_grains(path: str | Path) -> int:
    """Grains of a store with a latent (0 when the store has no ``latent``)."""
    if "latent" not in array_names(path):
        return 0
    return int(_shape(path, "latent")[0])


def _shape(path: str | Path, name: str) -> tuple[int, ...]:
    return array_shape(path, name)


def _chunk_rows(path: str | Path, name: str) -> int:
    return array_chunks(path, name)[0]


def flagged(path: str | Path, n: int) -> tuple[np.ndarray, np.ndarray]:
    """``chopped`` and ``clump`` of a store's ``n`` grains (:func:`catalog.store.read_flags`: missing flags are an error)."""
    if not n:
        return np.zeros(0, bool), np.zeros(0, bool)
    return read_flags(path, n)


class LatentSource:
    """The latents of several stores, read in blocks.

    Grains flagged ``chopped`` or ``clump`` are left out unless ``include_flagged``; rows whose
    latent is not finite (not encoded) are always left out. With a ``recipe`` the rows are its
    raw features (latent + morphometrics) and, with ``transform``, the features it makes of them
    (:mod:`.features`); ``recipe`` may be set after reading a first sample to fit it.
    """

    def __init__(self, paths: Sequence[str | Path], *, include_flagged: bool = False, block_rows: int = 4096,
                 recipe: FeatureRecipe | None = None, transform: bool = True):
        self.recipe, self.transform = recipe, transform
        self.stores: list[_Store] = []
        n_features = None
        for path in paths:
            path = Path(path)
            n = n_grains(path)
            if n == 0:
                continue
            d = _shape(path, "latent")[1]
            if n_features is not None and d != n_features:
                raise ClusteringError(f"{path.name}: latents have {d} features, other samples {n_features}")
            n_features = d
            chopped, clump = flagged(path, n)
            eligible = np.ones(n, bool) if include_flagged else ~(chopped | clump)
            self.stores.append(_Store(path, n, eligible))
        self.latent_dim = self.n_features = int(n_features or 0)
        chunk = min((_chunk_rows(s.path, "latent") for s in self.stores), default=block_rows)
        self.block_rows = max(chunk, (block_rows // chunk) * chunk)

    @property
    def n_grains(self) -> int:
        """Grains eligible for fitting (finite or not: non-finite rows are dropped on reading)."""
        return sum(s.n_eligible for s in self.stores)

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """Up to ``n`` eligible grains drawn uniformly without replacement over all stores."""
        total = self.n_grains
        n = min(n, total)
        picks = np.sort(rng.choice(total, size=n, replace=False)) if n < total else np.arange(total)
        parts = []
        offset = 0
        for store in self.stores:
            mine = picks[(picks >= offset) & (picks < offset + store.n_eligible)] - offset
            offset += store.n_eligible
            if len(mine):
                rows = np.flatnonzero(store.eligible)[mine]
                parts.append(self._read(store.path, rows))
        if not parts:
            return np.empty((0, self.n_features), np.float32)
        return self._finish(np.concatenate(parts))

    def _read(self, path: Path, rows) -> np.ndarray:
        if self.recipe is None:
            sel = rows if isinstance(rows, slice) else (rows, slice(None))
            return read_array(path, "latent", sel).astype(np.float32, copy=False)
        return self.recipe.read(path, rows)

    def _finish(self, rows: np.ndarray) -> np.ndarray:
        """Rows with a finite latent, as features (the recipe applied when there is one)."""
        rows = rows[np.isfinite(rows[:, :self.latent_dim]).all(axis=1)]
        if self.recipe is not None and self.transform:
            rows = self.recipe.apply(rows)
        return rows

    def batches(self, batch_size: int, rng: np.random.Generator, buffer_rows: int = 32768) -> Iterator[np.ndarray]:
        """One pass over every eligible grain in random order: blocks from random stores, shuffled together."""
        blocks = [(i, start) for i, s in enumerate(self.stores) for start in range(0, s.n, self.block_rows)]
        order = rng.permutation(len(blocks))
        buffer_rows = max(buffer_rows, batch_size)
        pending: list[np.ndarray] = []
        held = 0
        for b in order:
            i, start = blocks[b]
            store = self.stores[i]
            stop = min(start + self.block_rows, store.n)
            keep = store.eligible[start:stop]
            if not keep.any():
                continue
            rows = self._finish(self._read(store.path, slice(start, stop))[keep])
            pending.append(rows)
            held += len(rows)
            if held >= buffer_rows:
                mixed = np.concatenate(pending) if len(pending) > 1 else pending[0]
                order = rng.permutation(len(mixed))
                cut = (len(mixed) // batch_size) * batch_size
                yield from (mixed[order[j : j + batch_size]] for j in range(0, cut, batch_size))
                pending, held = [mixed[order[cut:]]], len(mixed) - cut
                del mixed
        if held:
            mixed = np.concatenate(pending) if len(pending) > 1 else pending[0]
            order = rng.permutation(len(mixed))
            yield from (mixed[order[j : j + batch_size]] for j in range(0, len(mixed), batch_size))

    def latents_where(self, predicate_name: str, value: int, limit: int, rng: np.random.Generator) -> np.ndarray:
        """Latents of the grains whose array ``predicate_name`` equals ``value`` (at most ``limit``, random)."""
        parts = []
        for store in self.stores:
            if predicate_name not in array_names(store.path):
                continue
            rows = np.flatnonzero((read_array(store.path, predicate_name) == value) & store.eligible)
            if len(rows):
                parts.append((store.path, rows))
        total = sum(len(r) for _, r in parts)
        keep = np.sort(rng.choice(total, size=limit, replace=False)) if total > limit else None
        out, offset = [], 0
        for path, rows in parts:
            if keep is not None:
                mine = keep[(keep >= offset) & (keep < offset + len(rows))] - offset
                offset += len(rows)
                rows = rows[mine]
            if len(rows):
                out.append(self._read(path, rows))
        if not out:
            return np.empty((0, self.recipe.n_features if self.recipe else self.n_features), np.float32)
        return self._finish(np.concatenate(out))


def assign_sample(path: str, model_folder: str, block_rows: int = 65536, target: str = "cluster") -> int:
    """Dask task: label every grain of one store with the model in ``model_folder``; returns the count.

    The client has created ``target`` (``cluster (particle)`` int32, fill -1, or its staged copy
    ``cluster.next``); this task writes all of it. The grains' features are made with the model's
    own recipe (latent alone, or latent and morphometrics: :mod:`.features`).
    """
    model = load_model_dir(model_folder)
    n = n_grains(path)
    recipe = model.recipe(_shape(path, "latent")[1] if n else model.n_features)
    chunk = _chunk_rows(path, target) if n else 1
    step = max(chunk, (block_rows // chunk) * chunk)
    assigned = 0
    for start in range(0, n, step):
        features = recipe.apply(recipe.read(path, slice(start, min(start + step, n))))  # the fit's recipe
        labels = model.assign(features)
        write_region(path, target, start, labels)
        assigned += int((labels >= 0).sum())
    return assigned
