"""The stored route: this TOM's own alerts (what the ingester stored), filtered, sorted and paged.

The filters are the other routes' (:class:`~tom_pittgoogle.core.filters.AlertFilter` and its parameter names: survey,
object and source id, ``classtar_threshold``/``classtar_gt_lt``, ``reliability_threshold``, the cone
``cone_ra``/``cone_dec``/``cone_radius_arcsec``, the time window ``start_time``/``end_time`` on the alert's time,
``score_name``/``score_min``, ``predicted_class``) plus ``band`` and ``mag_min``/``mag_max``, translated to ORM
lookups with the same arithmetic (the haversine of :mod:`~tom_pittgoogle.core.filters`, the same UTC Julian Dates), so
that the same filter keeps the same alerts here as on a stream route (:func:`passes` is the Python side of
:func:`stored_alerts`). Sorting and the common filters read indexed columns; a score filter reads the alert's JSON
of the rows the other filters left.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from django.db.models import F, FloatField, QuerySet
from django.db.models.fields.json import KeyTextTransform, KeyTransform
from django.db.models.functions import Cast, Cos, Power, Sin

from tom_pittgoogle.core.alert_columns import class_key, number_or_none
from tom_pittgoogle.core.filters import SELECTION_KEYS, AlertFilter, AlertSelection

logger = logging.getLogger(__name__)

#: Sort choices: name -> (label, ORM ordering). Nulls sort last; ties by id, so that pages never overlap.
SORTS = {
    "newest": ("Newest first (alert time)", (F("jd").desc(nulls_last=True), F("id").desc())),
    "brightest": ("Brightest first (magnitude)", (F("mag").asc(nulls_last=True), F("id").desc())),
    "score": ("Best score first", (F("best_score").desc(nulls_last=True), F("id").desc())),
}
DEFAULT_SORT = "newest"
#: The last page a query may ask for: far beyond what is stored (a million pages of up to 100 alerts), and its
#: offset fits the database's 64-bit integers whatever the page size.
MAX_PAGE = 1_000_000
#: The form fields of this route (besides survey and max_results), and the parameters its query reads.
STORED_FIELDS = (
    "objectId", "candid", "band", "mag_min", "mag_max", "classtar_threshold", "classtar_gt_lt",
    "reliability_threshold", *SELECTION_KEYS, "sort", "page", "max_results",
)


# --- the query ----------------------------------------------------------------------------------------------


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _float(parameters: Mapping[str, Any], key: str) -> float | None:
    value = parameters.get(key)
    return None if _blank(value) else float(value)


def passes(parameters: Mapping[str, Any], alert: Mapping[str, Any]) -> bool:
    """Whether the stored route's filter keeps ``alert`` (in Python: what a stream route keeps)."""
    if alert.get("survey") != (parameters.get("survey") or "ztf"):
        return False
    object_id, source_id = parameters.get("objectId"), parameters.get("candid")
    if not _blank(object_id) and str(alert.get("object_id")) != str(object_id).strip():
        return False
    if not _blank(source_id) and str(alert.get("source_id")) != str(source_id).strip():
        return False
    if not _blank(parameters.get("band")) and str(alert.get("band") or "") != parameters["band"]:
        return False
    mag = number_or_none(alert.get("mag"))
    mag_min, mag_max = _float(parameters, "mag_min"), _float(parameters, "mag_max")
    if (mag_min is not None or mag_max is not None) and mag is None:
        return False
    if (mag_min is not None and mag < mag_min) or (mag_max is not None and mag > mag_max):
        return False
    return AlertFilter.from_parameters(parameters).passes(alert)


def _json_number(*path: str) -> Cast:
    """The alert's JSON value at ``path`` as a float (SQL NULL when missing or null)."""
    expression: Any = "alert"
    for key in path[:-1]:
        expression = KeyTransform(key, expression)
    return Cast(KeyTextTransform(path[-1], expression), FloatField())


