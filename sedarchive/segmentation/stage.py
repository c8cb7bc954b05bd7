"""The segment stage on Dask: samples and chunks of positions to grains in the sample stores.

Orchestration only: the kernels live in the other modules of this package, the worker functions in
:mod:`~sedarchive.segmentation.chunks`. The particle count of a sample is known only once every
position is segmented, so the stage runs in two passes:

1. one task per chunk of positions segments it into a scratch file of measures, and each grain's
   images compressed once into a file of its own (resumable per chunk);
2. the client creates the per-grain arrays, one task per chunk links its grain files into
   ``particle_images`` as its chunk files (one particle per Zarr chunk, so tasks never share a
   chunk), the client writes the small per-grain variables, records the settings and sets the
   status ``segmented``.
"""
from __future__ import annotations

import json
import shutil
import warnings
from typing import Any

from catalog import (
    Archive,
    SampleKey,
    create_variables,
    read_attrs,
    record_stage,
    status_rank,
    write_region,
)
from catalog.errors import SedarchiveError
from catalog.store import array_names, array_shape, drop_variables, intact, staged_name, swap_in
from sedarchive.dask.tasks import TaskReport, run_tasks
from sedarchive.segmentation.chunks import (
    ChunkKey,
    chunk_file,
    copy_chunk,
    prepare_scratch,
    read_chunk_table,
    scratch_dir,
    segment_chunk,
)
from sedarchive.segmentation.extract import VARIABLES, VARIABLES_UM, GrainTable
from sedarchive.segmentation.settings import SegmentSettings

STAGE = "segment"
#: Variables that describe particles of an earlier segmentation; dropped when a sample is segmented anew.
LATER_PARTICLE_VARIABLES = ("latent", "cluster")
#: Per-grain arrays checked for lost chunks before a sample is skipped as done (a lost one is segmented again).
PARTICLE_ARRAYS = ("particle_images", "bbox", "position", "chopped", "clump")
#: Samples are segmented in groups of about this many stack positions (see :func:`_batches`).
BATCH_POSITIONS = 256


class EmptyPlateWarning(UserWarning):
    """A sample in which no grain was found at all."""


def is_done(attrs: dict[str, Any], settings: SegmentSettings) -> bool:
    """True when the store was segmented (or further) with these settings."""
    recorded = json.loads(json.dumps(settings.recorded()))
    return status_rank(attrs.get("status", "acquiring")) >= status_rank("segmented") and \
        attrs.get(f"{STAGE}_settings") == recorded


def run_stage(archive: Archive, keys: list[SampleKey], client: Any, settings: SegmentSettings | None = None, *,
              quiet: bool = False, force: bool = False) -> TaskReport:
    """Segment the samples ``keys`` on the Dask ``client``; finished samples are skipped.

    Results per sample: ``{"n_particles": int, "skipped": bool}``; failures: a one-line reason (a
    sample not yet acquired, a frame without green background, ...). ``force`` segments again
    samples already segmented with the same settings. A sample without any grain gets zero
    particles and an :class:`EmptyPlateWarning`.
    """
    settings = settings or SegmentSettings()
    report = TaskReport()
    todo: list[SampleKey] = []
    for key in keys:
        path = archive.sample_path(key)
        try:
            attrs = read_attrs(path)
        except SedarchiveError as err:
            report.failures[key] = str(err)
            continue
        status = attrs.get("status", "acquiring")
        if status_rank(status) < status_rank("acquired"):
            report.failures[key] = f"{key.name} is not acquired yet (status {status})"
        elif not force and is_done(attrs, settings) and intact(path, *(n for n in PARTICLE_ARRAYS
                                                                       if n in array_names(path))):
            shutil.rmtree(scratch_dir(archive.root, key), ignore_errors=True)  # left by a run killed at the end
            n = int(array_shape(path, "bbox")[0]) if "bbox" in array_names(path) else 0
            report.results[key] = {"n_particles": n, "skipped": True}
        else:
            todo.append(key)
    for batch in _batches(archive, todo):
        _segment_batch(archive, batch, client, settings, report, quiet)
    return report


def _batches(archive: Archive, keys: list[SampleKey]) -> list[list[SampleKey]]:
    """Samples grouped until a group has ``BATCH_POSITIONS`` positions: enough tasks to keep every
    worker busy, while the scratch space (compressed grain images until they are linked in) stays bounded."""
    batches: list[list[SampleKey]] = []
    size = BATCH_POSITIONS
    for key in keys:
        if size >= BATCH_POSITIONS:
            batches.append([])
            size = 0
        batches[-1].append(key)
        size += _stacks_shape(archive.sample_path(key))[0]
    return batches


