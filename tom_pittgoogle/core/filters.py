"""The alert filters the forms offer, as one spec shared by every stream route.

The original compared with ``~`` on a Python bool (``~True == -2``, truthy), so "greater than or equal" let
every alert through, and an alert without ``classtar`` crashed the pull. Here each comparison is explicit and
a missing or null value fails any threshold. ``classtar`` is a ZTF field; Rubin/LSST alerts are filtered on
``reliability`` instead (:class:`AlertFilter` combines both; each form offers the one of its survey).

Every survey's alerts can also be selected by a cone, a time window, a score and a predicted class
(:class:`AlertSelection`, on the lightened alert's ``ra``/``dec``, ``jd`` (UTC), ``scores`` and ``classifiers``).
The BigQuery route renders the same selection as SQL with the same arithmetic, so every route keeps the same alerts.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

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


@dataclass(frozen=True)
class AlertFilter:
    """The filters a form offers, each on the fields its survey has: classtar is a ZTF field, reliability a
    Rubin/LSST one. A threshold set on a field the alert's survey lacks fails, as a missing value does.

    ``selection`` adds a cone, a time window, a score threshold and a predicted class (:class:`AlertSelection`),
    which every route applies alike (the BigQuery route in its SQL too)."""

    classtar: ClasstarFilter
    reliability: ReliabilityFilter
    selection: AlertSelection = field(default_factory=lambda: AlertSelection())

    @classmethod
    def from_parameters(cls, parameters: Mapping[str, Any]) -> AlertFilter:
        return cls(
            ClasstarFilter.from_parameters(parameters),
            ReliabilityFilter.from_parameters(parameters),
            AlertSelection.from_parameters(parameters),
        )

    @property
    def keeps_everything(self) -> bool:
        return self.classtar.threshold is None and self.reliability.threshold is None and not self.selection

    def passes(self, alert: Mapping[str, Any]) -> bool:
        return self.classtar.passes(alert) and self.reliability.passes(alert) and self.selection.passes(alert)

    def __call__(self, alert: Mapping[str, Any]) -> Mapping[str, Any] | None:
        return alert if self.passes(alert) else None
