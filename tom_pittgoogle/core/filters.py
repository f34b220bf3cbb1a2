"""The alert filters the forms offer, as one spec shared by every stream route.

The original compared with ``~`` on a Python bool (``~True == -2``, truthy), so "greater than or equal" let
every alert through, and an alert without ``classtar`` crashed the pull. Here each comparison is explicit and
a missing or null value fails any threshold. ``classtar`` is a ZTF field; Rubin/LSST alerts are filtered on
``reliability`` instead (:class:`AlertFilter` combines both; each form offers the one of its survey).

Every survey's alerts can also be selected by a cone, a time window, a score and a predicted class
(:class:`AlertSelection`, on the lightened alert's ``ra``/``dec``, ``jd`` (UTC), ``scores`` and ``classifiers``).
The BigQuery route renders the same selection as SQL with the same arithmetic, so every route keeps the same alerts.

What the message attributes say (a classifier's class, variability, detections, ZTF's purity flags, and a filter
expression of one's own) is :class:`AttributeSelection`: on a stream it becomes the subscription's server-side
filter (:func:`server_filter`), which Pub/Sub applies before delivery; the rest is applied in the TOM.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from tom_pittgoogle.core.attribute_filter import AttributeFilter, Equals, Node, all_of, parse_filter

#: Form choice values, kept from the original so that saved queries keep working.
LESS_THAN = "lt"
GREATER_OR_EQUAL = "gt"
CLASSTAR_COMPARISONS = [(LESS_THAN, "less than"), (GREATER_OR_EQUAL, "greater than or equal")]


@dataclass(frozen=True)
class ClasstarFilter:
    """Keep alerts whose star/galaxy score ``classtar`` is below, or at or above, a threshold.

    With no threshold every alert passes.
    """

    threshold: float | None = None
    comparison: str = LESS_THAN

    def __post_init__(self) -> None:
        if self.comparison not in (LESS_THAN, GREATER_OR_EQUAL):
            raise ValueError(f"classtar comparison must be {LESS_THAN!r} or {GREATER_OR_EQUAL!r}")

    @classmethod
    def from_parameters(cls, parameters: Mapping[str, Any]) -> ClasstarFilter:
        threshold = parameters.get("classtar_threshold")
        return cls(
            threshold=None if threshold in (None, "") else float(threshold),
            comparison=parameters.get("classtar_gt_lt") or LESS_THAN,
        )

    def passes(self, alert: Mapping[str, Any]) -> bool:
        if self.threshold is None:
            return True
        value = alert.get("classtar")
        if value is None or value != value:  # missing, null or NaN: unknown, so it cannot pass a threshold
            return False
        if self.comparison == LESS_THAN:
            return value < self.threshold
        return value >= self.threshold

    def __call__(self, alert: Mapping[str, Any]) -> Mapping[str, Any] | None:
        """The original callback contract: the alert if it passes, else None."""
        return alert if self.passes(alert) else None


@dataclass(frozen=True)
class ReliabilityFilter:
    """Keep Rubin/LSST alerts whose diaSource ``reliability`` (probability, 0-1, that the source is real) is at
    or above a threshold. With no threshold every alert passes; a missing or null value fails a threshold."""

    threshold: float | None = None

    @classmethod
    def from_parameters(cls, parameters: Mapping[str, Any]) -> ReliabilityFilter:
        threshold = parameters.get("reliability_threshold")
        return cls(threshold=None if threshold in (None, "") else float(threshold))

    def passes(self, alert: Mapping[str, Any]) -> bool:
        if self.threshold is None:
            return True
        value = alert.get("reliability")
        if value is None or value != value:
            return False
        return value >= self.threshold

    def __call__(self, alert: Mapping[str, Any]) -> Mapping[str, Any] | None:
        return alert if self.passes(alert) else None




# -- Cone, time window and classifier filters: the same spec on every route ---------------------------------------
#
# The BigQuery route renders these as SQL (consumer_database_python) with the same arithmetic, so that the same
# filter on the same alerts gives the same alerts through the streams and through BigQuery.

ARCSEC_PER_DEGREE = 3600.0


def haversine(ra1: float, dec1: float, ra2: float, dec2: float) -> float:
    """``sin²(d/2)`` of the great-circle distance ``d`` between two points given in degrees.

    The haversine form is exact and well conditioned at the arcsecond scales of a cone search; the SQL of the
    BigQuery route computes the same expression, so a cone keeps the same alerts on every route.
    """
    rad = math.pi / 180.0
    return math.sin((dec2 - dec1) * rad / 2) ** 2 + math.cos(dec1 * rad) * math.cos(dec2 * rad) * math.sin(
        (ra2 - ra1) * rad / 2
    ) ** 2


def _number(value: Any, name: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, not {value!r}") from None
    if number != number or number in (math.inf, -math.inf):
        raise ValueError(f"{name} must be a finite number, not {value!r}")
    return number


@dataclass(frozen=True)
class ConeFilter:
    """Keep alerts within ``radius_arcsec`` of (``ra``, ``dec``) (degrees, ICRS), by exact angular distance."""

    ra: float
    dec: float
    radius_arcsec: float

    def __post_init__(self) -> None:
        if not -90 <= self.dec <= 90:
            raise ValueError(f"cone dec must be between -90 and 90 degrees, not {self.dec}")
        if not 0 < self.radius_arcsec <= 180 * ARCSEC_PER_DEGREE:
            raise ValueError(f"cone radius must be positive (arcseconds), not {self.radius_arcsec}")

    @property
    def radius_deg(self) -> float:
        return self.radius_arcsec / ARCSEC_PER_DEGREE

    @property
    def haversine_max(self) -> float:
        """``sin²(radius/2)``: an alert is inside when its :func:`haversine` is at most this."""
        return math.sin(math.radians(self.radius_deg) / 2) ** 2

    def passes(self, alert: Mapping[str, Any]) -> bool:
        ra, dec = alert.get("ra"), alert.get("dec")
        if ra is None or dec is None or ra != ra or dec != dec:
            return False
        return haversine(self.ra, self.dec, float(ra), float(dec)) <= self.haversine_max


#: The times a time window may name (UTC). Alerts exist in between; outside, the routes' arithmetic (Julian Dates,
#: BigQuery's partition bounds, a UTC offset of up to 14 hours) would overflow a datetime.
EARLIEST_TIME = datetime(1900, 1, 1, tzinfo=UTC)
LATEST_TIME = datetime(2200, 1, 1, tzinfo=UTC)
TIME_RANGE_TEXT = f"from {EARLIEST_TIME:%Y-%m-%d} to {LATEST_TIME:%Y-%m-%d} (UTC)"


def utc_datetime(value: Any, name: str = "time") -> datetime:
    """An aware UTC datetime from a datetime (naive means UTC), an ISO 8601 string, or an astropy Time, within
    :data:`EARLIEST_TIME` and :data:`LATEST_TIME` (a ValueError otherwise)."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(f"{name} must be a date and time (ISO 8601, UTC), not {value!r}") from None
    elif hasattr(value, "to_datetime") and not isinstance(value, datetime):  # astropy Time
        value = value.utc.to_datetime(timezone=UTC)
    if not isinstance(value, datetime):
        raise ValueError(f"{name} must be a date and time, not {value!r}")
    try:
        value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    except OverflowError:  # 0001-01-01T00:00:00+14:00 is before year 1 in UTC
        value = None
    if value is None or not EARLIEST_TIME <= value < LATEST_TIME:
        raise ValueError(f"{name} must be a time {TIME_RANGE_TEXT}")
    return value


