"""The stored route: this TOM's own alerts (what the ingester stored), filtered, sorted and paged.

The filters are the other routes' (:class:`~tom_pittgoogle.filters.AlertFilter` and its parameter names: survey,
object and source id, ``classtar_threshold``/``classtar_gt_lt``, ``reliability_threshold``, the cone
``cone_ra``/``cone_dec``/``cone_radius_arcsec``, the time window ``start_time``/``end_time`` on the alert's time,
``score_name``/``score_min``, ``predicted_class``) plus ``band`` and ``mag_min``/``mag_max``, translated to ORM
lookups with the same arithmetic, so that the same filter keeps the same alerts here as on a stream route
(:func:`passes` is the Python side of :func:`stored_alerts`). Sorting and the common filters read indexed
columns; a score filter reads the alert's JSON of the rows the other filters left.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django import forms
from django.db.models import F, FloatField, QuerySet
from django.db.models.fields.json import KeyTextTransform, KeyTransform
from django.db.models.functions import Cast, Cos, Power, Sin

from .filters import AlertFilter

#: Sort choices: name -> (label, ORM ordering). Nulls sort last; ties by id, so that pages never overlap.
SORTS = {
    "newest": ("Newest first (alert time)", (F("jd").desc(nulls_last=True), F("id").desc())),
    "brightest": ("Brightest first (magnitude)", (F("mag").asc(nulls_last=True), F("id").desc())),
    "score": ("Best score first", (F("best_score").desc(nulls_last=True), F("id").desc())),
}
DEFAULT_SORT = "newest"
#: The survey's real/bogus score, the best score of an alert without classifier output.
QUALITY_SCORES = {"ztf": ("drb", "rb"), "lsst": ("reliability",)}
#: The form fields of this route (besides survey and max_results), and the parameters its query reads.
STORED_FIELDS = (
    "objectId", "candid", "band", "mag_min", "mag_max", "classtar_threshold", "classtar_gt_lt",
    "reliability_threshold", "cone_ra", "cone_dec", "cone_radius_arcsec", "start_time", "end_time",
    "score_name", "score_min", "predicted_class", "sort", "page", "max_results",
)


# --- what is copied to indexed columns when an alert is stored ------------------------------------------------


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
        return None
    return float(value)


def best_score(alert: Mapping[str, Any]) -> float | None:
    """The highest probability any classifier gives its predicted class; without classifier output, the survey's
    real/bogus score (ZTF ``drb``, else ``rb``; LSST ``reliability``); None if the alert has neither."""
    probabilities = [
        _number(output.get("probability"))
        for output in (alert.get("classifiers") or {}).values()
        if isinstance(output, Mapping)
    ]
    probabilities = [p for p in probabilities if p is not None]
    if probabilities:
        return max(probabilities)
    scores = alert.get("scores") or {}
    for name in QUALITY_SCORES.get(alert.get("survey"), ()):
        value = _number(scores.get(name, alert.get(name)))
        if value is not None:
            return value
    return None


def _class_key(value: Any) -> str:
    return str(value).strip().casefold()


def predicted_classes(alert: Mapping[str, Any]) -> str:
    """Every classifier's predicted class, case-folded, as ``|a|b|`` (what a predicted-class filter matches)."""
    classes = sorted({
        _class_key(output["class"])
        for output in (alert.get("classifiers") or {}).values()
        if isinstance(output, Mapping) and output.get("class") not in (None, "")
    })
    text = "|" + "|".join(classes) + "|" if classes else ""
    return text if len(text) <= 255 else ""


def indexed_columns(alert: Mapping[str, Any]) -> dict[str, Any]:
    """The :class:`~tom_pittgoogle.models.Alert` columns derived from the alert (``store.py`` sets them)."""
    return {"best_score": best_score(alert), "classes": predicted_classes(alert)}


# --- the cone, time window and classifier filters --------------------------------------------------------------
# The same semantics as filters.AlertSelection of the bigquery branch (attribute names too), which replaces this
# part when it lands: a cone by exact angular distance (haversine), a time window [start, end) on the alert's UTC
# JD, a score threshold on alert["scores"][name], a predicted class of any classifier (case-insensitive).


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def haversine(ra1: float, dec1: float, ra2: float, dec2: float) -> float:
    """``sin²(d/2)`` of the angular distance ``d`` between two points in degrees."""
    rad = math.pi / 180.0
    return math.sin((dec2 - dec1) * rad / 2) ** 2 + math.cos(dec1 * rad) * math.cos(dec2 * rad) * math.sin(
        (ra2 - ra1) * rad / 2
    ) ** 2


def utc_datetime(value: Any) -> datetime:
    if isinstance(value, str):
        value = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    if not isinstance(value, datetime):
        raise ValueError(f"not a date and time: {value!r}")
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def datetime_to_jd(value: datetime) -> float:
    from astropy.time import Time

    return float(Time(value.astimezone(UTC).replace(tzinfo=None), scale="utc").jd)


