"""Import existing photographs into a new sample: the plan (client), the frame kernel, the Dask run.

A source is a folder of images named ``<anything>_p<position>_z<layer>.<ext>`` or a CSV manifest
``path,position,layer[,x_mm,y_mm]``. Single-layer photographs (a plain camera, an old photo
archive) need no such names: with ``layers=1`` every image of a folder is one position (in name
order) of one focal layer; RGBA images are taken without their alpha channel. Everything that can be checked without decoding pixels (names,
duplicates, missing layers, frame sizes, colour modes) is checked before the store exists; frames
are then decoded on Dask workers, one task per batch of positions, each position written as one
chunk and marked done. A bad frame found by a worker removes the unfinished store, so the archive is
left as it was; a killed ingest leaves an unregistered store that the same command resumes.
"""
from __future__ import annotations

import csv
import math
import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from catalog import Archive, SampleKey
from catalog import store as sample_store
from sedarchive.errors import InputError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".tif", ".tiff"}
_NAME_RE = re.compile(r"^.*_p(?P<position>\d+)_z(?P<layer>\d+)$", re.IGNORECASE)


@dataclass(frozen=True)
class IngestPlan:
    """Which file holds each (position, layer) frame, the frame size, and where the stage was."""

    source: str
    files: tuple[tuple[str, ...], ...]  # files[position][layer]
    height: int
    width: int
    stage_xy_mm: tuple[tuple[float, float], ...] = field(default=())

    @property
    def n_positions(self) -> int:
        return len(self.files)

    @property
    def n_layers(self) -> int:
        return len(self.files[0])


def plan_ingest(src: str | Path, layers: int | None = None) -> IngestPlan:
    """Check a folder or CSV manifest and plan the import; raises :class:`InputError` on bad input.

    ``layers=1``: single-layer photographs; a folder's images need not be named ``_p<N>_z<M>``
    (each is one position, in name order). Otherwise the names or the manifest decide the layers,
    and ``layers`` (when given) must match them.
    """
    src = Path(src).expanduser()
    if layers is not None and layers < 1:
        raise InputError(f"--layers {layers}: a stack has at least one focal layer")
    if src.is_dir():
        frames, xy = _frames_from_folder(src, single=layers == 1), {}
    elif src.is_file() and src.suffix.lower() == ".csv":
        frames, xy = _frames_from_manifest(src)
    elif not src.exists():
        raise InputError(f"{src}: no such folder or CSV manifest")
    else:
        raise InputError(f"{src}: expected a folder of images or a .csv manifest")
    if not frames:
        raise InputError(f"{src}: no frames named like NAME_p<position>_z<layer>.png/.jpg/.tif")
    positions = sorted({p for p, _ in frames})
    found_layers = sorted({z for _, z in frames})
    n_pos, n_layers = positions[-1] + 1, found_layers[-1] + 1
    if layers is not None and n_layers != layers:
        raise InputError(f"{src}: frames have {n_layers} focal layer(s), but --layers {layers} was given")
    for p in range(n_pos):
        if p not in positions:
            raise InputError(f"{src}: position {p} has no frames (positions count from 0 without gaps)")
        missing = [z for z in range(n_layers) if (p, z) not in frames]
        if missing:
            raise InputError(f"{src}: position {p} lacks focal layer(s) {', '.join(map(str, missing))} "
                             f"(other positions have {n_layers} layers)")
    files = tuple(tuple(str(frames[(p, z)]) for z in range(n_layers)) for p in range(n_pos))
    height, width = _check_headers(files)
    xy_rows = tuple(xy.get(p, (math.nan, math.nan)) for p in range(n_pos))
    return IngestPlan(str(src), files, height, width, xy_rows)


def _frames_from_folder(folder: Path, single: bool = False) -> dict[tuple[int, int], Path]:
    frames: dict[tuple[int, int], Path] = {}
    images = [p for p in sorted(folder.iterdir()) if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()]
    if single and not all(_NAME_RE.match(p.stem) for p in images):
        # single-layer photographs with any names: one position each, in name order
        return {(position, 0): path for position, path in enumerate(images)}
    for path in images:
        m = _NAME_RE.match(path.stem)
        if not m:
            raise InputError(f"{path}: image name does not end in _p<position>_z<layer>")
        _add_frame(frames, (int(m["position"]), int(m["layer"])), path)
    return frames


