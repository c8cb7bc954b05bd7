"""Errors of acquisition: each one line naming the device, plan or sample at fault.

Every failure of a stage, camera or plan stops the scan safely and reaches the user as one of
these (the command line prints it and exits 2).
"""
from __future__ import annotations

from catalog.errors import SedarchiveError


class AcquisitionError(SedarchiveError):
    """Base of acquisition errors."""

    def reworded(self, message: str) -> AcquisitionError:
        """This same error (class, attributes, traceback) telling ``message``: where a scan stopped, say."""
        self.args = (message,)
        return self


class PlanError(AcquisitionError):
    """A scan plan is malformed or does not fit the stage or the sample."""


class DeviceError(AcquisitionError):
    """A device could not be reached or answered nonsense."""


class StageError(DeviceError):
    """The stage controller refused a command (``error:N``) or misbehaved."""


class StageAlarm(StageError):
    """The stage controller is in an alarm state (``ALARM:N``); motion stopped."""

    def __init__(self, message: str, code: int | None = None):
        super().__init__(message)
        self.code = code


class StageTimeout(StageError):
    """The stage controller did not answer in time."""


class StageDisconnected(StageError):
    """The serial port went away (cable, power, driver)."""


class CameraError(DeviceError):
    """The camera could not be opened or returned no frame."""


class ScanCancelled(AcquisitionError):
    """The operator cancelled the scan; what was written stays and the scan can be resumed."""


class TruthError(AcquisitionError):
    """A simulated sample's ground truth is missing or malformed."""


__all__ = [
    "AcquisitionError",
    "CameraError",
    "DeviceError",
    "PlanError",
    "ScanCancelled",
    "StageAlarm",
    "StageDisconnected",
    "StageError",
    "StageTimeout",
    "TruthError",
]
