"""Pitt-Google's classifier outputs -> the lightened alert's ``scores`` and ``classifiers``.

A classifier topic's message is its input (the lite alert) plus one record named after the classifier:

- ``SuperNNova`` (``ztf-SuperNNova``: ``broker/cloud_run/ztf/classify_snn/main.py``; ``lsst-supernnova``:
  ``broker/cloud_run/lsst/classify_snn/main.py``): ``prob_class0`` (SN Ia), ``prob_class1`` (not Ia; for ZTF's
  model core-collapse), ``predicted_class`` (0 or 1; all three null for a solar-system LSST source). Attribute
  ``pg_supernnova_class`` (LSST, newer ZTF) or ``supernnova_class`` (older ZTF).
- ``variability`` (``lsst-variability``: ``broker/cloud_run/lsst/variability/main.py``): per band
  ``n_detections_<band>_band`` and ``<band>_psfFluxStetsonJ`` (NaN, so null, below 2 points). Attribute
  ``pg_variable``: ``likely`` when a g, r or u band has at least 30 detections and a Stetson J above 20.
- ``upsilon`` (``lsst-upsilon``: ``broker/cloud_run/lsst/classify_upsilon/main.py``): ``diaObjectId``,
  ``diaSourceId`` and per band ``<band>_label``, ``<band>_probability``, ``<band>_flag`` (0 good, 1 suspicious);
  attributes ``pg_upsilon_<band>_label`` / ``_flag``.
- ``xmatch_gaia`` (``lsst-xmatch``: ``broker/cloud_run/lsst/xmatch/main.py``): for ``closest``,
  ``second_closest``, ``third_closest``: ``<o>_gaia_source`` (Gaia DR3 source_id), ``<o>_gaia_source_class``,
  ``<o>_gaia_source_class_score`` and ``separation_to_<o>_gaia_source`` (arcsec).
- any other record (``autotune``, ``lensing``... as Pitt-Google adds them) is read the generic way: its
  ``predicted_class``/``class``/``label``, ``probability``, ``score``, ``model``, ``version``.

The contract (other modules and branches build on it):

- ``alert["scores"]``: flat ``{name: number}``; each classifier's numeric outputs are added as
  ``<classifier>_<field>`` in lowercase (``supernnova_prob_class0``, ``variability_g_psffluxstetsonj``,
  ``variability_score``, ``upsilon_r_probability``...), ids left out. They are also top-level keys of the alert.
- ``alert["classifiers"]``: ``{name: {"class", "probability", "score", "model", "version"}}``, ``name`` the
  record's key in lowercase (``supernnova``, ``variability``, ``upsilon``, ``xmatch_gaia``); ``class`` a str or
  None, ``probability`` and ``score`` floats or None, ``model`` and ``version`` str or None (where given).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

from tom_pittgoogle.core.alerts import validate

#: Records that are part of an alert, not a classifier's output.
ALERT_PARTS = frozenset({
    "alert_lite", "alertids", "candidate", "prv_candidates", "fp_hists", "source", "prvsources", "xmatch",
    "diasource", "diaobject", "ssobject", "sssource", "mpc_orbits", "prvdiasources", "prvdiaforcedsources",
    "prvdianondetectionlimits", "cutoutscience", "cutouttemplate", "cutoutdifference",
})
#: At most this many classifier records and numeric fields per record are read (bounded output).
MAX_CLASSIFIERS = 16
MAX_FIELDS = 64
SUPERNNOVA_CLASSES = {0: "Ia", 1: "non-Ia"}
LSST_BANDS = ("u", "g", "r", "i", "z", "y")
_NAME = re.compile(r"[^a-z0-9_]+")
#: Field names that are ids (not scores) in classifier records.
_ID_FIELD = re.compile(r"(objectid|sourceid|candid)$|^(closest|second_closest|third_closest)_gaia_source$")


def score_name(*parts: str) -> str:
    return _NAME.sub("_", "_".join(parts).lower()).strip("_")[:64]


def classifier_blocks(record: Mapping[str, Any]) -> dict[str, tuple[str, Mapping]]:
    """The classifier records at the top of ``record``: lowercase name -> (name as published, record)."""
    blocks = {}
    for key, value in record.items():
        if not isinstance(key, str) or not isinstance(value, Mapping) or key.lower() in ALERT_PARTS:
            continue
        name = score_name(key)
        if name and name not in blocks and len(blocks) < MAX_CLASSIFIERS:
            blocks[name] = (key, value)
    return blocks


def _float(value: Any) -> float | None:
    if validate.is_number(value):
        try:
            value = float(value)
        except OverflowError:
            return None
        return value if math.isfinite(value) else None
    return None


def _text(value: Any) -> str | None:
    if value is None or isinstance(value, (Mapping, list, tuple)):
        return None
    text = str(value) if not isinstance(value, str) else value
    try:
        return validate.clean_text(text, "class")
    except Exception:
        return None


def _first(block: Mapping, *names: str) -> Any:
    for name in names:
        if block.get(name) is not None:
            return block[name]
    return None


def _numeric_scores(name: str, block: Mapping) -> dict[str, float]:
    scores = {}
    for key, value in list(block.items())[:MAX_FIELDS]:
        if not isinstance(key, str) or _ID_FIELD.search(key.lower()):
            continue
        number = _float(value)
        if number is not None:
            scores[score_name(name, key)] = number
    return scores


def _supernnova(block: Mapping, attributes: Mapping[str, str]) -> dict:
    predicted = block.get("predicted_class")
    if predicted is None:
        predicted = attributes.get("pg_supernnova_class") or attributes.get("supernnova_class")
    try:
        predicted = int(predicted) if predicted not in (None, "None", "") else None
    except (TypeError, ValueError):
        predicted = None
    probability = _float(block.get(f"prob_class{predicted}")) if predicted in (0, 1) else None
    label = SUPERNNOVA_CLASSES.get(predicted, None if predicted is None else str(predicted))
    return {"class": label, "probability": probability, "score": None}


def _variability(block: Mapping, attributes: Mapping[str, str]) -> dict:
    j_values = {band: _float(block.get(f"{band}_psfFluxStetsonJ")) for band in LSST_BANDS}
    finite_j = [value for value in j_values.values() if value is not None]
    label = _text(attributes.get("pg_variable"))
    if label is None and any(j is not None for j in j_values.values()):
        # The module's own rule (broker/cloud_run/lsst/variability/main.py) when the attribute is not at hand.
        likely = any(
            (_float(block.get(f"n_detections_{band}_band")) or 0) >= 30 and (j_values[band] or 0) > 20
            for band in ("g", "r", "u")
        )
        label = "likely" if likely else "unlikely"
    return {"class": label, "probability": None, "score": max(finite_j) if finite_j else None}


def _upsilon(block: Mapping, attributes: Mapping[str, str]) -> dict:
    best_band, best_probability = None, None
    for band in LSST_BANDS:
        probability = _float(block.get(f"{band}_probability"))
        if probability is not None and (best_probability is None or probability > best_probability):
            best_band, best_probability = band, probability
    label = None
    if best_band is not None:
        label = _text(block.get(f"{best_band}_label") or attributes.get(f"pg_upsilon_{best_band}_label"))
    return {"class": label, "probability": best_probability, "score": None}


def _xmatch_gaia(block: Mapping, attributes: Mapping[str, str]) -> dict:
    return {
        "class": _text(block.get("closest_gaia_source_class")),
        "probability": None,
        "score": _float(block.get("closest_gaia_source_class_score")),
    }


def _generic(block: Mapping, attributes: Mapping[str, str]) -> dict:
    return {
        "class": _text(_first(block, "predicted_class", "class", "label", "classification")),
        "probability": _float(_first(block, "probability", "prob")),
        "score": _float(block.get("score")),
    }


_READERS = {"supernnova": _supernnova, "variability": _variability, "upsilon": _upsilon, "xmatch_gaia": _xmatch_gaia}


def read_classifiers(
    blocks: Mapping[str, tuple[str, Mapping]], attributes: Mapping[str, str]
) -> tuple[dict[str, float], dict[str, dict]]:
    """``(scores, classifiers)`` of the alert's classifier records (see the module's contract)."""
    scores: dict[str, float] = {}
    classifiers: dict[str, dict] = {}
    for name, (published, block) in blocks.items():
        summary = _READERS.get(name, _generic)(block, attributes)
        block_scores = _numeric_scores(name, block)
        for field in ("probability", "score"):
            if summary[field] is not None and f"{name}_{field}" not in block_scores:
                block_scores[score_name(name, field)] = summary[field]
        scores.update(block_scores)
        classifiers[name] = {
            **summary,
            "model": _text(_first(block, "model", "model_name", "classifier")) or published,
            "version": _text(_first(block, "version", "model_version", "classifier_version", "module_version")),
        }
    return scores, classifiers


def tag_scores(attributes: Mapping[str, str]) -> dict[str, float]:
    """ztf-tagged's categories (``broker/cloud_run/ztf/tag/main.py``), which it publishes only as attributes."""
    scores = {}
    for key in ("is_pure", "is_extragalactic_transient"):
        if attributes.get(key) in ("0", "1"):
            scores[f"tag_{key}"] = float(attributes[key])
    return scores
