"""Small scan plans and a helper that scans through the whole simulated serial path."""
from __future__ import annotations

import pytest

from acquisition.plan import PlateArea, ScanPlan
from acquisition.runner import ScanReport, ScanRunner
from acquisition.sim.microscope import SimulatedMicroscope

#: 2 x 2 positions of 160x128 px frames at 8 µm/px, 6 focal layers: 6 moves per position.
SMALL = dict(plates=(PlateArea(0.0, 0.0, 2.5, 2.0),), width=160, height=128, pixel_size_um=8.0)


@pytest.fixture
def small_plan() -> ScanPlan:
    return ScanPlan(**SMALL)


def run_scan(archive, key, plan: ScanPlan, *, seed: int = 0, faults=(), controller=None, **driver) -> ScanReport:
    """One scan on a fresh simulated microscope (or on ``controller``); the truth sink writes the truth too."""
    driver.setdefault("reply_timeout_s", 0.5)
    microscope = SimulatedMicroscope(plan, seed=seed, faults=faults, controller=controller, **driver)
    with microscope:
        runner = ScanRunner(microscope.stage, microscope.camera, plan, on_plate=microscope.load_plate)
        return runner.run(archive, key, devices=microscope.devices, sinks=[microscope.truth_sink()])


@pytest.fixture(scope="session")
def scan():
    """``scan(archive, key, plan, seed=..., faults=..., controller=..., **driver_options)``."""
    return run_scan
