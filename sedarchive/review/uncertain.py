"""The classifier's side of the review page: the grains it is least sure of, and the expert's corrections.

``GET /api/uncertain?limit=N`` lists them (least sure first, grains already corrected left out);
``POST /api/correction`` ``{"sample", "particle", "class"}`` records one answer in
``ARCHIVE/corrections.yaml`` (through :mod:`sedarchive.classification.corrections`); the next
``sedarchive classify-train`` uses it as training data and gives the model a new id.
"""
from __future__ import annotations

from typing import Any

from catalog import Archive
from sedarchive.classification.corrections import add_correction, least_sure
from sedarchive.classification.model import ClassificationError, current_classifier

MAX_LIMIT = 200
_FIELDS = {"sample": str, "particle": int, "class": str}


def uncertain_page(archive: Archive, limit: int) -> dict[str, Any]:
    """``{"model", "classes", "grains": [{sample, particle, class, probability, image}]}``; no model: empty list."""
    model = current_classifier(archive)
    if model is None:
        return {"model": None, "classes": [], "grains": []}
    grains = least_sure(archive, max(1, min(int(limit), MAX_LIMIT)))
    for g in grains:
        g["image"] = f"/grain/{g['sample']}/{g['particle']}.jpg"
    return {"model": model.id, "classes": list(model.classes), "grains": grains}


def correct(archive: Archive, request: Any, user: str) -> dict[str, Any]:
    """Check a correction sent by the page field by field, then record it; returns the stored entry."""
    if not isinstance(request, dict) or set(request) != set(_FIELDS):
        raise ClassificationError(f"a correction is a JSON object with exactly {', '.join(_FIELDS)}")
    for name, kind in _FIELDS.items():
        value = request[name]
        if not isinstance(value, kind) or isinstance(value, bool) or (kind is str and len(value) > 200):
            raise ClassificationError(f"correction field {name!r} must be {kind.__name__}")
    return add_correction(archive, request["sample"], request["particle"], request["class"], by=user)
