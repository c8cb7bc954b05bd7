"""The archive: a folder of sample stores, models and results, with its intake catalog."""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import xarray as xr

from catalog import intake_catalog, store
from catalog.errors import ArchiveError
from catalog.keys import SampleKey, parse_depth_range


@dataclass(frozen=True)
class SampleInfo:
    """One row of the catalog."""

    key: SampleKey
    path: Path
    status: str
    n_positions: int
    n_particles: int

    @property
    def name(self) -> str:
        return self.key.name


class Archive:
    """An archive on disk (see the layout in ``DESIGN.md``).

    Examples
    --------
    >>> import tempfile
    >>> archive = Archive.create(tempfile.mkdtemp())
    >>> archive.samples()
    []
    """

    def __init__(self, root: str | Path):
        self.root = Path(root).expanduser().resolve()

    def __repr__(self) -> str:
        return f"Archive({str(self.root)!r})"

    # -- layout ---------------------------------------------------------------------------------
    @property
    def catalog_path(self) -> Path:
        return self.root / intake_catalog.CATALOG_FILE

    @property
    def samples_dir(self) -> Path:
        return self.root / "samples"

    @property
    def models_dir(self) -> Path:
        return self.root / "models"

    @property
    def proportions_path(self) -> Path:
        return self.root / "proportions.zarr"

    @property
    def labels_path(self) -> Path:
        return self.root / "labels.yaml"

    @property
    def report_dir(self) -> Path:
        return self.root / "report"

    @property
    def umap_path(self) -> Path:
        """``umap.zarr``: the 2-D map of the latent space (written by the cluster stage)."""
        return self.root / "umap.zarr"

    @property
    def run_path(self) -> Path:
        """``run.json``: seconds per stage of the latest ``sedarchive run``."""
        return self.root / "run.json"

    @property
    def classified_path(self) -> Path:
        """``classified.zarr``: class fractions per sample from the grain classifier (``sedarchive classify``)."""
        return self.root / "classified.zarr"

    @property
    def corrections_path(self) -> Path:
        """``corrections.yaml``: the expert's classes for single grains (training data of the classifier)."""
        return self.root / "corrections.yaml"

    def sample_path(self, key: SampleKey) -> Path:
        return self.samples_dir / key.core / f"{key.name}.zarr"

    def _relative(self, key: SampleKey) -> str:
        return self.sample_path(key).relative_to(self.root).as_posix()

    # -- opening --------------------------------------------------------------------------------
    @classmethod
    def create(cls, root: str | Path) -> Archive:
        """Create the archive's folders and an empty catalog; an existing archive is just opened."""
        archive = cls(root)
        if archive.root.exists() and not archive.root.is_dir():
            raise ArchiveError(f"{archive.root} exists and is not a folder")
        for folder in (archive.samples_dir, archive.models_dir):
            folder.mkdir(parents=True, exist_ok=True)
        with intake_catalog.locked(archive.root):
            if not archive.catalog_path.exists():
                intake_catalog.save(archive.root, intake_catalog.load(archive.root))
        return archive

    @classmethod
    def open(cls, root: str | Path) -> Archive:
        """Open an existing archive; a clear error when ``root`` is not one."""
        archive = cls(root)
        if not archive.root.is_dir():
            raise ArchiveError(f"no archive at {archive.root} (create one with `sedarchive ingest`, `acquire` or `demo`)")
        if not archive.catalog_path.exists() and not archive.samples_dir.is_dir():
            raise ArchiveError(f"{archive.root} is not a sedarchive archive (no catalog.yaml, no samples/)")
        return archive

    # -- samples --------------------------------------------------------------------------------
    def create_sample(
        self,
        key: SampleKey,
        n_positions: int,
        n_layers: int,
        height: int,
        width: int,
        *,
        focal_offsets_um: Iterable[float] | None = None,
        pixel_size_um: float | None = None,
        attrs: Mapping[str, Any] | None = None,
        register: bool = True,
    ) -> Path:
        """Create an empty sample store (status ``acquiring``); refuse if the sample exists.

        With ``register=False`` the store is not yet in the catalog (ingest registers it only once
        every frame is in).
        """
        path = self.sample_path(key)
        if path.exists():
            raise ArchiveError(f"sample {key.name} already exists in {self.root}")
        for other in self.stored_keys(key.core):
            if other.overlaps(key.top_cm, key.bottom_cm):
                raise ArchiveError(f"sample {key.name} overlaps {other.name} of the same core: depth intervals "
                                   f"of one core must not overlap")
        store.create_sample_store(
            path, key, n_positions, n_layers, height, width,
            focal_offsets_um=focal_offsets_um, pixel_size_um=pixel_size_um, attrs=attrs,
        )
        if register:
            self.register(key)
        return path

    def stored_keys(self, core: str) -> list[SampleKey]:
        """The samples of ``core`` that have a store on disk (catalogued or not, e.g. an ingest under way)."""
        keys = []
        for path in sorted((self.samples_dir / core).glob("*.zarr")):
            try:
                keys.append(SampleKey.from_name(path.name[: -len(".zarr")]))
            except ArchiveError:
                continue
        return keys

    def register(self, key: SampleKey) -> None:
        """Add or refresh the sample's catalog entry from its store."""
        meta = store.summary(self.sample_path(key))
        with intake_catalog.locked(self.root):
            cat = intake_catalog.load(self.root)
            intake_catalog.put(cat, key.name, self._relative(key), meta)
            intake_catalog.save(self.root, cat)

    def unregister(self, key: SampleKey) -> None:
        with intake_catalog.locked(self.root):
            cat = intake_catalog.load(self.root)
            intake_catalog.remove(cat, key.name)
            intake_catalog.save(self.root, cat)

    def remove_sample(self, key: SampleKey) -> None:
        """Delete a sample's store and its catalog entry."""
        self.unregister(key)
        store.remove_store(self.sample_path(key))

    def exists(self, key: SampleKey) -> bool:
        return self.sample_path(key).exists()

    def is_registered(self, key: SampleKey) -> bool:
        return key.name in intake_catalog.load(self.root).entries

    def samples(
        self,
        core: str | Iterable[str] | None = None,
        depth: str | tuple[float, float] | None = None,
        status: str | None = None,
    ) -> list[SampleInfo]:
        """Catalogued samples, sorted by core and depth; filter by core(s), depth overlap, minimum status.

        ``depth`` is ``"100-150"`` or ``(100, 150)``: samples whose interval overlaps it are kept.
        """
        cores = {core} if isinstance(core, str) else (set(core) if core is not None else None)
        if isinstance(depth, str):
            depth = parse_depth_range(depth)
        rows = []
        for name, meta in intake_catalog.entry_metadata(intake_catalog.load(self.root)).items():
            key = SampleKey(meta["core"], meta["depth_top_cm"], meta["depth_bottom_cm"])
            if cores is not None and key.core not in cores:
                continue
            if depth is not None and not key.overlaps(*depth):
                continue
            if status is not None and store.status_rank(meta["status"]) < store.status_rank(status):
                continue
            rows.append(SampleInfo(key, self.sample_path(key), meta["status"], int(meta["n_positions"]), int(meta["n_particles"])))
        return sorted(rows, key=lambda r: r.key)

    def keys(self, core: str | Iterable[str] | None = None, depth: str | tuple[float, float] | None = None) -> list[SampleKey]:
        return [row.key for row in self.samples(core=core, depth=depth)]

    def open_sample(self, key: SampleKey) -> xr.Dataset:
        path = self.sample_path(key)
        if not path.exists():
            raise ArchiveError(f"sample {key.name} is not in {self.root}")
        return store.open_sample(path)

    def set_status(self, key: SampleKey, status: str, **attrs: Any) -> None:
        """Set the store's status (and attributes), then refresh its catalog entry."""
        store.set_status(self.sample_path(key), status, **attrs)
        self.register(key)

    def rebuild_catalog(self, problems: list[str] | None = None) -> list[SampleKey]:
        """Rewrite catalog.yaml from the stores alone (the old file is never read); returns the samples found.

        A store that cannot be read (damaged ``zarr.json``, no ``core`` attribute, a name that is
        not a sample's, a store in the wrong core folder) is left out and described, one line
        each, in ``problems`` when given.
        """
        found = []
        for path in sorted(self.samples_dir.glob("*/*.zarr")):
            try:
                key = SampleKey.from_name(path.name[: -len(".zarr")])
                meta = store.summary(path)
                if meta["core"] != key.core or path != self.sample_path(key):
                    raise ArchiveError(f"store {path.relative_to(self.root)} says core {meta['core']!r}, its "
                                       f"name and folder say {key.core!r}")
            except ArchiveError as err:
                if problems is not None:
                    problems.append(f"{path.relative_to(self.root)}: {err}")
                continue
            found.append((key, meta))
        with intake_catalog.locked(self.root):
            cat = intake_catalog.empty()
            for key, meta in found:
                intake_catalog.put(cat, key.name, self._relative(key), meta)
            intake_catalog.save(self.root, cat)
        intake_catalog.register_results(self.root)
        return [key for key, _ in found]

    def intake_catalog(self):
        """The catalog as opened by ``intake.open_catalog`` (entries ``.read()`` to Datasets)."""
        import intake

        return intake.open_catalog(str(self.catalog_path))
