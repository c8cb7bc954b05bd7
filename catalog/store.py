"""One sample, one Zarr v3 store: creating it, writing positions, reading it back.

The layout is the contract of ``DESIGN.md``: ``stacks (position, layer, y, x, channel)`` uint8 with
one chunk per position, ``stage_xy_mm (position, axis)`` (axis 0 is x, 1 is y), and attributes for core, depth, status and
the settings of every stage. ``position_done (position)`` marks positions whose frames are complete,
so that an interrupted acquisition or ingest resumes at the first missing position.

Only the process that orchestrates a stage changes metadata (attributes, new variables); workers
write whole chunks of existing arrays. Every metadata change re-consolidates the store, so plain
``xarray.open_zarr(path)`` sees it.
"""
from __future__ import annotations

import json
import shutil
import warnings
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import dask.array as da
import numpy as np
import xarray as xr
import zarr
from zarr.codecs import BloscCodec

from catalog.chunks import EVERY_CHUNK, CheckedArray, check_chunks
from catalog.version import software_version  # noqa: F401 - re-exported (stores record it)
from catalog.errors import ArchiveError
from catalog.keys import SampleKey

# Every chunk a writer touches is written, even one equal to the fill value, so a chunk missing
# from disk always means damage (zarr's default skips all-fill chunks, which hides deleted ones).
zarr.config.set({"array.write_empty_chunks": True})

STATUSES = ("acquiring", "acquired", "segmented", "encoded", "clustered")
STACK_DIMS = ("position", "layer", "y", "x", "channel")


def stacks_codec() -> BloscCodec:
    """The lossless codec of ``stacks``: Blosc zstd with bit-shuffle (see bench/ingest.py)."""
    return BloscCodec(cname="zstd", clevel=3, shuffle="bitshuffle", typesize=1)


def grains_codec() -> BloscCodec:
    """The lossless codec of grain crops (``particle_images``): Blosc lz4 with bit-shuffle.

    It encodes 3.5x faster than zstd-3 and decodes 1.6x faster for about 20 % more bytes (see
    bench/codec.py); the codec is in each array's metadata, so stores written with zstd still read.
    """
    return BloscCodec(cname="lz4", clevel=5, shuffle="bitshuffle", typesize=1)


#: The codecs ``create_variables`` gives its ``compressed`` arrays, by name.
CODECS = {"stacks": stacks_codec, "grains": grains_codec}


def status_rank(status: str) -> int:
    """Position of ``status`` in the order of stages (``acquiring`` first)."""
    try:
        return STATUSES.index(status)
    except ValueError:
        raise ArchiveError(f"unknown status {status!r}; expected one of {', '.join(STATUSES)}") from None