def _frames_from_manifest(manifest: Path) -> tuple[dict[tuple[int, int], Path], dict[int, tuple[float, float]]]:
    try:
        return _read_manifest(manifest)
    except UnicodeDecodeError as err:
        raise InputError(f"{manifest}: not UTF-8 text (byte {err.start}); save the manifest as UTF-8") from None


def _read_manifest(manifest: Path) -> tuple[dict[tuple[int, int], Path], dict[int, tuple[float, float]]]:
    frames: dict[tuple[int, int], Path] = {}
    xy: dict[int, tuple[float, float]] = {}
    with open(manifest, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        need = {"path", "position", "layer"}
        if reader.fieldnames is None or not need <= {f.strip() for f in reader.fieldnames}:
            raise InputError(f"{manifest}: a manifest needs the columns path,position,layer (optional x_mm,y_mm)")
        for line, row in enumerate(reader, start=2):
            row = {k.strip(): (v or "").strip() for k, v in row.items() if k}
            try:
                key = (int(row["position"]), int(row["layer"]))
                if key[0] < 0 or key[1] < 0:
                    raise ValueError
            except ValueError:
                raise InputError(f"{manifest}:{line}: position and layer must be integers from 0") from None
            path = Path(row["path"])
            path = path if path.is_absolute() else manifest.parent / path
            _add_frame(frames, key, path)
            if row.get("x_mm") and row.get("y_mm"):
                try:
                    here = (float(row["x_mm"]), float(row["y_mm"]))
                except ValueError:
                    raise InputError(f"{manifest}:{line}: x_mm and y_mm must be numbers") from None
                if key[0] in xy and xy[key[0]] != here:
                    raise InputError(f"{manifest}:{line}: position {key[0]} has two stage positions")
                xy[key[0]] = here
    return frames, xy


def _add_frame(frames: dict[tuple[int, int], Path], key: tuple[int, int], path: Path) -> None:
    if key in frames:
        raise InputError(f"{path}: duplicate frame for position {key[0]} layer {key[1]} (also {frames[key]})")
    frames[key] = path


def _check_headers(files: tuple[tuple[str, ...], ...]) -> tuple[int, int]:
    """Frame size and colour mode from the headers only (decoding happens on the workers)."""
    sizes: dict[tuple[int, int], str] = {}
    for row in files:
        for name in row:
            try:
                with Image.open(name) as img:
                    size, mode = img.size, img.mode
            except FileNotFoundError:
                raise InputError(f"{name}: file not found") from None
            except Exception as err:  # PIL raises several types for unreadable files
                raise InputError(f"{name}: not a readable image ({err.__class__.__name__}: {err})") from None
            if mode not in ("RGB", "RGBA"):
                raise InputError(f"{name}: colour mode {mode}, expected 8-bit RGB")
            _refuse_deep(name, img)
            sizes.setdefault(size, name)
            if len(sizes) > 1:
                (w0, h0), first = next(iter(sizes.items()))
                raise InputError(f"{name}: frame is {size[0]}x{size[1]} but {first} is {w0}x{h0}")
    width, height = next(iter(sizes))
    return height, width


def bits_per_channel(img: Image.Image) -> int:
    """Bits per colour channel in the file (PIL opens 16-bit RGB as 8-bit "RGB", dropping the low byte)."""
    bits = 8
    tags = getattr(img, "tag_v2", None)
    if tags is not None and 258 in tags:  # TIFF BitsPerSample
        value = tags[258]
        bits = max(int(v) for v in (value if isinstance(value, tuple) else (value,)))
    for tile in getattr(img, "tile", None) or ():
        args = tile[3] if len(tile) > 3 else None
        raw = args[0] if isinstance(args, tuple) and args else args
        if isinstance(raw, str) and ";16" in raw:
            bits = max(bits, 16)
    return bits


def _refuse_deep(name: str, img: Image.Image) -> None:
    bits = bits_per_channel(img)
    if bits > 8:
        raise InputError(f"{name}: {bits} bits per channel; sedarchive stores 8-bit RGB and will not cut the "
                         f"values to their high byte: convert the frames to 8 bits first, choosing the scaling")


def read_frame(name: str, height: int, width: int) -> np.ndarray:
    """Decode one frame to ``(y, x, 3)`` uint8; :class:`InputError` naming the file if it is bad.

    Examples
    --------
    >>> import tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "a_p0_z0.png")
    >>> Image.fromarray(np.zeros((4, 5, 3), np.uint8)).save(path)
    >>> read_frame(path, 4, 5).shape
    (4, 5, 3)
    """
    try:
        with Image.open(name) as img:
            img.load()
            if img.mode not in ("RGB", "RGBA"):
                raise InputError(f"{name}: colour mode {img.mode}, expected 8-bit RGB")
            _refuse_deep(name, img)
            frame = np.asarray(img.convert("RGB") if img.mode == "RGBA" else img, dtype=np.uint8)
    except InputError:
        raise
    except Exception as err:
        raise InputError(f"{name}: unreadable or truncated image ({err.__class__.__name__}: {err})") from None
    if frame.shape != (height, width, 3):
        raise InputError(f"{name}: frame of shape {frame.shape}, expected {(height, width, 3)}")
    return frame


def ingest_positions(store_path: str, plan: IngestPlan, positions: list[int]) -> int:
    """Worker task: decode and write the given positions (skipping those already done)."""
    done = sample_store.positions_done(store_path)
    written = 0
    for p in positions:
        if done[p]:
            continue
        stack = np.stack([read_frame(name, plan.height, plan.width) for name in plan.files[p]])
        sample_store.write_position(store_path, p, stack, plan.stage_xy_mm[p] if plan.stage_xy_mm else None)
        written += 1
    return written


def ingest(
    archive: Archive,
    key: SampleKey,
    plan: IngestPlan,
    client,
    *,
    focal_offsets_um: list[float] | None = None,
    pixel_size_um: float | None = None,
    positions_per_task: int = 4,
    quiet: bool = False,
) -> int:
    """Import the frames of ``plan`` (see :func:`plan_ingest`) as sample ``key``.

    Returns the number of positions written by this call (fewer than the plan's when resuming).
    """
    from sedarchive.dask.tasks import run_tasks

    path = archive.sample_path(key)
    source = str(Path(plan.source).resolve())
    if archive.is_registered(key):
        raise InputError(f"sample {key.name} already exists in {archive.root}")
    if path.exists():
        attrs = sample_store.read_attrs(path)
        shape = sample_store.read_array(path, "position_done").shape[0]
        if attrs.get("ingest_source") != source or shape != plan.n_positions:
            raise InputError(f"{path} holds an unfinished sample from another source "
                             f"({attrs.get('ingest_source')}); remove it or ingest that source again")
    else:
        offsets = focal_offsets_um if focal_offsets_um is not None else None
        if offsets is not None and len(offsets) != plan.n_layers:
            raise InputError(f"{len(offsets)} focal offsets given for {plan.n_layers} layers")
        archive.create_sample(
            key, plan.n_positions, plan.n_layers, plan.height, plan.width,
            focal_offsets_um=offsets, pixel_size_um=pixel_size_um,
            attrs={"ingest_source": source, "ingest_frames": plan.n_positions * plan.n_layers},
            register=False,
        )
    todo = [int(p) for p in np.flatnonzero(~sample_store.positions_done(path))]
    batches = {f"{key.name}[{chunk[0]}:{chunk[-1] + 1}]": (str(path), plan, chunk)
               for chunk in (todo[i:i + positions_per_task] for i in range(0, len(todo), positions_per_task))}
    report = run_tasks(client, ingest_positions, batches, label="ingest", quiet=quiet)
    if report.failures:
        archive.remove_sample(key)
        first = sorted(report.failures.items())[0][1]
        raise InputError(first)
    archive.set_status(key, "acquired")
    return sum(report.results.values())
