"""How late each alert reaches the TOM, in three legs stored with the alert.

- ``exposure_to_survey``: the exposure (the alert's ``jd``) to the survey's publication (the Kafka timestamp);
- ``survey_to_broker``: the survey's publication to Pitt-Google's publication on Pub/Sub (the message's
  ``publish_time``);
- ``broker_to_tom``: Pitt-Google's publication to the commit of the transaction that stored the alert here.

The first two are known when the row is built (:func:`message_legs`). The third needs the commit time, which the
transaction itself cannot know: :func:`stamp_committed` takes the time right after the commit returned and writes
it, with the leg, into the rows that are not stamped yet, in one ``UPDATE`` per batch. A row stored from a BigQuery
query has no message, so no ``published_at``: it gets no delivery leg and is never stamped.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.db import connection, models

from tom_pittgoogle import conf
from tom_pittgoogle.core.database import database_is_down
from tom_pittgoogle.exceptions import ConfigurationError

logger = logging.getLogger(__name__)


def parse_publish_time(text: Any) -> datetime | None:
    """A REST message's ``publishTime`` (RFC 3339, nanoseconds) as an aware datetime; None if absent or unreadable."""
    if not isinstance(text, str) or not text:
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        return None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def message_legs(alert: Mapping, publish_time: datetime | None) -> dict[str, Any]:
    """The model fields of the legs known before the alert is stored: ``published_at``, ``exposure_to_survey``
    and ``survey_to_broker`` (None where the alert or its message lacks the time)."""
    kafka_ms = alert.get("kafka_timestamp")
    exposure_to_survey = alert.get("latency_seconds")
    survey_to_broker = None
    if publish_time is not None and isinstance(kafka_ms, int):
        survey_to_broker = round(publish_time.timestamp() - kafka_ms / 1000.0, 6)
    return {
        "published_at": publish_time,
        "exposure_to_survey": exposure_to_survey if isinstance(exposure_to_survey, int | float) else None,
        "survey_to_broker": survey_to_broker,
    }


class SecondsBetween(models.Func):
    """``later - earlier`` in seconds (a float), on PostgreSQL and SQLite (the demo)."""

    output_field = models.FloatField()
    arity = 2

    def as_postgresql(self, compiler, connection, **extra):
        return self.as_sql(compiler, connection, template="EXTRACT(EPOCH FROM (%(expressions)s))::double precision",
                           arg_joiner=" - ", **extra)

    def as_sqlite(self, compiler, connection, **extra):
        return self.as_sql(compiler, connection, template="((julianday(%(expressions)s)) * 86400.0)",
                           arg_joiner=") - julianday(", **extra)

    def as_mysql(self, compiler, connection, **extra):
        later, earlier = self.get_source_expressions()
        swapped = self.copy()
        swapped.set_source_expressions([earlier, later])
        return super(SecondsBetween, swapped).as_sql(
            compiler, connection, template="(TIMESTAMPDIFF(MICROSECOND, %(expressions)s) / 1000000.0)", **extra)


def stamp_committed(keys: Iterable[tuple[str, str]], committed_at: datetime | None = None) -> int:
    """Write the commit time and the ``broker_to_tom`` leg into the stored alerts of ``keys`` (survey, source id)
    that came by Pub/Sub and are not stamped yet; return how many rows were stamped.

    Call it right after the transaction that stored them committed, with the time taken then (a redelivered alert
    keeps the time of its first commit). It runs in its own statement: if it fails the alerts stay stored and
    acknowledged, without their last leg, and the failure is logged, not raised, unless the database is down.
    """
    from tom_pittgoogle.models import Alert

    keys = set(keys)
    if not keys:
        return 0
    committed_at = committed_at or datetime.now(UTC)
    try:
        return Alert.objects.filter(
            survey__in={survey for survey, _ in keys}, source_id__in={source for _, source in keys},
            committed_at__isnull=True, published_at__isnull=False,
        ).update(committed_at=committed_at,
                 broker_to_tom=SecondsBetween(models.Value(committed_at, models.DateTimeField()), "published_at"))
    except Exception as error:
        if database_is_down(error):
            raise
        logger.warning("could not record when %d alerts were committed: %s", len(keys), error)
        return 0


