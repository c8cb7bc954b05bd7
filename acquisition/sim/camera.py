"""The simulated camera: it photographs what the stage position shows of a virtual plate.

It asks a position source where the stage is (the simulated controller's true position, or a
real stage's reported one) and renders that focal plane with
:func:`~acquisition.sim.render.render_stack`, so a stage that did not move where it was told
produces the wrong picture, as a real one would.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from acquisition.sim.plate import VirtualPlate
from acquisition.sim.render import render_stack


class SimulatedCamera:
    """A camera over a :class:`VirtualPlate`; stage x, y (mm) are plate coordinates, z (mm) the focal plane.

    Parameters
    ----------
    plate
        The specimen.
    position
        Returns the stage's (x, y, z) in mm when called.
    height, width, pixel_size_um
        Frame geometry.
    z_reference_mm
        Stage height whose focal plane is the plate's reference (focus height 0).
    render_options
        Passed on to ``render_stack`` (``noise_sd``, ``vignetting``, ``defocus_per_um``).
    """

    def __init__(self, plate: VirtualPlate, position: Callable[[], tuple[float, float, float]], *,
                 height: int = 256, width: int = 320, pixel_size_um: float = 8.0, z_reference_mm: float = 0.0,
                 **render_options: Any):
        self.plate = plate
        self._position = position
        self.height, self.width, self.pixel_size_um = int(height), int(width), float(pixel_size_um)
        self.z_reference_mm = float(z_reference_mm)
        self.render_options = render_options
        self.name = f"simulated camera (plate seed {plate.seed})"
        self.frames = 0
        self.flushes = 0

    def connect(self) -> None:
        return None

    def flush(self) -> None:
        self.flushes += 1

    def snap(self) -> np.ndarray:
        x, y, z = self._position()
        stack, _ = render_stack(self.plate, x, y, z_um=round((z - self.z_reference_mm) * 1000.0, 6),
                                focal_offsets_um=(0.0,), height=self.height, width=self.width,
                                pixel_size_um=self.pixel_size_um, truth=False, **self.render_options)
        self.frames += 1
        return stack[0]

    @property
    def settings(self) -> dict[str, Any]:
        return {"source": "sim", "plate_seed": self.plate.seed, "width": self.width, "height": self.height,
                "pixel_size_um": self.pixel_size_um, **self.render_options}

    def close(self) -> None:
        return None
