"""The columns of a stored alert that are copied from its JSON when it is stored, so that the stored route
(:mod:`tom_pittgoogle.routes.stored_alerts`) sorts and filters on indexed columns: the best score and the predicted
classes. Plain Python: :mod:`tom_pittgoogle.core.store` calls :func:`indexed_columns` for each row it writes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

#: The survey's real/bogus score, the best score of an alert without classifier output.
QUALITY_SCORES = {"ztf": ("drb", "rb"), "lsst": ("reliability",)}


def number_or_none(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
        return None
    return float(value)


def best_score(alert: Mapping[str, Any]) -> float | None:
    """The highest probability any classifier gives its predicted class; without classifier output, the survey's
    real/bogus score (ZTF ``drb``, else ``rb``; LSST ``reliability``); None if the alert has neither."""
    probabilities = [
        number_or_none(output.get("probability"))
        for output in (alert.get("classifiers") or {}).values()
        if isinstance(output, Mapping)
    ]
    probabilities = [p for p in probabilities if p is not None]
    if probabilities:
        return max(probabilities)
    scores = alert.get("scores") or {}
    for name in QUALITY_SCORES.get(alert.get("survey"), ()):
        value = number_or_none(scores.get(name, alert.get(name)))
        if value is not None:
            return value
    return None


def class_key(value: Any) -> str:
    """A predicted class as compared (filters.PredictedClassFilter: stripped, case-folded), with ``%`` and ``|``
    percent-encoded: a class is then one element of :func:`predicted_classes`' ``|a|b|`` whatever its text, so
    that ``|x|`` matches exactly the alerts with a class equal to ``x``, as the streams' filter keeps them (a
    class ``ia|sn`` is not the two classes ``ia`` and ``sn``)."""
    return str(value).strip().casefold().replace("%", "%25").replace("|", "%7c")


def predicted_classes(alert: Mapping[str, Any]) -> str:
    """Every classifier's predicted class as :func:`class_key`, as ``|a|b|`` (what a predicted-class filter
    matches)."""
    classes = sorted({
        class_key(output["class"])
        for output in (alert.get("classifiers") or {}).values()
        if isinstance(output, Mapping) and output.get("class") not in (None, "")
    })
    return "|" + "|".join(classes) + "|" if classes else ""


def indexed_columns(alert: Mapping[str, Any]) -> dict[str, Any]:
    """The :class:`~tom_pittgoogle.models.Alert` columns derived from the alert (``store.py`` sets them)."""
    return {"best_score": best_score(alert), "classes": predicted_classes(alert)}