# --- seen at a glance: percentiles per stream -------------------------------------------------------------------

#: The legs, as the status names them.
LEGS = {"exposure_to_survey": "exposure → survey", "survey_to_broker": "survey → Pitt-Google",
        "broker_to_tom": "Pitt-Google → TOM"}
PERCENTILES = (0.5, 0.95, 0.99)
#: An ingester falls behind when the TOM leg's p95 over the last RECENT_MINUTES is over
#: ``PITTGOOGLE_FALLING_BEHIND_SECONDS`` and larger than over the RECENT_MINUTES before (growing, not just slow).
RECENT_MINUTES = 5


# --- the night ---------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Night:
    """The night the status shows: from ``since`` (aware) until now; ``label`` says so in words."""

    since: datetime
    label: str


def night_starts_at() -> time:
    """``PITTGOOGLE_NIGHT_STARTS_AT`` as a time of day (``"HH:MM"``, ``"HH:MM:SS"`` or a ``datetime.time``)."""
    value = conf.get("PITTGOOGLE_NIGHT_STARTS_AT")
    starts_at = None
    if isinstance(value, time):
        starts_at = value
    elif isinstance(value, str):
        try:
            starts_at = time.fromisoformat(value.strip())
        except ValueError:
            pass
    if starts_at is None or starts_at.tzinfo is not None:
        raise ConfigurationError(f"PITTGOOGLE_NIGHT_STARTS_AT is {value!r}: give the time of day a night starts, "
                                 'as "HH:MM" (for example "12:00"), and its time zone in PITTGOOGLE_NIGHT_TIME_ZONE')
    return starts_at


def night_time_zone() -> tzinfo:
    """``PITTGOOGLE_NIGHT_TIME_ZONE`` (an IANA name such as ``"America/Santiago"``), else the TOM's ``TIME_ZONE``."""
    from django.utils import timezone

    value = conf.get("PITTGOOGLE_NIGHT_TIME_ZONE")
    if value is None:
        return timezone.get_default_timezone()
    if isinstance(value, tzinfo):
        return value
    if isinstance(value, str) and value.strip():
        try:
            return ZoneInfo(value.strip())
        except (ZoneInfoNotFoundError, ValueError):
            pass
    raise ConfigurationError(f"PITTGOOGLE_NIGHT_TIME_ZONE is {value!r}: give a time zone name of the IANA "
                             'database, such as "America/Santiago", or None for the TOM\'s TIME_ZONE')


def night(now: datetime | None = None) -> Night:
    """The night at ``now``: it began at the latest ``PITTGOOGLE_NIGHT_STARTS_AT`` in the night's time zone."""
    now = now or datetime.now(UTC)
    zone = night_time_zone()
    local_now = now.astimezone(zone)
    start = datetime.combine(local_now.date(), night_starts_at(), tzinfo=zone)
    if start > local_now:
        start = datetime.combine(local_now.date() - timedelta(days=1), night_starts_at(), tzinfo=zone)
    zone_name = getattr(zone, "key", None) or start.tzname() or str(zone)
    return Night(start.astimezone(UTC), f"the night since {start:%Y-%m-%d %H:%M} {zone_name}")


def falling_behind_seconds() -> float:
    """``PITTGOOGLE_FALLING_BEHIND_SECONDS``: the TOM leg's p95 above which a growing stream falls behind."""
    value = conf.get("PITTGOOGLE_FALLING_BEHIND_SECONDS")
    if not isinstance(value, bool) and isinstance(value, int | float) and 0 <= value < float("inf"):
        return float(value)
    raise ConfigurationError(f"PITTGOOGLE_FALLING_BEHIND_SECONDS is {value!r}: give a number of seconds (60 by "
                             "default)")


