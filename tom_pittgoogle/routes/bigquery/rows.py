"""A BigQuery result read as alerts, and the alerts of several tables merged into one answer.

A row that cannot be read as an alert is logged with its table and ids and skipped (:class:`SkippedRow`); the
other rows are kept. The tables' alerts are merged newest first, each alert once (Pitt-Google fills its tables
through BigQuery subscriptions, which deliver at least once), and cut to ``max_results``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from tom_pittgoogle.core.alerts import lighten_alert

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SkippedRow:
    """A row of a result that could not be read as an alert: skipped, and reported."""

    table: str
    ids: str
    reason: str


def read_alerts(
    rows: Iterable[Any],
    table: str,
    callback: Callable[..., Any] | None,
    lighten_alerts: bool,
    kwargs: Mapping[str, Any],
    skipped: list[SkippedRow],
) -> list:
    """The alerts of ``rows``, lightened, through ``callback`` if given (None drops one); unreadable rows are
    added to ``skipped``."""
    alerts = []
    for row in rows:
        try:
            alert = dict(row.items())
            if lighten_alerts:
                alert = lighten_alert(alert)
            if callback is not None:
                alert = callback(alert, **kwargs)
        except Exception as error:  # any failure of one row's mapping: report it, go on with the others
            row_skipped = SkippedRow(table, _row_ids(row), f"{type(error).__name__}: {error}")
            skipped.append(row_skipped)
            logger.warning("skipped a row of %s that is not a readable alert (%s): %s", table, row_skipped.ids,
                           row_skipped.reason)
            continue
        if alert is not None:
            alerts.append(alert)
    return alerts


def alert_key(alert: Mapping[str, Any]) -> tuple[str, str]:
    """What makes an alert one: its survey and source id."""
    return str(alert.get("survey")), str(alert.get("source_id"))


def merge_newest_first(alerts: Iterable[dict], max_results: int) -> list[dict]:
    """The alerts of every table, newest first, each (survey, source id) once, at most ``max_results``."""
    alerts = sorted(alerts, key=_newest_key, reverse=True)
    unique = {alert_key(alert): alert for alert in reversed(alerts)}
    return sorted(unique.values(), key=_newest_key, reverse=True)[:max_results]


def _newest_key(alert: Mapping[str, Any]) -> tuple:
    jd = alert.get("jd")
    return (jd is not None, jd if jd is not None else 0.0, str(alert.get("source_id")))


def _row_ids(row: Any) -> str:
    """The ids of a result row, for a log line (whatever of them it has)."""
    ids = []
    for path in ("objectId", "candid", "diaSource.diaSourceId", "diaSource.diaObjectId"):
        value: Any = row
        try:
            for part in path.split("."):
                value = value[part] if isinstance(value, Mapping) else value.get(part)
        except (KeyError, AttributeError, TypeError, IndexError):
            continue
        if value is not None:
            ids.append(f"{path}={value}")
    return ", ".join(ids) or "no ids"
