"""Counting, above clustering: the expert's names of clusters (:mod:`.labels`), grains per sample,
cluster and class with proxies and their bounds (:mod:`.proportions`), and the results for notebooks
(:mod:`.results`).

Counting reads what clustering wrote (the ``cluster`` arrays, the current K-means model); clustering
never calls counting: the pipeline and the commands do.

Each grain is counted once across overlapping frames, unbiased by frame edges, by pure kernels (numpy
in, numpy out): :mod:`.frames` places frames on the plate and checks stage positions, :mod:`.repeats`
joins the appearances of one grain across frames, :mod:`.edge_correction` weights whole grains by the
inverse of their chance to be seen whole, :mod:`.intervals` gives bootstrap intervals of class
fractions and proxies and :mod:`.class_estimates` combines them; :mod:`.sample` wires them for one
sample store.
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
