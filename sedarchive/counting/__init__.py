"""Counting, above clustering: the expert's names of clusters (:mod:`.labels`), grains per sample,
cluster and class with proxies and their bounds (:mod:`.proportions`), and the results for notebooks
(:mod:`.results`).

Counting reads what clustering wrote (the ``cluster`` arrays, the current K-means model); clustering
never calls counting: the pipeline and the commands do.
"""
from __future__ import annotations
