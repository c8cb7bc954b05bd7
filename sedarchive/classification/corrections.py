"""``ARCHIVE/corrections.yaml``: the expert's class for single grains, and the grains worth asking about.

.. code-block:: yaml

    version: 1
    grains:
      - {sample: AI-3352_100-102cm, particle: 17, class: quartz, was: dark, model: c5-..., by: expert, at: ...}

One entry per grain (a later correction of the same grain replaces the earlier one). The review
server lists the grains the current classifier is least sure of (:func:`least_sure`) and records the
expert's answer (:func:`add_correction`); ``classify-train`` adds them to the training set.
"""
from __future__ import annotations

import datetime as dt
import heapq
import re
from typing import Any

import numpy as np
import yaml

from catalog import Archive, SampleKey, read_array, read_attrs
from catalog.files import atomic_write
from catalog.intake_catalog import locked_file
from catalog.store import array_names, array_shape, read_flags
from sedarchive.classification.model import ClassificationError, current_classifier
from sedarchive.counting.labels import load_labels

VERSION = 1
_CLASS_RE = re.compile(r"^[a-z][a-z0-9_]*$")


def load_corrections(archive: Archive) -> dict[tuple[str, int], dict[str, Any]]:
    """``(sample, particle) -> entry`` (empty before the first correction)."""
    path = archive.corrections_path
    if not path.exists():
        return {}
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise ClassificationError(f"{path} is not valid YAML: {str(err).splitlines()[0]}") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("grains", []), list):
        raise ClassificationError(f"{path}: expected a mapping with version and a list of grains")
    out = {}
    for i, entry in enumerate(raw.get("grains") or []):
        if (not isinstance(entry, dict) or not isinstance(entry.get("sample"), str)
                or not isinstance(entry.get("particle"), int) or not _CLASS_RE.match(str(entry.get("class", "")))):
            raise ClassificationError(f"{path}: grain entry {i} needs sample (text), particle (integer) and class")
        out[(entry["sample"], int(entry["particle"]))] = dict(entry)
    return out


def add_correction(archive: Archive, sample: Any, particle: Any, class_name: Any, *, by: str = "expert") -> dict[str, Any]:
    """Record the expert's class of one grain (checked: the sample, the grain and the class exist)."""
    if not isinstance(sample, str) or not isinstance(particle, int) or isinstance(particle, bool):
        raise ClassificationError("a correction needs sample (text) and particle (integer)")
    try:
        key = SampleKey.from_name(sample)
    except Exception:  # noqa: BLE001 - any malformed name is the same one-line error
        raise ClassificationError(f"no sample {sample!r} in {archive.root}") from None
    path = archive.sample_path(key)
    if not path.exists() or "latent" not in array_names(path):
        raise ClassificationError(f"no encoded sample {sample!r} in {archive.root}")
    n = int(array_shape(path, "latent")[0])
    if not 0 <= particle < n:
        raise ClassificationError(f"sample {sample} has grains 0..{n - 1}, not {particle}")
    model = current_classifier(archive)
    known = set(load_labels(archive).classes) | set(model.classes if model else ())
    if not isinstance(class_name, str) or class_name not in known:
        raise ClassificationError(f"class {class_name!r} is not one of {', '.join(sorted(known))}")
    attrs = read_attrs(path)
    was = None
    if "grain_class" in array_names(path) and attrs.get("classifier_id"):
        code = int(read_array(path, "grain_class", slice(particle, particle + 1))[0])
        classes = attrs.get("grain_classes") or []
        was = classes[code] if 0 <= code < len(classes) else None
    entry = {"sample": sample, "particle": particle, "class": class_name, "was": was,
             "model": attrs.get("classifier_id"), "by": str(by),
             "at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")}
    with locked_file(archive.root / ".corrections.lock"):
        entries = load_corrections(archive)
        entries[(sample, particle)] = entry
        text = yaml.safe_dump({"version": VERSION, "grains": [entries[k] for k in sorted(entries)]},
                              sort_keys=False, allow_unicode=True)
        atomic_write(archive.corrections_path, text)
    return entry


def least_sure(archive: Archive, limit: int = 50, *, include_flagged: bool = False) -> list[dict[str, Any]]:
    """The ``limit`` grains the current classifier gave the lowest probability, not yet corrected.

    Only grains of samples classified by the current model count; each row is ``{sample, particle,
    class, probability}``, least sure first.
    """
    model = current_classifier(archive)
    if model is None:
        raise ClassificationError(f"{archive.root}: no classifier yet; run `sedarchive classify-train` first")
    done = load_corrections(archive)
    heap: list[tuple[float, str, int, str]] = []
    for row in archive.samples(status="encoded"):
        attrs = read_attrs(row.path)
        if attrs.get("classifier_id") != model.id or "class_probability" not in array_names(row.path):
            continue
        prob = np.asarray(read_array(row.path, "class_probability"), float)
        code = np.asarray(read_array(row.path, "grain_class"), np.int64)
        keep = np.isfinite(prob) & (code >= 0)
        if not include_flagged and len(prob):
            chopped, clump = read_flags(row.path, len(prob))
            keep &= ~(chopped | clump)
        for i in np.flatnonzero(keep)[np.argsort(prob[keep], kind="stable")[:limit + len(done)]]:
            if (row.name, int(i)) in done:
                continue
            item = (-float(prob[i]), row.name, int(i), model.classes[code[i]])
            if len(heap) < limit:
                heapq.heappush(heap, item)
            elif item > heap[0]:
                heapq.heapreplace(heap, item)
    rows = sorted(heap, key=lambda t: (-t[0], t[1], t[2]))
    return [{"sample": s, "particle": p, "class": c, "probability": round(-negp, 4), "model": model.id}
            for negp, s, p, c in rows]