@dataclass(frozen=True)
class Selection:
    """Cone, time window, score and predicted class, each optional (None)."""

    cone: tuple[float, float, float] | None = None  # ra, dec, radius (arcsec)
    start_jd: float | None = None
    end_jd: float | None = None
    score: tuple[str, float] | None = None
    predicted_class: str | None = None

    @classmethod
    def from_parameters(cls, parameters: Mapping[str, Any]) -> Selection:
        cone = [parameters.get(key) for key in ("cone_ra", "cone_dec", "cone_radius_arcsec")]
        if any(_blank(value) for value in cone) and not all(_blank(value) for value in cone):
            raise ValueError("a cone needs all three of cone_ra, cone_dec and cone_radius_arcsec")
        start, end = parameters.get("start_time"), parameters.get("end_time")
        start_jd = None if _blank(start) else datetime_to_jd(utc_datetime(start))
        end_jd = None if _blank(end) else datetime_to_jd(utc_datetime(end))
        if start_jd is not None and end_jd is not None and not start_jd < end_jd:
            raise ValueError("the start of the time window must be before its end")
        name, minimum = parameters.get("score_name"), parameters.get("score_min")
        if _blank(name) != _blank(minimum):
            raise ValueError("a score filter needs both score_name and score_min")
        wanted = parameters.get("predicted_class")
        return cls(
            cone=None if _blank(cone[0]) else tuple(float(value) for value in cone),
            start_jd=start_jd,
            end_jd=end_jd,
            score=None if _blank(name) else (str(name).strip(), float(minimum)),
            predicted_class=None if _blank(wanted) else _class_key(wanted),
        )

    def haversine_max(self) -> float:
        return math.sin(math.radians(self.cone[2] / 3600.0) / 2) ** 2

    def passes(self, alert: Mapping[str, Any]) -> bool:
        if self.cone is not None:
            ra, dec = alert.get("ra"), alert.get("dec")
            if _number(ra) is None or _number(dec) is None:
                return False
            if haversine(self.cone[0], self.cone[1], float(ra), float(dec)) > self.haversine_max():
                return False
        jd = _number(alert.get("jd"))
        if (self.start_jd is not None or self.end_jd is not None) and jd is None:
            return False
        if (self.start_jd is not None and jd < self.start_jd) or (self.end_jd is not None and jd >= self.end_jd):
            return False
        if self.score is not None:
            value = _number((alert.get("scores") or {}).get(self.score[0]))
            if value is None or value < self.score[1]:
                return False
        if self.predicted_class is not None:
            return f"|{self.predicted_class}|" in predicted_classes(alert)
        return True


# --- the query ----------------------------------------------------------------------------------------------


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
    mag, mag_min, mag_max = _number(alert.get("mag")), _float(parameters, "mag_min"), _float(parameters, "mag_max")
    if (mag_min is not None or mag_max is not None) and mag is None:
        return False
    if (mag_min is not None and mag < mag_min) or (mag_max is not None and mag > mag_max):
        return False
    return AlertFilter.from_parameters(parameters).passes(alert) and Selection.from_parameters(parameters).passes(
        alert
    )


def _json_number(*path: str) -> Cast:
    """The alert's JSON value at ``path`` as a float (SQL NULL when missing or null)."""
    expression: Any = "alert"
    for key in path[:-1]:
        expression = KeyTransform(key, expression)
    return Cast(KeyTextTransform(path[-1], expression), FloatField())


def stored_alerts(parameters: Mapping[str, Any]) -> QuerySet:
    """The stored alerts the filter keeps, sorted (``sort``: a key of :data:`SORTS`); not yet paged."""
    from .models import Alert

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
    rows = _select(rows, Selection.from_parameters(parameters))
    sort = parameters.get("sort") or DEFAULT_SORT
    if sort not in SORTS:
        raise ValueError(f"sort must be one of {', '.join(SORTS)}")
    return rows.order_by(*SORTS[sort][1])