def check_settings() -> list[str]:
    """What is wrong with the night's and the falling-behind settings, in words (empty: nothing)."""
    problems = []
    for read in (night_starts_at, night_time_zone, falling_behind_seconds):
        try:
            read()
        except ConfigurationError as error:
            problems.append(str(error))
    return problems


@dataclass
class StreamLatency:
    """One stream's alerts over a window: how many, per minute, and the p50/p95/p99 of each leg (None: no data)."""

    subscription: str
    alerts: int
    per_minute: float
    legs: dict[str, tuple[float | None, ...]]

    def as_dict(self) -> dict[str, Any]:
        return {"subscription": self.subscription, "alerts": self.alerts, "per_minute": self.per_minute,
                "legs": {leg: list(values) for leg, values in self.legs.items()}}


def _interpolated(values: list[float], fraction: float) -> float | None:
    """``percentile_cont``: linear interpolation between the closest ranks of sorted ``values``."""
    if not values:
        return None
    position = fraction * (len(values) - 1)
    low = int(position)
    high = min(low + 1, len(values) - 1)
    return values[low] + (values[high] - values[low]) * (position - low)


def _percentiles_sql(since: datetime, until: datetime, subscriptions: Sequence[str] | None) -> list[tuple]:
    """PostgreSQL: one row per stream with its count and each leg's percentiles as arrays."""
    from tom_pittgoogle.models import Alert

    table = connection.ops.quote_name(Alert._meta.db_table)
    legs = ", ".join(f"percentile_cont(%s::double precision[]) WITHIN GROUP (ORDER BY {leg})" for leg in LEGS)
    where = "committed_at >= %s AND committed_at < %s"
    params: list[Any] = [list(PERCENTILES)] * len(LEGS) + [since, until]
    if subscriptions is not None:
        where += " AND subscription = ANY(%s)"
        params.append(list(subscriptions))
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT subscription, count(*), {legs} FROM {table} WHERE {where} GROUP BY subscription "
                       "ORDER BY subscription", params)
        return [(row[0], row[1], *[tuple(values) if values else (None,) * len(PERCENTILES) for values in row[2:]])
                for row in cursor.fetchall()]


def _percentiles_portable(since: datetime, until: datetime, subscriptions: Sequence[str] | None) -> list[tuple]:
    """Any database (SQLite, the demo): the legs read back and interpolated here as ``percentile_cont`` does."""
    from tom_pittgoogle.models import Alert

    rows = Alert.objects.filter(committed_at__gte=since, committed_at__lt=until)
    if subscriptions is not None:
        rows = rows.filter(subscription__in=list(subscriptions))
    by_stream: dict[str, list[tuple]] = {}
    for row in rows.values_list("subscription", *LEGS):
        by_stream.setdefault(row[0], []).append(row[1:])
    result = []
    for subscription in sorted(by_stream):
        values = by_stream[subscription]
        columns = []
        for index in range(len(LEGS)):
            known = sorted(value[index] for value in values if value[index] is not None)
            columns.append(tuple(_interpolated(known, fraction) for fraction in PERCENTILES))
        result.append((subscription, len(values), *columns))
    return result


def latency_by_stream(since: datetime, until: datetime | None = None,
                      subscriptions: Sequence[str] | None = None) -> list[StreamLatency]:
    """Each stream's alerts committed in [since, until): count, per minute, and p50/p95/p99 of each leg."""
    until = until or datetime.now(UTC)
    rows = (_percentiles_sql if connection.vendor == "postgresql" else _percentiles_portable)(
        since, until, subscriptions)
    minutes = max((until - since).total_seconds() / 60.0, 1e-9)
    return [StreamLatency(subscription, count, round(count / minutes, 2), dict(zip(LEGS, legs, strict=True)))
            for subscription, count, *legs in rows]


@dataclass
class NightTimeline:
    """Per minute of the night: each stream's alerts and the TOM leg's p95 (for the status page's plots)."""

    minutes: dict[str, list[datetime]]
    alerts: dict[str, list[int]]
    tom_p95: dict[str, list[float | None]]


