"""Acquisition: scan a plate with a motorised stage and a camera, or with the simulated microscope.

Devices sit behind the :class:`Stage` and :class:`Camera` protocols (GRBL and Marlin stages over
pyserial, OpenCV cameras); a :class:`ScanPlan` is data; :class:`ScanRunner` executes it into a
sample of the archive through ``catalog``, resumably. The simulated microscope lives in
:mod:`acquisition.sim` (also sedarchive's synthetic-data factory). Imports only ``catalog``.
"""
from __future__ import annotations

from acquisition.camera import OpenCVCamera
from acquisition.devices import Camera, Stage
from acquisition.errors import (
    AcquisitionError,
    CameraError,
    DeviceError,
    PlanError,
    ScanCancelled,
    StageAlarm,
    StageDisconnected,
    StageError,
    StageTimeout,
    TruthError,
)
from acquisition.grbl import GrblStage
from acquisition.marlin import MarlinStage
from acquisition.plan import PlateArea, ScanPlan, ScanPosition
from acquisition.runner import ScanProgress, ScanReport, ScanRunner

__all__ = [
    "AcquisitionError",
    "Camera",
    "CameraError",
    "DeviceError",
    "GrblStage",
    "MarlinStage",
    "OpenCVCamera",
    "PlanError",
    "PlateArea",
    "ScanCancelled",
    "ScanPlan",
    "ScanPosition",
    "ScanProgress",
    "ScanReport",
    "ScanRunner",
    "Stage",
    "StageAlarm",
    "StageDisconnected",
    "StageError",
    "StageTimeout",
    "TruthError",
]
