"""Counting grains on the plate: each grain once across overlapping frames, unbiased by frame edges.

Pure kernels (numpy in, numpy out): :mod:`~sedarchive.counting.frames` places frames on the plate
and checks stage positions, :mod:`~sedarchive.counting.repeats` joins the appearances of one grain
across frames, :mod:`~sedarchive.counting.edge_correction` weights whole grains by the inverse of
their chance to be seen whole, and :mod:`~sedarchive.counting.intervals` gives bootstrap intervals
of class fractions and proxies. :mod:`~sedarchive.counting.sample` wires them for one sample store.
"""
from __future__ import annotations

from sedarchive.counting.edge_correction import count_weights, whole_view_probability
from sedarchive.counting.frames import FrameLayout, frame_layout
from sedarchive.counting.intervals import bootstrap_class_totals, percentile_interval
from sedarchive.counting.repeats import join_appearances

__all__ = [
    "FrameLayout",
    "bootstrap_class_totals",
    "count_weights",
    "frame_layout",
    "join_appearances",
    "percentile_interval",
    "whole_view_probability",
]
