"""What the scan runner needs from a microscope: a ``Stage`` and a ``Camera``.

Real drivers (:class:`~acquisition.grbl.GrblStage`, :class:`~acquisition.marlin.MarlinStage`,
:class:`~acquisition.camera.OpenCVCamera`) and the simulated ones implement these protocols;
the runner knows nothing else about them. Positions are in mm, in the stage's work coordinates.
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

    def home(self) -> None:
        """Run the homing cycle (only for stages with limit switches)."""

    def move_to(self, x: float | None = None, y: float | None = None, z: float | None = None) -> None:
        """Move to an absolute position (axes left ``None`` stay) and return once motion has stopped."""

    def position(self) -> tuple[float, float, float]:
        """Where the stage is now, (x, y, z) in mm."""

    def stop(self) -> None:
        """Stop motion at once (feed hold); safe to call at any time, also on a broken link."""

    def close(self) -> None:
        """Release the link (the stage keeps its position)."""


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