def stored_alerts(parameters: Mapping[str, Any]) -> QuerySet:
    """The stored alerts the filter keeps, sorted (``sort``: a key of :data:`SORTS`); not yet paged."""
    from tom_pittgoogle.models import Alert

    rows = Alert.objects.filter(survey=parameters.get("survey") or "ztf")
    if not _blank(parameters.get("objectId")):
        rows = rows.filter(object_id=str(parameters["objectId"]).strip())
    if not _blank(parameters.get("candid")):
        rows = rows.filter(source_id=str(parameters["candid"]).strip())
    if not _blank(parameters.get("band")):
        rows = rows.filter(band=parameters["band"])
    if _float(parameters, "mag_min") is not None:
        rows = rows.filter(mag__gte=_float(parameters, "mag_min"))
    if _float(parameters, "mag_max") is not None:
        rows = rows.filter(mag__lte=_float(parameters, "mag_max"))
    spec = AlertFilter.from_parameters(parameters)
    if spec.classtar.threshold is not None:
        lookup = "lt" if spec.classtar.comparison == "lt" else "gte"
        rows = rows.alias(classtar_value=_json_number("classtar")).filter(
            **{f"classtar_value__{lookup}": spec.classtar.threshold}
        )
    if spec.reliability.threshold is not None:
        rows = rows.alias(reliability_value=_json_number("reliability")).filter(
            reliability_value__gte=spec.reliability.threshold
        )
    rows = _select(rows, spec.selection)
    sort = parameters.get("sort") or DEFAULT_SORT
    if sort not in SORTS:
        raise ValueError(f"sort must be one of {', '.join(SORTS)}")
    return rows.order_by(*SORTS[sort][1])


def _select(rows: QuerySet, selection: AlertSelection) -> QuerySet:
    """The cone, time window, score and predicted class of ``selection`` as lookups."""
    cone = selection.cone
    if cone is not None:
        rad = math.pi / 180.0
        # The index on dec narrows the rows; the haversine (filters.haversine's expression) decides.
        rows = rows.filter(dec__gte=cone.dec - cone.radius_deg - 1e-9, dec__lte=cone.dec + cone.radius_deg + 1e-9)
        distance = Power(Sin((F("dec") - cone.dec) * rad / 2), 2) + math.cos(cone.dec * rad) * Cos(
            F("dec") * rad
        ) * Power(Sin((F("ra") - cone.ra) * rad / 2), 2)
        rows = rows.alias(cone_haversine=distance).filter(cone_haversine__lte=cone.haversine_max)
    if selection.time is not None:
        if selection.time.start_jd is not None:
            rows = rows.filter(jd__gte=selection.time.start_jd)
        if selection.time.end_jd is not None:
            rows = rows.filter(jd__lt=selection.time.end_jd)
    if selection.score is not None:
        rows = rows.alias(score_value=_json_number("scores", selection.score.name)).filter(
            score_value__gte=selection.score.minimum
        )
    if selection.predicted_class is not None:
        rows = rows.filter(classes__contains=f"|{class_key(selection.predicted_class.predicted_class)}|")
    return rows


#: The most matching alerts counted for the pager: counting all of a night of Rubin's (millions) would take
#: seconds, so beyond this the page says "more than" and offers the next page while pages are full.
COUNT_LIMIT = 100_000


@dataclass
class StoredPage:
    """One page of the stored alerts: the lightened alerts, and where it is in the whole."""

    alerts: list[dict]
    total: int  # the number of matching alerts, or COUNT_LIMIT when there are more (``more`` is then True)
    page: int
    per_page: int
    more: bool = False

    @property
    def pages(self) -> int:
        return max(1, math.ceil(self.total / self.per_page), self.page + (1 if self.more else 0))

    @property
    def first(self) -> int:
        """The 1-based position of the page's first alert (0 when there is none)."""
        return (self.page - 1) * self.per_page + 1 if self.alerts else 0

    @property
    def last(self) -> int:
        return self.first + len(self.alerts) - 1 if self.alerts else 0

    @property
    def previous_page(self) -> int | None:
        return self.page - 1 if self.page > 1 else None

    @property
    def next_page(self) -> int | None:
        full = len(self.alerts) == self.per_page
        return self.page + 1 if self.page < self.pages and (full or not self.more) else None