def night_timeline(since: datetime, now: datetime | None = None) -> NightTimeline:
    """Each stream's alerts per minute and the TOM leg's p95 per minute from ``since`` (the night's start)."""
    from tom_pittgoogle.models import Alert

    now = now or datetime.now(UTC)
    timeline = NightTimeline({}, {}, {})
    if connection.vendor == "postgresql":
        table = connection.ops.quote_name(Alert._meta.db_table)
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT subscription, date_trunc('minute', committed_at) AS minute, count(*), "
                "percentile_cont(0.95) WITHIN GROUP (ORDER BY broker_to_tom) "
                f"FROM {table} WHERE committed_at >= %s AND committed_at < %s "
                "GROUP BY subscription, minute ORDER BY subscription, minute", [since, now])
            rows = cursor.fetchall()
    else:
        grouped: dict[tuple[str, datetime], list[float]] = {}
        for subscription, committed, leg in Alert.objects.filter(
            committed_at__gte=since, committed_at__lt=now
        ).values_list("subscription", "committed_at", "broker_to_tom"):
            grouped.setdefault((subscription, committed.replace(second=0, microsecond=0)), []).append(leg)
        rows = [(subscription, minute, len(legs), _interpolated(sorted(v for v in legs if v is not None), 0.95))
                for (subscription, minute), legs in sorted(grouped.items())]
    for subscription, minute, count, p95 in rows:
        timeline.minutes.setdefault(subscription, []).append(minute)
        timeline.alerts.setdefault(subscription, []).append(int(count))
        timeline.tom_p95.setdefault(subscription, []).append(None if p95 is None else float(p95))
    return timeline


def streams_behind(now: datetime | None = None, subscriptions: Sequence[str] | None = None) -> dict[str, str]:
    """The streams whose TOM leg grows: its p95 over the last minutes is over ``PITTGOOGLE_FALLING_BEHIND_SECONDS``
    and above the p95 of the minutes before. Maps each to a sentence that says so, naming the setting."""
    now = now or datetime.now(UTC)
    threshold = falling_behind_seconds()
    recent_start = now - timedelta(minutes=RECENT_MINUTES)
    recent = {s.subscription: s.legs["broker_to_tom"][1]
              for s in latency_by_stream(recent_start, now, subscriptions)}
    before = {s.subscription: s.legs["broker_to_tom"][1]
              for s in latency_by_stream(recent_start - timedelta(minutes=RECENT_MINUTES), recent_start, subscriptions)}
    behind = {}
    for subscription, p95 in recent.items():
        earlier = before.get(subscription)
        if p95 is not None and p95 > threshold and (earlier is None or p95 > earlier):
            behind[subscription] = (
                f"the ingester of {subscription} is falling behind: TOM leg p95 {p95:.0f} s over the last "
                f"{RECENT_MINUTES} minutes" + (f" (up from {earlier:.0f} s)" if earlier is not None else "")
                + f", above PITTGOOGLE_FALLING_BEHIND_SECONDS={threshold:g} s (the TOM leg: from Pitt-Google's "
                "publication to the commit in this TOM)"
            )
    return behind


def format_seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def latency_lines(windows: Mapping[str, Sequence[StreamLatency]]) -> list[str]:
    """Plain-text lines: per window and stream, alerts per minute and p50/p95/p99 of each leg (seconds)."""
    lines = []
    for window, streams in windows.items():
        if not streams:
            lines.append(f"Latency over {window}: no alerts committed from Pub/Sub.")
            continue
        lines.append(f"Latency over {window} (seconds, p50/p95/p99):")
        for stream in streams:
            legs = "; ".join(f"{LEGS[leg]} {'/'.join(format_seconds(v) for v in values)}"
                             for leg, values in stream.legs.items())
            lines.append(f"  {stream.subscription}: {stream.alerts} alerts, {stream.per_minute:.1f}/min; {legs}")
    return lines
