"""The whole simulated microscope for a scan plan: controller on a pty, real driver, simulated camera.

:class:`SimulatedMicroscope` starts a :class:`~acquisition.sim.controller.SimulatedController`,
connects the real :class:`~acquisition.grbl.GrblStage` (or :class:`~acquisition.marlin.MarlinStage`)
to its pseudo-terminal through pyserial, and points a
:class:`~acquisition.sim.camera.SimulatedCamera` at the controller's true stage position. Each plate
of the plan is its own virtual plate (the operator loads a new one); :meth:`load_plate` is the
operator prompt's simulated answer. After the scan, :meth:`write_truth` saves the ground truth of
every stored position beside the store.
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
    speed_mm_s, poll_interval_s
        Stage speed and the driver's status polling interval.
    driver_options
        Passed to the driver (``unlock``, ``home``, ``reply_timeout_s``, ...).
    """

    def __init__(self, plan: ScanPlan, *, seed: int = 0, dialect: str = "grbl", faults: Iterable[Fault] = (),
                 grains_per_mm2: float = 2.0, kind_fractions: Mapping[str, float] | None = None,
                 clump_fraction: float = 0.1, speed_mm_s: float = 500.0, poll_interval_s: float = 0.002,
                 controller: SimulatedController | None = None, **driver_options: Any):
        self.plan = plan
        self.seed = seed
        self.plates = plates_for(plan, seed=seed, grains_per_mm2=grains_per_mm2, kind_fractions=kind_fractions,
                                 clump_fraction=clump_fraction)
        self._own_controller = controller is None
        travel = {"travel_mm": plan.travel_mm} if plan.travel_mm is not None else {}
        self.controller = controller or SimulatedController(dialect=dialect, faults=faults, speed_mm_s=speed_mm_s, **travel)
        self.dialect = self.controller.dialect
        self._driver_options = dict(driver_options)
        if self.dialect == "grbl":
            self._driver_options.setdefault("poll_interval_s", poll_interval_s)
        self.stage: GrblStage | MarlinStage | None = None
        self.camera = SimulatedCamera(self.plates[0], lambda: self.controller.position, height=plan.height,
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
        return {"stage": f"simulated {self.dialect} controller", "camera": self.camera.settings}

    def write_truth(self, store_path: str | Path) -> Path | None:
        """Ground truth of every position done in the store, at the stage position it recorded."""
        return write_scan_truth(store_path, self.plan, self.plates)


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