def search(parameters: Mapping[str, Any], *, default_per_page: int = 10, count_limit: int = COUNT_LIMIT) -> StoredPage:
    """Page ``page`` (from 1) of ``max_results`` stored alerts the filter keeps, in the ``sort`` order."""
    rows = stored_alerts(parameters)
    per_page = max(1, int(parameters.get("max_results") or default_per_page))
    page = min(max(1, int(parameters.get("page") or 1)), MAX_PAGE)
    counted = rows.order_by()[: count_limit + 1].count()
    start = (page - 1) * per_page
    alerts = [_readable(pk, alert) for pk, alert in rows.values_list("pk", "alert")[start:start + per_page]]
    alerts = [alert for alert in alerts if alert is not None]
    return StoredPage(alerts=alerts, total=min(counted, count_limit), page=page, per_page=per_page,
                      more=counted > count_limit)


def _readable(pk: int, alert: Mapping[str, Any]) -> dict | None:
    """The stored alert, validated as the results page will (None, and a warning, for one stored by an older
    version that no longer passes: one bad row does not take the page down)."""
    from tom_pittgoogle.core.alerts import lighten_alert
    from tom_pittgoogle.exceptions import DecodeError

    try:
        lighten_alert(alert)
    except DecodeError as error:
        logger.warning("stored alert %s is not shown: %s", pk, error)
        return None
    return dict(alert)


def nothing_matched(parameters: Mapping[str, Any]) -> str:
    """What an empty stored-route result means."""
    from tom_pittgoogle.core.alerts import SURVEY_CHOICES

    survey = parameters.get("survey") or "ztf"
    label = dict(SURVEY_CHOICES).get(survey, survey)
    if int(parameters.get("page") or 1) > 1:
        return f"Nothing on page {parameters['page']}: fewer {label} alerts than that are stored that pass the filter."
    return (
        f"Nothing matched: this TOM has stored no {label} alert that passes the filter. The stored alerts are "
        "what an ingester (manage.py pittgoogle_stream) or a Pub/Sub pull kept; see the ingester status page."
    )


def query_parameters(parameters: Mapping[str, Any]) -> dict:
    """The stored route's parameters of a form's cleaned data (or of a saved query)."""
    return {key: parameters.get(key) for key in STORED_FIELDS}


def of_target(
    survey: str, *, cone: Mapping[str, Any] | None, object_ids: Iterable[str], source_ids: Any, limit: int
) -> list[tuple[str, dict]]:
    """The stored alerts of ``survey`` that a Target's history reads, each once, newest first: those within its
    ``cone`` (the cone parameters), those of its ``object_ids``, and those of ``source_ids`` (the ones attached to
    it already; a list or a query of ids); at most ``limit`` of each. Returns (subscription, alert) pairs."""
    from tom_pittgoogle.models import Alert

    newest = SORTS[DEFAULT_SORT][1]
    chosen = []
    if cone:
        chosen.append(stored_alerts({"survey": survey, **cone}))
    object_ids = [str(object_id) for object_id in object_ids]
    if object_ids:
        chosen.append(Alert.objects.filter(survey=survey, object_id__in=object_ids).order_by(*newest))
    chosen.append(Alert.objects.filter(survey=survey, source_id__in=source_ids).order_by(*newest))
    found: dict[int, tuple[str, dict]] = {}
    for rows in chosen:
        for pk, subscription, alert in rows.values_list("pk", "subscription", "alert")[:limit]:
            readable = _readable(pk, alert)
            if readable is not None:
                found.setdefault(pk, (subscription, readable))
    return sorted(found.values(), key=lambda pair: pair[1].get("jd") or 0.0, reverse=True)
