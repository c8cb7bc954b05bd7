"""``ARCHIVE/catalog.yaml``: a native intake 2 catalog kept in step with the sample stores.

The stores are the truth and the YAML is an index: every change is a read-modify-write of the
whole file under an exclusive lock (``fcntl.flock`` on a lock file beside it), written to a
temporary file and renamed into place, so concurrent registrations from several processes all
land and a reader never sees half a file.
"""
from __future__ import annotations

import contextlib
import fcntl
import os
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml
from intake.readers.datatypes import Zarr
from intake.readers.entry import Catalog
from intake.readers.readers import XArrayDatasetReader

from catalog.errors import ArchiveError

CATALOG_FILE = "catalog.yaml"
LOCK_FILE = ".catalog.lock"


@contextlib.contextmanager
def locked_file(path: Path) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``path`` (created if missing) for the duration of the block."""
    with open(path, "a+") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


@contextlib.contextmanager
def locked(root: Path) -> Iterator[None]:
    """Hold the archive's catalog lock (blocking) for the duration of the block."""
    root.mkdir(parents=True, exist_ok=True)
    with locked_file(root / LOCK_FILE):
        yield


def load(root: Path) -> Catalog:
    """The catalog as an intake object (empty when the file does not exist yet)."""
    path = root / CATALOG_FILE
    if not path.exists():
        return empty()
    try:
        with open(path) as fh:
            data = yaml.safe_load(fh) or {}
        return Catalog.from_dict(data)
    except Exception as err:  # yaml or intake structure, bad bytes
        first = (str(err).splitlines() or [""])[0][:160]
        raise ArchiveError(f"{path} is damaged ({err.__class__.__name__}: {first}); rebuild it from the "
                           f"sample stores with `sedarchive catalog ARCHIVE --rebuild`") from None


def empty() -> Catalog:
    """A catalog without entries (what ``--rebuild`` starts from: it never reads the old file)."""
    return Catalog(metadata={"description": "sedarchive sample archive"})


def save(root: Path, cat: Catalog) -> None:
    """Write atomically: a temporary file in the same folder, then ``os.replace``."""
    data = cat.to_dict()
    fd, tmp = tempfile.mkstemp(dir=root, prefix=".catalog-", suffix=".yaml.tmp")
    try:
        with os.fdopen(fd, "w") as fh:
            yaml.safe_dump(data, fh, sort_keys=True)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, root / CATALOG_FILE)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def make_entry(relative_store: str, metadata: Mapping[str, Any]) -> XArrayDatasetReader:
    """A reader that opens the store lazily (dask-backed) relative to the catalog file."""
    data = Zarr(url="{CATALOG_DIR}/" + relative_store)
    return XArrayDatasetReader(data, chunks={}, consolidated=False, metadata=dict(metadata))


def put(cat: Catalog, name: str, relative_store: str, metadata: Mapping[str, Any]) -> None:
    remove(cat, name)
    cat[name] = make_entry(relative_store, metadata)
    cat.aliases[name] = name  # so that list(cat) and len(cat) see the samples too


def remove(cat: Catalog, name: str) -> None:
    entry = cat.entries.pop(name, None)
    cat.aliases.pop(name, None)
    if entry is None:
        return
    # drop the data description the entry pointed at, unless another entry uses it
    refs = {tok for tok in cat.data if f"{{data({tok})}}" in repr(entry.kwargs)}
    still_used = {tok for e in cat.entries.values() for tok in refs if f"{{data({tok})}}" in repr(e.kwargs)}
    for tok in refs - still_used:
        cat.data.pop(tok, None)


#: archive-wide result stores that get a catalog entry of their own (entry name -> store folder)
RESULT_STORES = {"proportions": "proportions.zarr", "umap": "umap.zarr", "classified": "classified.zarr"}
RESULT_KIND = "archive_result"


def entry_metadata(cat: Catalog) -> dict[str, dict[str, Any]]:
    """Sample name -> entry metadata (core, depth, status, counts); result entries left out."""
    return {name: dict(entry.metadata) for name, entry in cat.entries.items()
            if entry.metadata.get("kind") != RESULT_KIND}


def put_result(cat: Catalog, name: str) -> None:
    """An entry for an archive-wide result store (``proportions``, ``umap``), opened with consolidated metadata."""
    remove(cat, name)
    data = Zarr(url="{CATALOG_DIR}/" + RESULT_STORES[name])
    cat[name] = XArrayDatasetReader(data, chunks={}, consolidated=True,
                                    metadata={"kind": RESULT_KIND, "store": RESULT_STORES[name]})
    cat.aliases[name] = name


def register_results(root: Path) -> list[str]:
    """Add catalog entries for the result stores that exist in the archive (drop those that do not)."""
    with locked(root):
        cat = load(root)
        present = []
        for name, folder in RESULT_STORES.items():
            if (root / folder).exists():
                put_result(cat, name)
                present.append(name)
            elif name in cat.entries:
                remove(cat, name)
        save(root, cat)
    return present
