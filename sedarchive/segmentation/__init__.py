"""Segmentation: grains found in every focal layer of a stack, cropped, measured and flagged.

Kernels (pure numpy / scikit-image / OpenCV): :func:`segment_frame` (``slic``, the paper's method,
``fast``, or ``boundary``: a small U-Net in torch, :mod:`sedarchive.segmentation.boundary`), :func:`find_grains` (layers matched, widest box), :func:`crop_grains`,
:func:`extract_grains` (all of it for one stack). Orchestration on Dask: :func:`run_stage`
(imported from :mod:`sedarchive.segmentation.stage`).
"""
from __future__ import annotations

from sedarchive.segmentation.background import background_score, saturation_threshold
from sedarchive.segmentation.crops import crop_grain, crop_grains
from sedarchive.segmentation.extract import GrainTable, extract_grains
from sedarchive.segmentation.fast import segment_fast
from sedarchive.segmentation.frame import segment_frame
from sedarchive.segmentation.grains import Grain, find_grains, match_layers, segment_stack
from sedarchive.segmentation.measures import is_clump, shape_of, sharpness
from sedarchive.segmentation.settings import METHODS, SegmentSettings
from sedarchive.segmentation.slic import segment_slic

__all__ = [
    "METHODS",
    "Grain",
    "GrainTable",
    "SegmentSettings",
    "background_score",
    "crop_grain",
    "crop_grains",
    "extract_grains",
    "find_grains",
    "is_clump",
    "match_layers",
    "saturation_threshold",
    "segment_fast",
    "segment_frame",
    "segment_slic",
    "segment_stack",
    "shape_of",
    "sharpness",
]