def _segment_batch(archive: Archive, keys: list[SampleKey], client: Any, settings: SegmentSettings,
                   report: TaskReport, quiet: bool) -> None:
    """Both passes over some samples; results and failures go to ``report``."""
    chunks: dict[SampleKey, list[ChunkKey]] = {}
    items = {}
    for key in keys:
        path = archive.sample_path(key)
        scratch = scratch_dir(archive.root, key)
        prepare_scratch(scratch, settings)
        n_positions = _stacks_shape(path)[0]
        step = settings.positions_per_task
        chunks[key] = [ChunkKey(key, s, min(s + step, n_positions)) for s in range(0, n_positions, step)]
        for chunk in chunks[key]:
            items[chunk] = (str(path), str(scratch), chunk.start, chunk.stop, settings.to_dict(), key.name)
    first = run_tasks(client, segment_chunk, items, label=STAGE, quiet=quiet)

    copies, segmented = {}, []
    for key in keys:
        failed = [first.failures[c] for c in chunks[key] if c in first.failures]
        if failed:
            report.failures[key] = failed[0]
            continue
        path = archive.sample_path(key)
        scratch = scratch_dir(archive.root, key)
        counts = [int(first.results[c]) for c in chunks[key]]
        _create_particle_arrays(archive, key, sum(counts), _stacks_shape(path)[1], settings,
                                read_attrs(path).get("pixel_size_um"))
        start = 0
        for chunk, count in zip(chunks[key], counts):
            if count:
                copies[chunk] = (str(path), str(chunk_file(scratch, chunk.start, chunk.stop)), start,
                                 staged_name("particle_images"))
            start += count
        segmented.append(key)
    second = run_tasks(client, copy_chunk, copies, label=f"{STAGE}-write", quiet=quiet)

    for key in segmented:
        failed = [second.failures[c] for c in chunks[key] if c in second.failures]
        if failed:
            report.failures[key] = failed[0]
            continue
        path = archive.sample_path(key)
        scratch = scratch_dir(archive.root, key)
        with_um = read_attrs(path).get("pixel_size_um") is not None
        table = GrainTable.concat([read_chunk_table(chunk_file(scratch, c.start, c.stop)) for c in chunks[key]],
                                  _stacks_shape(path)[1], with_um)
        for name, values in table.columns.items():
            write_region(path, staged_name(name), 0, values)  # a few numbers per grain: the client writes them
        _swap_in_particles(archive, key, ["particle_images", *table.columns])
        record_stage(path, STAGE, settings.recorded())
        archive.set_status(key, "segmented")
        shutil.rmtree(scratch, ignore_errors=True)
        report.results[key] = {"n_particles": len(table), "skipped": False}
        if len(table) == 0:
            warnings.warn(f"{key.name}: no grains found in its {chunks[key][-1].stop} positions (an empty plate?)",
                          EmptyPlateWarning, stacklevel=3)


def _stacks_shape(path) -> tuple[int, ...]:
    """``(position, layer, y, x, channel)`` of a store's stacks (metadata only)."""
    return array_shape(path, "stacks")


def _create_particle_arrays(archive: Archive, key: SampleKey, n_particles: int, n_layers: int,
                            settings: SegmentSettings, pixel_size_um: float | None) -> None:
    """Create empty staged per-grain arrays (``name.next``, client only) beside the current ones.

    The sample's current grains, latents, clusters and status stay untouched until
    :func:`_swap_in_particles` (a failure before leaves them whole).
    """
    path = archive.sample_path(key)
    spec = {**VARIABLES, **(VARIABLES_UM if pixel_size_um is not None else {})}
    size = settings.crop_size
    variables = {"particle_images": (("particle", "layer", "py", "px", "channel"),
                                     (n_particles, n_layers, size, size, 3), "uint8", (1, n_layers, size, size, 3))}
    trailing = {"corner": 4, "layer": n_layers, "channel": 3}
    for name, (dims, dtype) in spec.items():
        shape = (n_particles, *(trailing[d] for d in dims))
        variables[name] = (("particle", *dims), shape, dtype, (max(n_particles, 1), *shape[1:]))
    create_variables(path, {staged_name(n): v for n, v in variables.items()},
                     compressed=(staged_name("particle_images"),), codec="grains")


def _swap_in_particles(archive: Archive, key: SampleKey, names: list[str]) -> None:
    """Swap the finished staged grain arrays in; drop what described the old grains.

    The status goes back to ``acquired`` first, so a kill during the swaps makes the next run
    segment the sample again rather than trust a mixture.
    """
    path = archive.sample_path(key)
    if status_rank(read_attrs(path).get("status", "acquiring")) > status_rank("acquired"):
        archive.set_status(key, "acquired")
    for name in names:
        swap_in(path, name)
    stale = [n for n in array_names(path) if n in LATER_PARTICLE_VARIABLES or (n in VARIABLES_UM and n not in names)]
    drop_variables(path, stale)