def _select(rows: QuerySet, selection: Selection) -> QuerySet:
    if selection.cone is not None:
        ra, dec, radius = selection.cone
        rad = math.pi / 180.0
        # The index on dec narrows the rows; the haversine, as in Python, decides.
        rows = rows.filter(dec__gte=dec - radius / 3600.0 - 1e-9, dec__lte=dec + radius / 3600.0 + 1e-9)
        distance = Power(Sin((F("dec") - dec) * rad / 2), 2) + math.cos(dec * rad) * Cos(F("dec") * rad) * Power(
            Sin((F("ra") - ra) * rad / 2), 2
        )
        rows = rows.alias(cone_haversine=distance).filter(cone_haversine__lte=selection.haversine_max())
    if selection.start_jd is not None:
        rows = rows.filter(jd__gte=selection.start_jd)
    if selection.end_jd is not None:
        rows = rows.filter(jd__lt=selection.end_jd)
    if selection.score is not None:
        name, minimum = selection.score
        rows = rows.alias(score_value=_json_number("scores", name)).filter(score_value__gte=minimum)
    if selection.predicted_class is not None:
        rows = rows.filter(classes__contains=f"|{selection.predicted_class}|")
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
    page = max(1, int(parameters.get("page") or 1))
    counted = rows.order_by()[: count_limit + 1].count()
    start = (page - 1) * per_page
    alerts = [dict(alert) for alert in rows.values_list("alert", flat=True)[start:start + per_page]]
    return StoredPage(alerts=alerts, total=min(counted, count_limit), page=page, per_page=per_page,
                      more=counted > count_limit)


# --- the form --------------------------------------------------------------------------------------------------


class UTCDateTimeField(forms.DateTimeField):
    """A date and time read as UTC, cleaned to an ISO 8601 string (the session and a saved query hold JSON)."""

    def to_python(self, value: Any):
        from django.utils import timezone

        with timezone.override(UTC):
            value = super().to_python(value)
        return None if value is None else value.astimezone(UTC)

    def clean(self, value: Any) -> str | None:
        value = super().clean(value)
        return None if value is None else value.isoformat()


def stored_route_fields() -> dict[str, forms.Field]:
    """The fields the stored route adds to the DataService form (the cone, time and score ones only where the
    form does not have them already)."""
    return {
        "band": forms.CharField(required=False, max_length=16, help_text="Stored alerts: the band (ZTF g, r, i; "
                                "Rubin u, g, r, i, z, y); empty: any."),
        "mag_min": forms.FloatField(required=False, label="Magnitude at least",
                                    help_text="Stored alerts: fainter than or as faint as this."),
        "mag_max": forms.FloatField(required=False, label="Magnitude at most",
                                    help_text="Stored alerts: brighter than or as bright as this."),
        "cone_ra": forms.FloatField(required=False, min_value=0, max_value=360, label="Cone RA",
                                    help_text="Cone search: centre right ascension (degrees, ICRS)."),
        "cone_dec": forms.FloatField(required=False, min_value=-90, max_value=90, label="Cone Dec",
                                     help_text="Cone search: centre declination (degrees)."),
        "cone_radius_arcsec": forms.FloatField(required=False, min_value=0.001, max_value=36000,
                                               label="Cone radius (arcsec)",
                                               help_text="Cone search: radius in arcseconds (all three or none)."),
        "start_time": UTCDateTimeField(required=False, label="Start (UTC)",
                                       help_text="Alerts observed at or after this time (UTC, e.g. 2025-11-15 03:00)."),
        "end_time": UTCDateTimeField(required=False, label="End (UTC)", help_text="Alerts observed before this time."),
        "score_name": forms.CharField(required=False, max_length=100, label="Score name",
                                      help_text="Keep alerts whose score of this name (e.g. drb, reliability, a "
                                                "classifier's probability) is at least the minimum below."),
        "score_min": forms.FloatField(required=False, label="Score minimum"),
        "predicted_class": forms.CharField(required=False, max_length=100, label="Predicted class",
                                           help_text="Keep alerts a classifier puts in this class (any case)."),
        "sort": forms.ChoiceField(required=False, choices=[(key, label) for key, (label, _) in SORTS.items()],
                                  initial=DEFAULT_SORT, help_text="Stored alerts: the order of the results."),
        "page": forms.IntegerField(required=False, min_value=1, initial=1,
                                   help_text="Stored alerts: which page of Max results alerts."),
    }


def with_stored_route_fields(form_class: type[forms.Form]) -> type[forms.Form]:
    """Class decorator: add :func:`stored_route_fields` that ``form_class`` lacks, after its own fields."""
    for name, field in stored_route_fields().items():
        if name not in form_class.base_fields:
            form_class.base_fields[name] = form_class.declared_fields[name] = field
    return form_class


def clean_stored(form: forms.Form, cleaned_data: dict) -> dict:
    """The stored route's query: by object id or by source id, not both; a filter the route can read."""
    cleaned_data["survey"] = cleaned_data.get("survey") or "ztf"
    if cleaned_data.get("objectId") and cleaned_data.get("candid") is not None:
        raise forms.ValidationError("Search by object id or by source id, not both.")
    try:
        AlertFilter.from_parameters(cleaned_data)
        Selection.from_parameters(cleaned_data)
    except (TypeError, ValueError) as error:
        raise forms.ValidationError(f"Stored alerts: {error}.") from None
    return cleaned_data


def query_parameters(parameters: Mapping[str, Any]) -> dict:
    """The stored route's parameters of a form's cleaned data (or of a saved query)."""
    return {key: parameters.get(key) for key in STORED_FIELDS}