#: Julian Dates a datetime can hold: 0001-01-01 to 9999-12-31.
_JD_RANGE = (1721425.5, 5373484.5)


def jd_to_datetime(jd: float | None) -> datetime | None:
    """A Julian Date as an aware UTC datetime; None for no date, or one no datetime can hold (1e308, NaN)."""
    try:
        jd = float(jd)
    except (TypeError, ValueError, OverflowError):
        return None
    if not _JD_RANGE[0] <= jd < _JD_RANGE[1]:  # False for NaN too
        return None
    from astropy.time import Time

    try:
        return Time(jd, format="jd", scale="utc").to_datetime(timezone=UTC)
    except (ValueError, OverflowError):
        return None


@lru_cache(maxsize=256)  # a stream's filter is rebuilt from its parameters for each alert; astropy is slow
def datetime_to_jd(value: datetime) -> float:
    """The UTC Julian Date of an aware datetime (the scale of a lightened alert's ``jd``)."""
    from astropy.time import Time

    return float(Time(value.astimezone(UTC).replace(tzinfo=None), scale="utc").jd)


@dataclass(frozen=True)
class TimeWindow:
    """Keep alerts whose time (the lightened alert's ``jd``, UTC) is at or after ``start`` and before ``end``.

    Either bound may be None (open). Times are aware UTC datetimes.
    """

    start: datetime | None = None
    end: datetime | None = None

    def __post_init__(self) -> None:
        if self.start is not None and self.end is not None and not self.start < self.end:
            raise ValueError("the start of the time window must be before its end")

    @property
    def start_jd(self) -> float | None:
        return None if self.start is None else datetime_to_jd(self.start)

    @property
    def end_jd(self) -> float | None:
        return None if self.end is None else datetime_to_jd(self.end)

    def passes(self, alert: Mapping[str, Any]) -> bool:
        jd = alert.get("jd")
        if jd is None or jd != jd:
            return False
        start_jd, end_jd = self.start_jd, self.end_jd
        return (start_jd is None or jd >= start_jd) and (end_jd is None or jd < end_jd)


