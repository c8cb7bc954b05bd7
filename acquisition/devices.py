"""What the scan runner needs from a microscope: a ``Stage`` and a ``Camera``, and what a stage may offer.

Real drivers (:class:`~acquisition.grbl.GrblStage`, :class:`~acquisition.marlin.MarlinStage`,
:class:`~acquisition.camera.OpenCVCamera`) and the simulated ones implement these protocols;
the runner knows nothing else about them. Positions are in mm, in the stage's work coordinates.

Optional capabilities are protocols of their own, checked with ``isinstance`` (as ophyd-async's
``Stoppable`` or ``Locatable``): :class:`Homing` (a homing cycle) and :class:`TravelLimited`
(limits the controller enforces, for checking a plan before anything moves). A stage's
``move_to`` may return the position it reached (read anyway to check the move); the runner then
asks ``position()`` only of stages that return ``None``.
"""
from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class Stage(Protocol):
    """A motorised XYZ stage."""

    name: str

    def connect(self) -> None:
        """Open the link, wait until the controller is ready, set absolute mm moves."""

    def move_to(self, x: float | None = None, y: float | None = None,
                z: float | None = None) -> tuple[float, float, float] | None:
        """Move to an absolute position (axes left ``None`` stay), return once motion has stopped.

        Returns the position reached when the stage read it, else ``None``.
        """

    def position(self) -> tuple[float, float, float]:
        """Where the stage is now, (x, y, z) in mm."""

    def stop(self) -> None:
        """Stop motion at once (feed hold); safe to call at any time, also on a broken link."""

    def close(self) -> None:
        """Release the link (the stage keeps its position)."""


@runtime_checkable
class Homing(Protocol):
    """A stage with limit switches and a homing cycle."""

    def home(self) -> None:
        """Run the homing cycle."""


@runtime_checkable
class TravelLimited(Protocol):
    """A stage whose controller refuses (or alarms on) targets outside known limits."""

    def travel_limits(self) -> tuple[tuple[float, float], ...] | None:
        """(low, high) in mm per axis x, y, z, in work coordinates; ``None`` when nothing is enforced."""


@runtime_checkable
class Camera(Protocol):
    """A colour camera on the microscope."""

    name: str

    def connect(self) -> None:
        """Open the camera and apply its settings."""

    def flush(self) -> None:
        """Drop frames exposed while the stage moved (called after every move)."""

    def snap(self) -> np.ndarray:
        """One frame, (height, width, 3) uint8 RGB."""

    @property
    def settings(self) -> dict[str, Any]:
        """What to record about the camera in the sample (source, resolution, ...)."""

    def close(self) -> None:
        """Release the camera."""
