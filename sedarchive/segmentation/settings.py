"""Settings of the segment stage: defaults that follow the paper, loadable from YAML, recorded in the store."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from sedarchive.errors import InputError
from sedarchive.settings_files import check_keys, read_settings_file

METHODS = ("slic", "fast", "boundary")

#: Settings that change how the work is cut into tasks, not what it produces: not recorded, and a
#: change of them does not make finished samples run again.
EXECUTION_ONLY = ("positions_per_task",)
#: Settings of the boundary method: recorded only when set (stores segmented before they existed stay done).
RECORDED_WHEN_SET = ("weights", "grain_px")


@dataclass(frozen=True)
class SegmentSettings:
    """How grains are found, cropped and flagged.

    Examples
    --------
    >>> SegmentSettings().method, SegmentSettings().crop_size
    ('slic', 280)
    >>> SegmentSettings(method="fast").recorded()["method"]
    'fast'
    """

    #: ``slic`` (the paper: superpixels, then plate or grain), ``fast`` (per pixel) or ``boundary``
    #: (a small U-Net's plate / interior / boundary classes, then watershed; needs ``weights``).
    method: str = "slic"
    #: boundary: the network's weights file (``bench/train_boundary.py``; never downloaded).
    weights: str | None = None
    #: boundary: median grain diameter in pixels of the frames; ``None``: estimated per stack.
    grain_px: float | None = None
    #: The plate: ``auto`` (its colour learnt from the sample's frames), ``green``, ``black``,
    #: ``white``, ``R,G,B``, or ``paper`` (the paper's rule: HSV saturation, green plate only).
    background: str = "auto"
    #: Background model: a pixel (fast) or superpixel (slic) this far (CIE ΔE) from the local plate
    #: colour is grain; ``None``: 4x the plate's own spread, at least 6 (per frame).
    min_delta_e: float | None = None
    #: Objects smaller than a disc of this diameter (µm) are specks, when the pixel size is known
    #: (a grain cut by the frame edge may show less of itself and is kept: it is flagged chopped).
    min_diameter_um: float = 40.0
    #: Touching grains are split where they meet through a neck narrower than ``neck_ratio`` of the
    #: smaller grain's inscribed radius (watershed on the distance transform).
    split_touching: bool = True
    neck_ratio: float = 0.35
    #: ... and a dark grain touching a pale one is split by colour, whatever the shape
    #: (:func:`~sedarchive.segmentation.touching.split_by_colour`; issue 12).
    split_by_colour: bool = True
    #: paper: saturation (0..1) at or above which a superpixel / pixel is plate; ``None``: Otsu per frame.
    saturation_threshold: float | None = None
    #: Otsu's two classes must differ by this much mean saturation, else the frame is an empty plate.
    min_contrast: float = 0.2
    #: paper: only green pixels count as saturated plate (a red grain is not plate); ``False``: saturation only.
    hue_gate: bool = True
    #: A frame with less plate-green than this fraction is refused (not a photograph of the plate).
    min_plate_fraction: float = 0.02
    #: Objects smaller than this (pixels, in one focal layer) are specks, not grains.
    min_area_px: int = 30
    #: SLIC: superpixels about this many pixels across; compactness and pre-smoothing of SLIC.
    superpixel_px: int = 10
    slic_compactness: float = 10.0
    slic_sigma: float = 0.0
    #: fast: box smoothing of the saturation (pixels) and the opening that removes noise (pixels).
    smooth_px: int = 5
    open_px: int = 3
    #: Crops: side of the square grain images; ``pad``: pad the box to a square instead of stretching.
    crop_size: int = 280
    pad: bool = False
    #: Clumps: a grain with two lobes joined by a neck narrower than ``clump_neck_ratio`` of the
    #: smaller lobe's inscribed radius (grains touching but left merged), or whose solidity is below
    #: ``clump_solidity``, is flagged as a clump. ``clump_core_fraction``: see ``shape_of``.
    clump_core_fraction: float = 0.5
    clump_solidity: float = 0.75
    clump_neck_ratio: float = 0.4
    #: Stack positions segmented by one Dask task (the unit that a killed run redoes).
    positions_per_task: int = 4

    def __post_init__(self) -> None:
        self.validate()

    def validate(self, source: str = "segment settings") -> None:
        if self.method not in METHODS:
            raise InputError(f"{source}: method {self.method!r} is not one of {', '.join(METHODS)}")
        if self.method == "boundary" and not self.weights:
            raise InputError(f"{source}: method boundary needs a weights file (weights, --boundary-weights FILE)")
        if self.grain_px is not None and not float(self.grain_px) > 0:
            raise InputError(f"{source}: grain_px must be positive (or null to estimate it), got {self.grain_px}")
        from sedarchive.segmentation.background_model import parse_background

        parse_background(self.background, f"{source}: background")
        if (self.min_delta_e is not None and not float(self.min_delta_e) > 0) or self.min_diameter_um < 0:
            raise InputError(f"{source}: min_delta_e must be positive and min_diameter_um not negative")
        t = self.saturation_threshold
        if t is not None and not 0.0 < float(t) < 1.0:
            raise InputError(f"{source}: saturation_threshold {t} must be between 0 and 1 (or null for automatic)")
        for name in ("min_area_px", "superpixel_px", "crop_size", "positions_per_task"):
            if int(getattr(self, name)) < 1:
                raise InputError(f"{source}: {name} must be at least 1, got {getattr(self, name)}")
        for name in ("smooth_px", "open_px"):
            if int(getattr(self, name)) < 0:
                raise InputError(f"{source}: {name} must not be negative, got {getattr(self, name)}")
        for name in ("min_contrast", "min_plate_fraction", "clump_core_fraction", "clump_solidity",
                     "neck_ratio", "clump_neck_ratio"):
            if not 0.0 <= float(getattr(self, name)) <= 1.0:
                raise InputError(f"{source}: {name} must be between 0 and 1, got {getattr(self, name)}")
        if self.slic_compactness <= 0 or self.slic_sigma < 0:
            raise InputError(f"{source}: slic_compactness must be positive and slic_sigma not negative")

    # -- conversions ------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def recorded(self) -> dict[str, Any]:
        """The settings that decide the result (written to the store as ``segment_settings``)."""
        return {k: v for k, v in self.to_dict().items()
                if k not in EXECUTION_ONLY and not (k in RECORDED_WHEN_SET and v is None)}

    def min_area_at(self, pixel_size_um: float | None) -> int:
        """Smallest grain area in pixels: ``min_diameter_um`` at this pixel size, at least ``min_area_px``.

        Examples
        --------
        >>> SegmentSettings().min_area_at(None), SegmentSettings().min_area_at(2.0)
        (30, 314)
        """
        if not pixel_size_um or pixel_size_um <= 0:
            return int(self.min_area_px)
        import math

        return max(int(self.min_area_px), int(math.pi / 4 * (self.min_diameter_um / pixel_size_um) ** 2))

    def replace(self, **changes: Any) -> SegmentSettings:
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_dict(cls, values: dict[str, Any], source: str = "segment settings") -> SegmentSettings:
        known = {f.name: f for f in fields(cls)}
        check_keys(values, known, source)
        clean = {}
        for name, value in values.items():
            default = known[name].default
            try:
                if value is None or default is None or isinstance(default, str):
                    clean[name] = value if value is None or default is None else str(value)
                elif isinstance(default, bool):
                    if not isinstance(value, bool):
                        raise TypeError
                    clean[name] = value
                else:
                    clean[name] = type(default)(value)
            except (TypeError, ValueError):
                raise InputError(f"{source}: {name} = {value!r} is not a {type(default).__name__}") from None
        if clean.get("min_delta_e") is not None:
            try:
                clean["min_delta_e"] = float(clean["min_delta_e"])
            except (TypeError, ValueError):
                raise InputError(f"{source}: min_delta_e must be a number or null") from None
        for name in ("grain_px", "weights"):
            if clean.get(name) is not None:
                try:
                    clean[name] = float(clean[name]) if name == "grain_px" else str(clean[name])
                except (TypeError, ValueError):
                    raise InputError(f"{source}: {name} must be a number or null") from None
        if clean.get("saturation_threshold") is not None:
            try:
                clean["saturation_threshold"] = float(clean["saturation_threshold"])
            except (TypeError, ValueError):
                raise InputError(f"{source}: saturation_threshold must be a number or null") from None
        settings = cls.__new__(cls)
        for f in fields(cls):
            object.__setattr__(settings, f.name, clean.get(f.name, f.default))
        settings.validate(source)
        return settings

    @classmethod
    def from_yaml(cls, path: str | Path) -> SegmentSettings:
        """Settings from a YAML (or TOML) file of ``name: value`` lines (missing names keep their defaults)."""
        return cls.from_dict(read_settings_file(path, "segment", section="segment"), source=f"segment settings {path}")