@dataclass(frozen=True)
class ScoreFilter:
    """Keep alerts whose score ``name`` (a key of the lightened alert's ``scores``) is at least ``minimum``."""

    name: str
    minimum: float

    def passes(self, alert: Mapping[str, Any]) -> bool:
        value = (alert.get("scores") or {}).get(self.name)
        if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
            return False
        return value >= self.minimum


@dataclass(frozen=True)
class PredictedClassFilter:
    """Keep alerts that any classifier (``alert["classifiers"][name]["class"]``) puts in ``predicted_class``
    (compared without regard to case)."""

    predicted_class: str

    def passes(self, alert: Mapping[str, Any]) -> bool:
        wanted = self.predicted_class.strip().casefold()
        for output in (alert.get("classifiers") or {}).values():
            if isinstance(output, Mapping) and str(output.get("class", "")).strip().casefold() == wanted:
                return True
        return False


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def cone_from_parameters(parameters: Mapping[str, Any]) -> ConeFilter | None:
    values = [parameters.get(key) for key in CONE_KEYS]
    if all(_blank(value) for value in values):
        return None
    if any(_blank(value) for value in values):
        raise ValueError("a cone needs all three of cone_ra, cone_dec and cone_radius_arcsec")
    return ConeFilter(*(_number(value, key) for value, key in zip(values, CONE_KEYS, strict=True)))


def time_window_from_parameters(parameters: Mapping[str, Any]) -> TimeWindow | None:
    start, end = parameters.get("start_time"), parameters.get("end_time")
    if _blank(start) and _blank(end):
        return None
    return TimeWindow(
        start=None if _blank(start) else utc_datetime(start, "start_time"),
        end=None if _blank(end) else utc_datetime(end, "end_time"),
    )


def score_from_parameters(parameters: Mapping[str, Any]) -> ScoreFilter | None:
    name, minimum = parameters.get("score_name"), parameters.get("score_min")
    if _blank(name) and _blank(minimum):
        return None
    if _blank(name) or _blank(minimum):
        raise ValueError("a score filter needs both score_name and score_min")
    return ScoreFilter(str(name).strip(), _number(minimum, "score_min"))


def predicted_class_from_parameters(parameters: Mapping[str, Any]) -> PredictedClassFilter | None:
    value = parameters.get("predicted_class")
    return None if _blank(value) else PredictedClassFilter(str(value).strip())


#: The parameter keys of the cone, time window and classifier filters (forms, settings, command options).
CONE_KEYS = ("cone_ra", "cone_dec", "cone_radius_arcsec")
SELECTION_KEYS = (*CONE_KEYS, "start_time", "end_time", "score_name", "score_min", "predicted_class")


