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
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from django.db import models

from tom_pittgoogle.core.database import database_is_down

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
