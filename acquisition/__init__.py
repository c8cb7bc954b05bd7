"""Acquisition: scan a plate with a motorised stage and a camera, or with the simulated microscope.

Devices sit behind the :class:`Stage` and :class:`Camera` protocols, with optional capabilities
(:class:`Homing`, :class:`TravelLimited`); stages are one :class:`GcodeStage` speaking a dialect
(:class:`GrblStage`, :class:`MarlinStage`) over pyserial; cameras are OpenCV captures. A
:class:`ScanPlan` is data whose ``steps()`` :class:`ScanRunner` executes, writing each position
through sinks (:class:`SampleSink`: the sample store, through ``catalog``, resumably). The simulated
microscope lives in :mod:`acquisition.sim` (also sedarchive's synthetic-data factory), which the
runtime modules never import. Imports only ``catalog``.
"""
from __future__ import annotations

from acquisition.camera import OpenCVCamera
from acquisition.devices import Camera, Homing, Stage, TravelLimited
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
from acquisition.gcode import GcodeStage
from acquisition.grbl import GrblDialect, GrblStage
from acquisition.marlin import MarlinDialect, MarlinStage
from acquisition.plan import PlateArea, ScanPlan, ScanPosition
from acquisition.runner import RunState, ScanProgress, ScanReport, ScanRunner
from acquisition.sinks import PositionRecord, SampleSink, ScanSink

__all__ = [
    "AcquisitionError",
    "Camera",
    "CameraError",
    "DeviceError",
    "GcodeStage",
    "GrblDialect",
    "GrblStage",
    "Homing",
    "MarlinDialect",
    "MarlinStage",
    "OpenCVCamera",
    "PlanError",
    "PlateArea",
    "PositionRecord",
    "RunState",
    "SampleSink",
    "ScanCancelled",
    "ScanPlan",
    "ScanPosition",
    "ScanProgress",
    "ScanReport",
    "ScanRunner",
    "ScanSink",
    "Stage",
    "StageAlarm",
    "StageDisconnected",
    "StageError",
    "StageTimeout",
    "TravelLimited",
    "TruthError",
]