@dataclass(frozen=True)
class AlertSelection:
    """Where, when and what: a cone, a time window, a score threshold, a predicted class (each optional).

    The part of :class:`AlertFilter` that the BigQuery route renders as SQL as well.
    """

    cone: ConeFilter | None = None
    time: TimeWindow | None = None
    score: ScoreFilter | None = None
    predicted_class: PredictedClassFilter | None = None

    @classmethod
    def from_parameters(cls, parameters: Mapping[str, Any]) -> AlertSelection:
        return cls(
            cone=cone_from_parameters(parameters),
            time=time_window_from_parameters(parameters),
            score=score_from_parameters(parameters),
            predicted_class=predicted_class_from_parameters(parameters),
        )

    @property
    def parts(self) -> list[Any]:
        return [part for part in (self.cone, self.time, self.score, self.predicted_class) if part is not None]

    def __bool__(self) -> bool:
        return bool(self.parts)

    def passes(self, alert: Mapping[str, Any]) -> bool:
        return all(part.passes(alert) for part in self.parts)

    def __call__(self, alert: Mapping[str, Any]) -> Mapping[str, Any] | None:
        return alert if self.passes(alert) else None


# -- Attribute filters: what Pub/Sub can filter at the server ---------------------------------------------------
#
# Pitt-Google sets these message attributes (strings; see pittgoogle_formats in the demo): the classifier topics
# pg_supernnova_class, pg_variable ("likely"/"unlikely"), pg_upsilon_<band>_label/_flag and pg_has_min_detections
# ("1"/"0"); every LSST topic n_previous_detections (a count, as a string: only equality can be asked of it);
# ztf-tagged is_pure, is_extragalactic_transient ("1"/"0") and fid ("1" g, "2" r, "3" i).

#: Parameter keys that each ask one attribute for one value, in the order the filter lists them.
ATTRIBUTE_EQUALS_KEYS = ("pg_supernnova_class", "pg_variable", "pg_has_min_detections", "n_previous_detections",
                         "is_pure", "is_extragalactic_transient", "fid")
UPSILON_KEYS = ("pg_upsilon_band", "pg_upsilon_label", "pg_upsilon_flag")
UPSILON_BANDS = ("u", "g", "r", "i", "z", "y")
#: Every parameter key of the attribute filters (forms, settings, command options).
ATTRIBUTE_KEYS = (*ATTRIBUTE_EQUALS_KEYS, *UPSILON_KEYS, "attribute_filter")

_FLAGS = {"1": "1", "0": "0", "true": "1", "false": "0", "yes": "1", "no": "0"}


def _flag(value: Any, name: str) -> str:
    text = str(value).strip().lower()
    if isinstance(value, bool) or text in _FLAGS:
        return ("1" if value else "0") if isinstance(value, bool) else _FLAGS[text]
    raise ValueError(f"{name} is a flag: 1 (yes) or 0 (no), not {value!r}")


def _attribute_value(key: str, value: Any) -> str:
    """A parameter's value as the attribute's string that Pitt-Google sets."""
    if key in ("is_pure", "is_extragalactic_transient", "pg_has_min_detections", "pg_upsilon_flag"):
        return _flag(value, key)
    if key == "pg_variable":
        text = str(value).strip()
        if text not in ("likely", "unlikely"):
            raise ValueError(f"pg_variable is 'likely' or 'unlikely', not {value!r}")
        return text
    if key in ("n_previous_detections", "fid"):
        try:
            number = int(str(value).strip())
        except ValueError:
            number = -1
        if number < 0 or (key == "fid" and number not in (1, 2, 3)):
            allowed = "1 (g), 2 (r) or 3 (i)" if key == "fid" else "a whole number, 0 or more"
            raise ValueError(f"{key} is {allowed}, not {value!r}") from None
        return str(number)
    return str(value).strip()


