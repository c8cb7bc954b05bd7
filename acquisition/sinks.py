"""Where a scan's positions go: sinks the runner writes each complete position through.

A sink (pymmcore-plus calls them output handlers) gets ``begin`` once with the sample's store,
``write`` for every complete position (in the runner's writer thread, in position order), and
``end`` when the run stops for any reason. :class:`SampleSink` is the one every scan has: the
Zarr sample store, through ``catalog``, resumable (frames first, the done-mark last). The
simulated microscope adds a truth sink (:class:`~acquisition.sim.microscope.TruthSink`).

Beyond the frames and the stage position of each position (``stage_xy_mm``), the sample records
the focal heights the stage actually reached for every layer: ``stage_z_mm (position, layer)``.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

import catalog
from catalog import Archive, ArchiveError, SampleKey
from acquisition.errors import PlanError
from acquisition.plan import ScanPlan, ScanPosition

STAGE_Z = "stage_z_mm"


@dataclass(frozen=True)
class PositionRecord:
    """One complete position: its frames, and where the stage was for them (mm)."""

    position: ScanPosition
    stack: np.ndarray  # (layer, y, x, 3) uint8
    xy_mm: tuple[float, float]  # reached at the first layer
    z_mm: tuple[float, ...]  # reached, per layer


class ScanSink(Protocol):
    """What the runner writes through."""

    def begin(self, store_path: Path, plan: ScanPlan) -> None:
        """The scan of ``plan`` into the store at ``store_path`` starts (or resumes)."""

    def write(self, record: PositionRecord) -> None:
        """A complete position (called from the writer thread)."""

    def end(self) -> None:
        """The run stopped (done, failed or cancelled); called once."""


class SampleSink:
    """The sample store of ``key`` in ``archive``: created for ``plan``, or resumed when started with it."""

    def __init__(self, archive: Archive, key: SampleKey, plan: ScanPlan, *, devices: Mapping[str, Any] | None = None):
        self.archive, self.key, self.plan, self.devices = archive, key, plan, devices
        self.path: Path | None = None

    def open(self) -> np.ndarray:
        """Create or check the store; return which positions are already done."""
        self.path = prepare_sample(self.archive, self.key, self.plan, devices=self.devices)
        layers = self.plan.n_layers
        done = catalog.positions_done(self.path)
        try:  # new stores, and stores started before focal heights were recorded
            catalog.create_variables(self.path, {STAGE_Z: (("position", "layer"), (self.plan.n_positions, layers),
                                                           np.float64, (1, layers))}, overwrite=False)
        except ArchiveError:
            return done  # already there: a resumed scan
        unknown = np.full((1, layers), np.nan)
        for position in np.flatnonzero(done):  # taken before heights were recorded: written as unknown (NaN)
            catalog.write_region(self.path, STAGE_Z, int(position), unknown)
        return done

    def begin(self, store_path: Path, plan: ScanPlan) -> None:
        return None

    def write(self, record: PositionRecord) -> None:
        assert self.path is not None, "open() the sample sink first"
        catalog.write_region(self.path, STAGE_Z, record.position.index, np.asarray([record.z_mm], dtype=np.float64))
        catalog.write_position(self.path, record.position.index, record.stack, record.xy_mm)

    def end(self) -> None:
        """Mark the sample ``acquired`` once every position is in."""
        if self.path is None:
            return
        if catalog.positions_done(self.path).all() and catalog.read_attrs(self.path).get("status") == "acquiring":
            self.archive.set_status(self.key, "acquired")


def prepare_sample(archive: Archive, key: SampleKey, plan: ScanPlan, *, devices: Mapping[str, Any] | None = None) -> Path:
    """Create the sample for ``plan``, or check that an existing one was started with the same plan."""
    settings = plan.as_recorded()
    if not archive.exists(key):
        path = archive.create_sample(key, plan.n_positions, plan.n_layers, plan.height, plan.width,
                                     focal_offsets_um=plan.focal_offsets_um, pixel_size_um=plan.pixel_size_um)
        catalog.record_stage(path, "acquire", settings, acquire_devices=dict(devices or {}))
        _record_plates(path, plan)
        return path
    path = archive.sample_path(key)
    attrs = catalog.read_attrs(path)
    recorded = attrs.get("acquire_settings")
    if recorded is None:
        raise PlanError(f"sample {key.name} exists and was not made by a scan (ingested?); choose another depth or core")
    if recorded != settings:
        changed = ", ".join(sorted(k for k in set(recorded) | set(settings) if recorded.get(k) != settings.get(k)))
        if attrs.get("status", "acquiring") != "acquiring":
            raise PlanError(f"sample {key.name} is already {attrs.get('status')} (with another plan: {changed} differ); "
                            "choose another core or depth")
        raise PlanError(f"sample {key.name} was started with another plan ({changed} differ); "
                        "resume it with the same plan, or remove it first")
    if devices:
        catalog.update_attrs(path, acquire_devices=dict(devices))
    _record_plates(path, plan)
    return path


def _record_plates(path: Path, plan: ScanPlan) -> None:
    """The plate of each position, so that counting keeps the frames of different plates apart."""
    catalog.update_attrs(path, plate_of_position=[int(p.plate) for p in plan.positions()])
