"""The grain classifier: trained from the expert's names of clusters, applied to new samples without refitting.

Above ``counting`` (it reads labels.yaml through it) and below the outputs (the review page lists
the grains it is least sure of and records corrections through :mod:`.corrections`):

- :mod:`.training` (``classify-train``): training set, logistic regression, held-out metrics;
- :mod:`.apply` (``classify``): ``grain_class``/``class_probability`` per grain on Dask, ``classified.zarr``;
- :mod:`.adjust`: fractions corrected for the measured confusion, bootstrap intervals (kernels);
- :mod:`.metrics`: split, confusion, precision/recall, reliability curve (kernels);
- :mod:`.model`: ``models/classifier-<id>/`` on disk; :mod:`.corrections`: ``corrections.yaml``.
"""
from __future__ import annotations

from sedarchive.classification.model import ClassificationError, ClassifierModel, current_classifier

__all__ = ["ClassificationError", "ClassifierModel", "current_classifier"]