@dataclass(frozen=True)
class AttributeSelection:
    """Conditions on the message attributes: ``equals`` (attribute, value) pairs and an ``expression`` of one's
    own (Google's filter language); a message passes when all hold. Rendered as one Pub/Sub filter."""

    equals: tuple[tuple[str, str], ...] = ()
    expression: AttributeFilter | None = None

    @classmethod
    def from_parameters(cls, parameters: Mapping[str, Any]) -> AttributeSelection:
        equals = [(key, _attribute_value(key, parameters[key])) for key in ATTRIBUTE_EQUALS_KEYS
                  if not _blank(parameters.get(key))]
        band, label, flag = (parameters.get(key) for key in UPSILON_KEYS)
        if not _blank(band):
            band = str(band).strip()
            if band not in UPSILON_BANDS:
                raise ValueError(f"pg_upsilon_band is one of {', '.join(UPSILON_BANDS)}, not {band!r}")
            if _blank(label) and _blank(flag):
                raise ValueError("pg_upsilon_band needs pg_upsilon_label or pg_upsilon_flag (what to ask of the band)")
            if not _blank(label):
                equals.append((f"pg_upsilon_{band}_label", str(label).strip()))
            if not _blank(flag):
                equals.append((f"pg_upsilon_{band}_flag", _flag(flag, "pg_upsilon_flag")))
        elif not (_blank(label) and _blank(flag)):
            raise ValueError("pg_upsilon_label and pg_upsilon_flag need pg_upsilon_band (u, g, r, i, z or y)")
        expression = parameters.get("attribute_filter")
        return cls(tuple(equals), _parsed(expression.strip() if isinstance(expression, str) else expression))

    def __bool__(self) -> bool:
        return bool(self.equals) or self.expression is not None

    @property
    def nodes(self) -> list[Node]:
        return [Equals(key, value) for key, value in self.equals]

    def server_filter(self) -> AttributeFilter | None:
        """The Pub/Sub filter of these conditions, or None; raises ValueError past Pub/Sub's 256 bytes."""
        return all_of(*self.nodes, self.expression)

    def passes_attributes(self, attributes: Mapping[str, str] | None) -> bool:
        server = self.server_filter()
        return server is None or server.matches(attributes)


@lru_cache(maxsize=256)  # a stream's filter is rebuilt from its parameters for each alert
def _parsed(expression: Any) -> AttributeFilter | None:
    return parse_filter(expression)


def server_filter(parameters: Mapping[str, Any]) -> AttributeFilter | None:
    """The subscription filter a stream query's parameters ask for: the part of its filters that the message
    attributes can express (None when there is none). Raises ValueError for a bad value or filter."""
    return AttributeSelection.from_parameters(parameters).server_filter()


@dataclass(frozen=True)
class AlertFilter:
    """The filters a form offers, each on the fields its survey has: classtar is a ZTF field, reliability a
    Rubin/LSST one. A threshold set on a field the alert's survey lacks fails, as a missing value does.

    ``selection`` adds a cone, a time window, a score threshold and a predicted class (:class:`AlertSelection`),
    which every route applies alike (the BigQuery route in its SQL too)."""

    classtar: ClasstarFilter
    reliability: ReliabilityFilter
    selection: AlertSelection = field(default_factory=lambda: AlertSelection())
    #: Conditions on the message attributes: applied to the message before it is decoded (the subscription's
    #: server-side filter, see :func:`server_filter`), never by :meth:`passes`, which sees the alert.
    attributes: AttributeSelection = field(default_factory=lambda: AttributeSelection())

    @classmethod
    def from_parameters(cls, parameters: Mapping[str, Any]) -> AlertFilter:
        return cls(
            ClasstarFilter.from_parameters(parameters),
            ReliabilityFilter.from_parameters(parameters),
            AlertSelection.from_parameters(parameters),
            AttributeSelection.from_parameters(parameters),
        )

    @property
    def server_filter(self) -> AttributeFilter | None:
        return self.attributes.server_filter()

    @property
    def keeps_everything(self) -> bool:
        """True when the TOM's part keeps every alert (the attribute part is the subscription's)."""
        return self.classtar.threshold is None and self.reliability.threshold is None and not self.selection

    def passes(self, alert: Mapping[str, Any]) -> bool:
        return self.classtar.passes(alert) and self.reliability.passes(alert) and self.selection.passes(alert)

    def __call__(self, alert: Mapping[str, Any]) -> Mapping[str, Any] | None:
        return alert if self.passes(alert) else None
