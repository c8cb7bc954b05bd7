"""The whole simulated microscope for a scan plan: controller on a pty, real driver, simulated camera.

:class:`SimulatedMicroscope` starts a :class:`~acquisition.sim.controller.SimulatedController`,
connects the real :class:`~acquisition.grbl.GrblStage` (or :class:`~acquisition.marlin.MarlinStage`)
to its pseudo-terminal through pyserial, and points a
:class:`~acquisition.sim.camera.SimulatedCamera` at the controller's true stage position. Each plate
of the plan is its own virtual plate (the operator loads a new one); :meth:`load_plate` is the
operator prompt's simulated answer. The ground truth of every stored position is written beside
the store by a :class:`TruthSink` (:meth:`SimulatedMicroscope.truth_sink`), which the runner writes
through along with the sample.

The simulated stage is a microscope stage: 1000 steps/mm (1 µm steps), homing at 3000 mm/min. A
plan with ``travel_mm`` gets a controller with soft limits on (``$20=1``) over that travel, and the
G54 work offset that puts the plan's origin at the far end of it (machine ``[-travel, 0]``).
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

import catalog
from acquisition.grbl import GrblStage
from acquisition.marlin import MarlinStage
from acquisition.plan import ScanPlan
from acquisition.sim.camera import SimulatedCamera
from acquisition.sim.controller import Fault, SimulatedController
from acquisition.sim.plate import VirtualPlate
from acquisition.sim.plate_truth import scan_truth, write_plate_truth
from acquisition.sim.render import TRUTH_COLUMNS, truth_at
from acquisition.sim.sample import write_truth


def plates_for(plan: ScanPlan, *, seed: int = 0, grains_per_mm2: float = 2.0,
               kind_fractions: Mapping[str, float] | None = None, clump_fraction: float = 0.1) -> list[VirtualPlate]:
    """One virtual plate per plate of the plan, each covering its area (plate ``i`` has seed ``seed + 1000 i``)."""
    fw, fh = plan.frame_mm
    plates = []
    for i, area in enumerate(plan.plates):
        xs, ys = plan.grid(area)
        plates.append(VirtualPlate.generate(
            seed=seed + 1000 * i,
            width_mm=max(xs) + fw / 2 + 0.5, height_mm=max(ys) + fh / 2 + 0.5,
            grains_per_mm2=grains_per_mm2, kind_fractions=kind_fractions, clump_fraction=clump_fraction,
        ))
    return plates


class SimulatedMicroscope:
    """A stage controller simulated behind a pty, driven by the real driver, with a simulated camera.

    Parameters
    ----------
    plan
        The scan plan (frame geometry and plate areas).
    seed, grains_per_mm2, kind_fractions, clump_fraction
        The virtual plates.
    dialect
        ``"grbl"`` or ``"marlin"``.
    faults
        Faults injected into the controller.
    speed_mm_s
        Stage speed.
    controller_options
        Passed to a new :class:`SimulatedController` (``start_delay_s``, ``settings``, ``time_scale``...).
    driver_options
        Passed to the driver (``unlock``, ``home``, ``reply_timeout_s``, ``poll_interval_s``, ...).
    """

    def __init__(self, plan: ScanPlan, *, seed: int = 0, dialect: str = "grbl", faults: Iterable[Fault] = (),
                 grains_per_mm2: float = 2.0, kind_fractions: Mapping[str, float] | None = None,
                 clump_fraction: float = 0.1, speed_mm_s: float = 500.0,
                 controller: SimulatedController | None = None, controller_options: Mapping[str, Any] | None = None,
                 **driver_options: Any):
        self.plan = plan
        self.seed = seed
        self.plates = plates_for(plan, seed=seed, grains_per_mm2=grains_per_mm2, kind_fractions=kind_fractions,
                                 clump_fraction=clump_fraction)
        self._own_controller = controller is None
        options: dict[str, Any] = {"steps_per_mm": 1000.0, "settings": {24: 500.0, 25: 3000.0}}
        if plan.travel_mm is not None:
            options.update(travel_mm=plan.travel_mm, soft_limits=True, work_offset=tuple(-t for t in plan.travel_mm))
        options.update(controller_options or {})
        self.controller = controller or SimulatedController(dialect=dialect, faults=faults, speed_mm_s=speed_mm_s,
                                                            **options)
        self.dialect = self.controller.dialect
        self._driver_options = dict(driver_options)
        self.stage: GrblStage | MarlinStage | None = None
        self.camera = SimulatedCamera(self.plates[0], lambda: self.controller.work_position, height=plan.height,
                                      width=plan.width, pixel_size_um=plan.pixel_size_um, z_reference_mm=plan.z_mm)

    def __enter__(self) -> SimulatedMicroscope:
        if self._own_controller or not self.controller.port:
            self.controller.start()
        driver = GrblStage if self.dialect == "grbl" else MarlinStage
        self.stage = driver(self.controller.port, **self._driver_options)
        try:
            self.stage.connect()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self.stage is not None:
            self.stage.close()
        if self._own_controller:
            self.controller.close()

    def load_plate(self, plate: int, n_plates: int | None = None) -> None:
        """The operator loads plate ``plate`` (the runner's ``on_plate`` callback)."""
        self.camera.plate = self.plates[plate]

    @property
    def devices(self) -> dict[str, Any]:
        devices = {"stage": f"simulated {self.dialect} controller", "camera": self.camera.settings}
        if self.stage is not None:
            devices["controller"] = self.stage.describe()
        return devices

    def write_truth(self, store_path: str | Path) -> Path | None:
        """Ground truth of every position done in the store, at the stage position it recorded."""
        return write_scan_truth(store_path, self.plan, self.plates)

    def truth_sink(self) -> TruthSink:
        """A sink for the runner that writes the ground truth beside the store when the run ends."""
        return TruthSink(self.plan, self.plates)


class TruthSink:
    """The ground truth of a simulated scan: ``<name>.truth.csv`` of every position done, at the
    stage position the store recorded, rewritten when a run ends (also a failed one, so a resumed
    scan's truth covers every position)."""

    def __init__(self, plan: ScanPlan, plates: list[VirtualPlate]):
        self.plan, self.plates = plan, plates
        self.path: Path | None = None
        self.written: Path | None = None

    def begin(self, store_path: Path, plan: ScanPlan) -> None:
        self.path = Path(store_path)

    def write(self, record: Any) -> None:
        return None  # the truth is drawn from the store's positions at the end

    def end(self) -> None:
        if self.path is not None:
            self.written = write_scan_truth(self.path, self.plan, self.plates)


def write_scan_truth(store_path: str | Path, plan: ScanPlan, plates: list[VirtualPlate]) -> Path | None:
    """Write ``<name>.truth.csv`` and the plate truth for the positions of a scanned store (from its ``stage_xy_mm``).

    Nothing is written (``None``) when the store was not scanned with ``plan``.
    """
    if catalog.read_attrs(store_path).get("acquire_settings") != plan.as_recorded():
        return None
    done = catalog.positions_done(store_path)
    xy = catalog.read_array(store_path, "stage_xy_mm")
    tables = []
    frames = []
    for position in plan.positions():
        if not done[position.index]:
            continue
        frames.append((position.plate, *xy[position.index]))
        truth = truth_at(plates[position.plate], *xy[position.index], height=plan.height, width=plan.width,
                         pixel_size_um=plan.pixel_size_um)
        truth["position"] = position.index
        tables.append(truth)
    table = pd.concat(tables, ignore_index=True) if tables else pd.DataFrame(columns=list(TRUTH_COLUMNS))
    grains, appearances = scan_truth(plates, frames, height=plan.height, width=plan.width,
                                     pixel_size_um=plan.pixel_size_um)
    # scan_truth numbers the done positions 0, 1, ...; give them their store index
    done_index = [p.index for p in plan.positions() if done[p.index]]
    appearances["position"] = np.asarray(done_index, int)[appearances["position"].to_numpy(int)] if len(appearances) else []
    write_plate_truth(store_path, grains, appearances)
    return write_truth(store_path, table)