def create_sample_store(
    path: str | Path,
    key: SampleKey,
    n_positions: int,
    n_layers: int,
    height: int,
    width: int,
    *,
    focal_offsets_um: Iterable[float] | None = None,
    pixel_size_um: float | None = None,
    attrs: Mapping[str, Any] | None = None,
) -> None:
    """Write the empty template of a sample store (metadata only, no frames).

    ``stacks`` gets one chunk per position (all layers); ``stage_xy_mm`` starts as NaN.
    """
    path = Path(path)
    if n_positions < 1 or n_layers < 1 or height < 1 or width < 1:
        raise ArchiveError(
            f"{key.name}: a sample needs at least one position, layer and pixel "
            f"(got {n_positions} positions x {n_layers} layers of {height}x{width})"
        )
    offsets = [float(v) for v in (focal_offsets_um if focal_offsets_um is not None else range(n_layers))]
    if len(offsets) != n_layers:
        raise ArchiveError(f"{key.name}: {len(offsets)} focal offsets for {n_layers} layers")
    if not all(np.isfinite(offsets)):
        raise ArchiveError(f"{key.name}: focal offsets must be finite numbers (got {offsets})")
    if pixel_size_um is not None and not (np.isfinite(float(pixel_size_um)) and float(pixel_size_um) > 0):
        raise ArchiveError(f"{key.name}: pixel size must be a positive number of micrometres (got {pixel_size_um})")
    shape = (n_positions, n_layers, height, width, 3)
    ds = xr.Dataset(
        {
            "stacks": (STACK_DIMS, da.zeros(shape, dtype=np.uint8, chunks=(1, n_layers, height, width, 3))),
            "stage_xy_mm": (("position", "axis"), da.full((n_positions, 2), np.nan, chunks=(1, 2))),
            "position_done": (("position",), da.zeros(n_positions, dtype=bool, chunks=1)),
        },
        coords={"layer": np.arange(n_layers)},
    )
    for name in ("stacks", "stage_xy_mm"):
        ds[name].attrs[EVERY_CHUNK] = True
    ds.attrs.update(
        core=key.core,
        depth_top_cm=key.top_cm,
        depth_bottom_cm=key.bottom_cm,
        focal_offsets_um=offsets,
        status="acquiring",
        software_version=software_version(),
    )
    if pixel_size_um is not None:
        ds.attrs["pixel_size_um"] = float(pixel_size_um)
    encoding = {
        "stacks": {"compressors": [stacks_codec()], "chunks": (1, n_layers, height, width, 3)},
        "stage_xy_mm": {"chunks": (1, 2), "fill_value": np.nan},
        "position_done": {"chunks": (1,), "fill_value": False},
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.to_zarr(path, mode="w-", compute=False, zarr_format=3, consolidated=False, encoding=encoding)
    if attrs:
        update_attrs(path, **attrs)
    consolidate(path)


def _group(path: str | Path, mode: str = "r") -> zarr.Group:
    path = Path(path)
    if not (path / "zarr.json").exists():
        raise ArchiveError(f"{path} is not a sample store (no zarr.json)")
    try:
        return zarr.open_group(str(path), mode=mode, zarr_format=3)
    except Exception as err:  # noqa: BLE001 - truncated or edited JSON, wrong node type, bad bytes: one line
        first = (str(err).splitlines() or [""])[0][:160]
        raise ArchiveError(f"sample store {path.name}: zarr.json is damaged ({type(err).__name__}: {first}); "
                           f"restore it from a backup") from None


def write_position(path: str | Path, index: int, stack: np.ndarray, xy_mm: tuple[float, float] | None = None) -> None:
    """Write the frames of one stage position (one whole chunk), then mark it done.

    ``stack`` is ``(layer, y, x, 3)`` uint8. The done-mark comes last, so a write killed half-way
    leaves the position not done and a resumed run writes it again.
    """
    group = _group(path, "r+")
    stacks = group["stacks"]
    expected = stacks.shape[1:]
    stack = np.asarray(stack)
    if stack.shape != expected or stack.dtype != np.uint8:
        raise ArchiveError(
            f"{Path(path).name}: position {index} has frames of shape {stack.shape} {stack.dtype}, "
            f"the sample expects {expected} uint8"
        )
    if not 0 <= index < stacks.shape[0]:
        raise ArchiveError(f"{Path(path).name}: position {index} outside 0..{stacks.shape[0] - 1}")
    stacks[index] = stack
    if xy_mm is not None:
        group["stage_xy_mm"][index] = np.asarray(xy_mm, dtype=float)
    group["position_done"][index] = True


def positions_done(path: str | Path) -> np.ndarray:
    """Boolean array: which positions have all their frames written."""
    return np.asarray(_group(path)["position_done"][:], dtype=bool)


def open_sample(path: str | Path) -> xr.Dataset:
    """The sample as a lazy, dask-backed Dataset (always current: reads metadata directly).

    Every chunk is checked to exist first (file names only, no data read): a missing one is an
    :class:`ArchiveError` naming the sample, the variable and the chunk.
    """
    group = _group(path)
    names = list(group.array_keys())
    staged = [name for name in names if name.endswith(STAGED_SUFFIX)]
    for name in names:
        if name not in staged:
            check_chunks(path, group, name)
    return xr.open_zarr(str(path), consolidated=False, chunks={}, drop_variables=staged)


def read_attrs(path: str | Path) -> dict[str, Any]:
    return dict(_group(path).attrs)


def update_attrs(path: str | Path, **attrs: Any) -> None:
    """Set attributes of a store (orchestrating process only) and re-consolidate it."""
    group = _group(path, "r+")
    clean = {k: _jsonable(v) for k, v in attrs.items()}
    group.attrs.update(clean)
    consolidate(path)


def set_status(path: str | Path, status: str, **attrs: Any) -> None:
    status_rank(status)
    update_attrs(path, status=status, **attrs)


def record_stage(path: str | Path, stage: str, settings: Mapping[str, Any], **extra: Any) -> None:
    """Record a stage's settings and the software version in the store's attributes."""
    update_attrs(path, **{f"{stage}_settings": dict(settings), f"{stage}_version": software_version()}, **extra)


def drop_variables(path: str | Path, names: Iterable[str]) -> None:
    """Delete variables (arrays) from a store, e.g. before a stage writes them anew."""
    group = _group(path, "r+")
    for name in names:
        if name in group:
            del group[name]
    consolidate(path)


#: suffix of an array that a stage writes beside the one it replaces (``latent.next``), swapped in
#: by :func:`swap_in` only when complete; readers never see it
STAGED_SUFFIX = ".next"


def staged_name(name: str) -> str:
    """The name under which a stage writes the new ``name`` before :func:`swap_in`."""
    return name + STAGED_SUFFIX


def swap_in(path: str | Path, name: str) -> None:
    """Replace array ``name`` by its finished staged copy (``name.next``), then re-consolidate.

    Two renames inside the store: the old array goes aside, the new one takes its name, the old
    one is deleted. Until then readers see the old array whole.
    """
    path = Path(path)
    new, old = path / staged_name(name), path / f".{name}.old"
    if not (new / "zarr.json").is_file():
        raise ArchiveError(f"sample {path.name}: no finished {staged_name(name)!r} to swap in")
    shutil.rmtree(old, ignore_errors=True)
    if (path / name).exists():
        (path / name).rename(old)
    try:
        new.rename(path / name)
    except BaseException:
        if old.exists() and not (path / name).exists():
            old.rename(path / name)  # the swap failed: the old array takes its place again
        raise
    shutil.rmtree(old, ignore_errors=True)
    consolidate(path)


def consolidate(path: str | Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zarr warns that consolidated metadata is not yet in the v3 spec
        zarr.consolidate_metadata(str(path), zarr_format=3)


def summary(path: str | Path) -> dict[str, Any]:
    """Core, depth, status and counts of a store, read from metadata only."""
    group = _group(path)
    attrs = group.attrs
    missing = [name for name in ("core", "depth_top_cm", "depth_bottom_cm") if name not in attrs]
    if missing:
        raise ArchiveError(f"sample store {Path(path).name} has no {', '.join(missing)} attribute(s) in its "
                           f"zarr.json; set them again (they follow from the store's name) or restore it")
    n_particles = 0
    for name in ("bbox", "position_of_particle", "particle_images"):
        if name in group:
            n_particles = int(group[name].shape[0])
            break
    return {
        "core": attrs["core"],
        "depth_top_cm": float(attrs["depth_top_cm"]),
        "depth_bottom_cm": float(attrs["depth_bottom_cm"]),
        "status": attrs.get("status", "acquiring"),
        "n_positions": int(group["stacks"].shape[0]) if "stacks" in group else 0,
        "n_particles": n_particles,
    }


def remove_store(path: str | Path) -> None:
    path = Path(path)
    if path.exists():
        shutil.rmtree(path)


def _jsonable(value: Any) -> Any:
    """Attributes must survive JSON: numpy scalars and arrays become plain Python."""
    return json.loads(json.dumps(value, default=json_default))


def json_default(obj: Any) -> Any:
    """``json.dumps(default=...)`` for numpy scalars and arrays and paths (settings, attributes)."""
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"attribute value {obj!r} is not JSON-serialisable")


def create_variables(
    path: str | Path,
    variables: Mapping[str, tuple[tuple[str, ...], tuple[int, ...], Any, tuple[int, ...]]],
    *,
    fill_values: Mapping[str, Any] | None = None,
    compressed: Iterable[str] = (),
    codec: str = "stacks",
    overwrite: bool = True,
) -> None:
    """Add empty arrays to a store (metadata only); workers then fill them with :func:`write_region`.

    ``variables`` maps a name to ``(dims, shape, dtype, chunks)``. Existing arrays of the same names
    are replaced when ``overwrite`` (a stage that runs again starts clean). Names in ``compressed``
    use the image codec ``codec`` of :data:`CODECS` (``stacks``, or ``grains`` for grain crops such
    as ``particle_images``).
    """
    if codec not in CODECS:
        raise ArchiveError(f"unknown codec {codec!r}; expected one of {', '.join(CODECS)}")
    group = _group(path, "r+")
    fill_values = dict(fill_values or {})
    compressed = set(compressed)
    for name, (dims, shape, dtype, chunks) in variables.items():
        if name in group:
            if not overwrite:
                raise ArchiveError(f"{Path(path).name} already has {name!r}")
            del group[name]
        dtype = np.dtype(dtype)
        if len(dims) != len(shape) or len(chunks) != len(shape):
            raise ArchiveError(f"{name}: dims {dims}, shape {shape} and chunks {chunks} disagree")
        fill = fill_values.get(name, np.nan if dtype.kind == "f" else 0)
        group.create_array(
            name,
            shape=tuple(int(s) for s in shape),
            chunks=tuple(max(1, int(c)) for c in chunks),
            dtype=dtype,
            fill_value=fill,
            dimension_names=list(dims),
            compressors=[CODECS[codec]()] if name in compressed else "auto",
            attributes={EVERY_CHUNK: True},
        )
    consolidate(path)


def write_region(path: str | Path, name: str, start: int, data: np.ndarray) -> None:
    """Write ``data`` into array ``name`` at ``[start:start + len(data)]`` along its first axis.

    Workers call this, many at once on one store, so each region must cover whole chunks along the
    first axis: it starts at a chunk boundary and ends at one (or at the end of the array). A
    misaligned region is refused (two tasks sharing a chunk would overwrite each other's rows).
    """
    group = _group(path, "r+")
    if name not in group:
        raise ArchiveError(f"{Path(path).name} has no array {name!r}; create it first")
    array = group[name]
    data = np.asarray(data)
    if data.shape[1:] != array.shape[1:] or start < 0 or start + len(data) > array.shape[0]:
        raise ArchiveError(
            f"{Path(path).name}/{name}: cannot write {data.shape} at {start} into an array of {array.shape}"
        )
    rows = int(array.chunks[0]) if array.ndim else 1
    end = start + len(data)
    if len(data) and (start % rows or (end % rows and end != array.shape[0])):
        raise ArchiveError(f"{Path(path).name}/{name}: rows {start}:{end} are not whole chunks of {rows} rows; "
                           f"concurrent writers must write whole chunks")
    if len(data):
        array[start : start + len(data)] = data.astype(array.dtype, copy=False)


def read_array(path: str | Path, name: str, selection: Any = slice(None)) -> np.ndarray:
    """Read (part of) one array of a store as numpy, without xarray.

    One row of an array chunked by row (a stack position, a grain's images) is decoded straight
    from its chunk file (:func:`catalog.rawchunks.read_chunk`); anything else goes through zarr.
    """
    if isinstance(selection, (int, np.integer)):
        from catalog.rawchunks import read_chunk

        try:
            row = read_chunk(path, name, int(selection))
        except (OSError, ValueError, KeyError, TypeError):
            row = None  # no such array, a damaged zarr.json, ...: zarr's path says what is wrong
        if row is not None:
            return row
    group = _group(path)
    if name not in group:
        raise ArchiveError(f"{Path(path).name} has no array {name!r}")
    check_chunks(path, group, name, selection)
    return np.asarray(group[name][selection])


def intact(path: str | Path, *names: str) -> bool:
    """True when every array ``names`` exists with all its chunks (a stage that would skip a sample
    as done asks this first, so that running it again repairs a lost chunk)."""
    group = _group(path)
    for name in names:
        if name not in group:
            return False
        try:
            check_chunks(path, group, name)
        except ArchiveError:
            return False
    return True


def array_names(path: str | Path) -> list[str]:
    """The arrays of a store (staged arrays not yet swapped in left out)."""
    return sorted(name for name in _group(path).array_keys() if not name.endswith(STAGED_SUFFIX))


#: the per-grain flags of grains that are not counted as grains: cut by the frame edge, touching grains
GRAIN_FLAGS = ("chopped", "clump")


def read_flags(path: str | Path, n: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``chopped`` and ``clump`` of every grain of a store, as bool arrays.

    The one rule for flags, whoever leaves flagged grains out (training, clustering, counting): a
    store whose grains lack a flag is an error (segment it again), never silently "not flagged".
    ``n == 0`` (a store without grains) gives empty arrays.
    """
    names = array_names(path)
    out = []
    for flag in GRAIN_FLAGS:
        if flag in names:
            out.append(np.asarray(read_array(path, flag), bool))
        elif n == 0:
            out.append(np.zeros(0, bool))
        else:
            raise ArchiveError(f"sample {Path(path).name} has no {flag!r} flags; segment it again")
    return out[0], out[1]


def array_shape(path: str | Path, name: str) -> tuple[int, ...]:
    """The shape of one array of a store (metadata only, no data read)."""
    group = _group(path)
    if name not in group:
        raise ArchiveError(f"{Path(path).name} has no array {name!r}")
    return tuple(int(n) for n in group[name].shape)


def array_chunks(path: str | Path, name: str) -> tuple[int, ...]:
    """The chunk shape of one array of a store (write regions must cover whole chunks along axis 0)."""
    group = _group(path)
    if name not in group:
        raise ArchiveError(f"{Path(path).name} has no array {name!r}")
    return tuple(int(n) for n in group[name].chunks)


def open_array(path: str | Path, name: str) -> Any:
    """One array of a store, opened read-only for sliced reads (a missing chunk is an error)."""
    group = _group(path)
    if name not in group:
        raise ArchiveError(f"{Path(path).name} has no array {name!r}")
    return CheckedArray(path, group, name)
