"""Is the ingester alive? Each run of ``pittgoogle_stream`` (or of the alert stream) writes a heartbeat row.

:class:`Heartbeat` is fed by the ingester's own progress hook (``StreamIngester(progress=...)``): a row at the
start, one update per progress report, and a last one at the end with the last error. :func:`ingester_status`
reads the rows back for the status page and ``manage.py pittgoogle_status``: an ingester that has not stopped
and has not written a heartbeat within ``PITTGOOGLE_HEARTBEAT_LATE_SECONDS`` (default: three progress intervals,
at least 120 s) is late: killed, hung, or its host is down.

Each beat also carries its streams' latency over the last hour and over the night (:func:`~.latency.night`; the
night's figures, over up to a night of alerts, at most every :data:`NIGHT_LATENCY_EVERY`), and writes a
:class:`~tom_pittgoogle.models.BacklogSample` when the backlog changed or the last one is
:data:`BACKLOG_SAMPLE_SECONDS` old, in the same transaction as the row: the status page plots the backlog over the
night from them.
"""

from __future__ import annotations

import logging
import math
import os
import socket
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from tom_pittgoogle import conf
from tom_pittgoogle.core.latency import Night, latency_by_stream, latency_lines, night, streams_behind

logger = logging.getLogger(__name__)

#: The least time without a heartbeat that makes an ingester late, when the setting is not given (seconds).
MIN_LATE_SECONDS = 120.0
#: How many rejected messages the status page and command list.
REJECTED_SHOWN = 20
#: How often a running ingester's heartbeat recomputes its streams' latency over the night (the last hour's is
#: recomputed at each beat): the night may hold millions of alerts.
NIGHT_LATENCY_EVERY = timedelta(minutes=5)
#: A heartbeat writes a backlog sample when the backlog changed, or when the last sample is this old (seconds).
BACKLOG_SAMPLE_SECONDS = 60.0
#: How long backlog samples are kept: a night is at most a day, so two days cover it whenever the page is read.
BACKLOG_HISTORY = timedelta(days=2)
#: How often a running ingester deletes its own samples older than :data:`BACKLOG_HISTORY`.
BACKLOG_TRIM_EVERY = timedelta(hours=1)


class Heartbeat:
    """The heartbeat row of one ingester run. Writing it never stops the ingester: a failure is logged.

    ``clock`` gives the time of each beat (``django.utils.timezone.now``; a test gives its own).
    """

    def __init__(self, streams: Sequence[str], *, progress_interval: float, kind: str = "pittgoogle_stream",
                 clock: Callable[[], datetime] = timezone.now) -> None:
        self.streams = list(streams)
        self.clock = clock
        self.progress_interval = float(progress_interval)
        self.kind = kind
        self.row = None
        self._ingester = None
        self._last_received = 0
        self._last_stored = 0
        self._night_latency: dict[str, Any] | None = None
        self._night_latency_at: datetime | None = None
        self._last_sample: tuple[datetime, int] | None = None
        self._trimmed_at: datetime | None = None

    def start(self, ingester: Any = None) -> None:
        """Write the row of a starting run; ``ingester`` (a ``StreamIngester``) is read for its backlog."""
        from tom_pittgoogle.models import IngesterHeartbeat

        self._ingester = ingester
        now = self.clock()
        self._trimmed_at = now
        self._write(lambda: self._create(IngesterHeartbeat, now))

    def _create(self, model, now: datetime) -> None:
        host = socket.gethostname()
        filters = getattr(self._ingester, "subscription_filters", None)
        self.row = model.objects.create(
            host=host, pid=os.getpid(), kind=self.kind, streams=self.streams,
            subscription_filters=filters() if callable(filters) else {},
            progress_interval=self.progress_interval, started_at=now, last_heartbeat=now,
        )
        # A run that died on this host without a last word (kill -9, a crash, a reboot) is marked stopped when the
        # next one starts here, so that it does not keep the status late once it has been replaced.
        for old in model.objects.filter(host=host, stopped_at__isnull=True).exclude(pk=self.row.pk):
            if _process_gone(old.pid):
                old.stopped_at = now
                old.last_error = (old.last_error + "\n" if old.last_error else "") + (
                    f"its process ended without a last heartbeat; replaced by pid {self.row.pid}"
                )
                old.save(update_fields=["stopped_at", "last_error"])

    def progress(self, stats: Any, line: str = "") -> None:
        """The ingester's progress hook: record its counts, rate, backlog and activity times."""
        if self.row is None:
            return
        now = self.clock()
        row = self.row
        row.rate = stats.rate
        if stats.received > self._last_received:
            row.last_received_at = now
        if stats.stored + stats.duplicates > self._last_stored:
            row.last_stored_at = now
        self._last_received, self._last_stored = stats.received, stats.stored + stats.duplicates
        row.backlog = int(getattr(self._ingester, "backlog", 0) or 0)
        row.received, row.stored, row.duplicates = stats.received, stats.stored, stats.duplicates
        row.filtered_out, row.rejected = stats.filtered_out, stats.rejected
        row.filtered_out_server = getattr(stats, "filtered_out_server", 0)
        row.last_heartbeat = now
        row.latency = self._latency(now)
        self._write(lambda: self._save(row, now))

    def _save(self, row, now: datetime) -> None:
        """The row, and a backlog sample if one is due, in one transaction; the run's old samples once an hour."""
        from tom_pittgoogle.models import BacklogSample

        last = self._last_sample
        sample = last is None or last[1] != row.backlog or (now - last[0]).total_seconds() >= BACKLOG_SAMPLE_SECONDS
        with transaction.atomic():
            row.save()
            if sample:
                BacklogSample.objects.create(heartbeat=row, at=now, backlog=row.backlog)
        if sample:
            self._last_sample = (now, row.backlog)
        if self._trimmed_at is None or now - self._trimmed_at >= BACKLOG_TRIM_EVERY:
            self._trimmed_at = now
            BacklogSample.objects.filter(heartbeat=row, at__lt=now - BACKLOG_HISTORY).delete()

    def _latency(self, now: datetime) -> dict[str, Any] | list:
        """Its streams' latency over the last hour and over the night, each ``{"since", "until", "streams"}``
        (the previous figures if a query fails)."""
        try:
            the_night = night(now)
            night_latency = self._night_latency
            if (night_latency is None or night_latency["since"] != the_night.since.isoformat()
                    or now - self._night_latency_at >= NIGHT_LATENCY_EVERY):
                night_latency = self._night_latency = self._window(the_night.since, now)
                self._night_latency_at = now
            return {"last_hour": self._window(now - timedelta(hours=1), now), "night": night_latency}
        except Exception as error:  # noqa: BLE001 - the heartbeat's figures never stop the ingester
            # One line: an ingester that stops on a database error says so itself, once.
            logger.warning("could not compute the streams' latency for the heartbeat: %s", error)
            return self.row.latency

    def _window(self, since: datetime, until: datetime) -> dict[str, Any]:
        return {"since": since.isoformat(), "until": until.isoformat(),
                "streams": [stream.as_dict() for stream in latency_by_stream(since, until)
                            if _is_one_of(stream.subscription, self.streams)]}

    def reporter(self, also: Callable[[Any, str], None] | None = None) -> Callable[[Any, str], None]:
        """A progress hook that records the heartbeat, then calls ``also`` (the command's own report)."""

        def report(stats: Any, line: str) -> None:
            self.progress(stats, line)
            if also is not None:
                also(stats, line)

        return report

    def stopped(self, error: BaseException | str | None = None) -> None:
        """Write the run's end, with its last error if it stopped on one."""
        if self.row is None:
            return
        self.row.stopped_at = self.row.last_heartbeat = self.clock()
        if error:
            self.row.last_error = str(error)[:2000] or type(error).__name__
        self._write(self.row.save)

    def _write(self, write: Callable[[], Any]) -> None:
        try:
            write()
        except Exception:  # noqa: BLE001 - the night's alerts matter more than the heartbeat
            logger.exception("could not write the ingester's heartbeat")


def _is_one_of(subscription: str, streams: Sequence[str]) -> bool:
    """Whether a stored alert's subscription (a full path) is one of ``streams`` (names or paths)."""
    return any(subscription == name or subscription.endswith(f"/{name}") for name in streams)


def _process_gone(pid: int) -> bool:
    """True if no process of this host has id ``pid`` (signal 0 checks without sending anything)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:  # it exists (another user's, or not ours to signal)
        return False
    return False


#: The longest progress interval an ingester may have (one day): its heartbeat must come within days, and a
#: longer one (1e300, inf) would overflow the time arithmetic of the late check.
MAX_PROGRESS_INTERVAL = 86400.0
#: The interval assumed for a heartbeat row whose own is not a number of seconds in range (an edited row).
DEFAULT_PROGRESS_INTERVAL = 10.0


def progress_interval_of(row) -> float | None:
    """``row``'s progress interval in seconds, or None when it is not a finite number in (0, one day]."""
    value = getattr(row, "progress_interval", None)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if 0 < value <= MAX_PROGRESS_INTERVAL else None  # False for NaN


def late_seconds(row) -> float:
    """How long ``row``'s ingester may go without a heartbeat before it is late.

    A row whose progress interval is not a number of seconds in range (NaN, inf, an edited row) is judged with
    :data:`DEFAULT_PROGRESS_INTERVAL`: the status must show, whatever a row says.
    """
    configured = conf.get("PITTGOOGLE_HEARTBEAT_LATE_SECONDS")
    if configured is not None:
        return float(configured)
    interval = progress_interval_of(row)
    return max(3 * (DEFAULT_PROGRESS_INTERVAL if interval is None else interval), MIN_LATE_SECONDS)


def streams_text(row) -> str:
    """The subscriptions of ``row`` as text (``-`` for none); a row whose ``streams`` is not a list of names
    (an edited row) shows what it holds, quoted."""
    streams = getattr(row, "streams", None)
    if isinstance(streams, list) and all(isinstance(name, str) for name in streams):
        return ", ".join(streams) or "-"
    text = repr(streams)
    return text if len(text) <= 200 else text[:197] + "..."


def row_problems(row) -> list[str]:
    """What is wrong with a heartbeat row that an ingester would not write (shown beside it, not a failure)."""
    problems = []
    if progress_interval_of(row) is None:
        problems.append(f"its progress interval ({row.progress_interval!r}) is not a number of seconds from 0 to "
                        f"{MAX_PROGRESS_INTERVAL:g}: late is judged with {DEFAULT_PROGRESS_INTERVAL:g} s")
    streams = getattr(row, "streams", None)
    if not (isinstance(streams, list) and all(isinstance(name, str) for name in streams)):
        problems.append("its streams are not a list of subscription names")
    return problems


def rate_text(row) -> str:
    """Alerts per second with one decimal; ``-`` for a rate that is not a finite number."""
    rate = getattr(row, "rate", None)
    if isinstance(rate, bool) or not isinstance(rate, int | float) or not math.isfinite(rate):
        return "-"
    return f"{rate:.1f}"


def subscriptions_ingesters_use() -> dict[str, str]:
    """Each subscription an ingester of this TOM reads (a running or stopped run in the heartbeat table, or a
    stream of ``PITTGOOGLE_STREAMS``), with what reads it, in words."""
    from tom_pittgoogle.models import IngesterHeartbeat

    used: dict[str, str] = {}
    entries = conf.get("PITTGOOGLE_STREAMS") or []
    if isinstance(entries, list | tuple):
        for entry in entries:
            name = entry.get("subscription") if isinstance(entry, Mapping) else None
            if isinstance(name, str):
                used.setdefault(name, "a stream of PITTGOOGLE_STREAMS (manage.py pittgoogle_stream)")
    rows = IngesterHeartbeat.objects.order_by("stopped_at", "-last_heartbeat").values_list(
        "streams", "kind", "host", "pid", "stopped_at")
    for streams, kind, host, pid, stopped_at in rows:
        if not isinstance(streams, list):
            continue
        for name in streams:
            if isinstance(name, str) and name not in used:
                state = "running" if stopped_at is None else f"stopped {_when(stopped_at)}"
                used[name] = f"{kind} pid {pid} on {host} ({state})"
    return used


def is_late(row, now: datetime | None = None) -> bool:
    """True for a run that has not stopped and whose last heartbeat is older than :func:`late_seconds`."""
    if row.stopped_at is not None:
        return False
    now = now or timezone.now()
    return now - row.last_heartbeat > timedelta(seconds=late_seconds(row))


@dataclass
class IngesterStatus:
    """One ingester run as the status page shows it."""

    row: Any
    late: bool

    @property
    def streams(self) -> str:
        return streams_text(self.row)

    @property
    def rate(self) -> str:
        return rate_text(self.row)

    @property
    def problems(self) -> list[str]:
        return row_problems(self.row)

    @property
    def state(self) -> str:
        if self.row.stopped_at is not None:
            return "stopped"
        return "late" if self.late else "running"


@dataclass
class Status:
    ingesters: list[IngesterStatus]
    rejected: list[Any]  # RejectedMessage rows without their bytes
    rejected_total: int
    #: Per window ("the last hour", "the night"), each stream's latency (:class:`~.latency.StreamLatency`).
    latency: dict[str, list] = field(default_factory=dict)
    #: The streams whose TOM leg grows, each with a sentence that says so.
    behind: dict[str, str] = field(default_factory=dict)
    #: The night the figures cover (``PITTGOOGLE_NIGHT_STARTS_AT`` / ``PITTGOOGLE_NIGHT_TIME_ZONE``).
    night: Night | None = None

    @property
    def late(self) -> list[IngesterStatus]:
        return [ingester for ingester in self.ingesters if ingester.late]


def ingester_status(*, limit: int = 50, rejected: int = REJECTED_SHOWN) -> Status:
    """The newest ingester runs (running ones first) and the newest rejected messages with their reasons."""
    from tom_pittgoogle.models import IngesterHeartbeat, RejectedMessage

    now = timezone.now()
    rows = list(IngesterHeartbeat.objects.filter(stopped_at__isnull=True)[:limit])
    rows += list(IngesterHeartbeat.objects.filter(stopped_at__isnull=False)[: max(0, limit - len(rows))])
    messages = RejectedMessage.objects.defer("data").order_by("-received_at", "-id")
    the_night = night(now)
    return Status(
        ingesters=[IngesterStatus(row, is_late(row, now)) for row in rows],
        rejected=list(messages[:rejected]),
        rejected_total=RejectedMessage.objects.count(),
        latency={"the last hour": latency_by_stream(now - timedelta(hours=1), now),
                 the_night.label: latency_by_stream(the_night.since, now)},
        behind=streams_behind(now),
        night=the_night,
    )


@dataclass
class BacklogHistory:
    """One ingester run's backlog over the night: the largest sample of each minute."""

    label: str
    minutes: list[datetime]
    backlog: list[int]


def backlog_history(since: datetime, now: datetime | None = None) -> list[BacklogHistory]:
    """The backlog, per minute, of each ingester run with samples since ``since`` (running ones and those that
    stopped during the night), oldest run first."""
    from tom_pittgoogle.models import BacklogSample

    now = now or timezone.now()
    runs: dict[int, BacklogHistory] = {}
    samples = BacklogSample.objects.filter(at__gte=since, at__lt=now).order_by("heartbeat_id", "at").values_list(
        "heartbeat_id", "heartbeat__host", "heartbeat__pid", "heartbeat__stopped_at", "at", "backlog")
    for run, host, pid, stopped_at, at, backlog in samples.iterator():
        history = runs.get(run)
        if history is None:
            history = runs[run] = BacklogHistory(f"{host} pid {pid}" + (" (stopped)" if stopped_at else ""), [], [])
        minute = at.replace(second=0, microsecond=0)
        if history.minutes and history.minutes[-1] == minute:
            history.backlog[-1] = max(history.backlog[-1], backlog)
        else:
            history.minutes.append(minute)
            history.backlog.append(backlog)
    return list(runs.values())


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S UTC") if value else "never"


def status_text(status: Status) -> str:
    """The status as plain text (``manage.py pittgoogle_status``)."""
    lines = []
    if not status.ingesters:
        lines.append("No ingester has run yet (manage.py pittgoogle_stream).")
    for ingester in status.ingesters:
        row = ingester.row
        lines.append(f"{ingester.state.upper()}: {row.kind} pid {row.pid} on {row.host}, streams "
                     f"{ingester.streams}")
        for stream, expression in sorted((row.subscription_filters or {}).items()):
            lines.append(f"  {stream}: subscription filter {expression or '(none)'}")
        lines.append(f"  started {_when(row.started_at)}, last heartbeat {_when(row.last_heartbeat)}"
                     + (f", stopped {_when(row.stopped_at)}" if row.stopped_at else "")
                     + (f" (late after {late_seconds(row):g} s)" if ingester.late else ""))
        lines.append(f"  last received {_when(row.last_received_at)}, last stored {_when(row.last_stored_at)}, "
                     f"{ingester.rate} alerts/s, backlog {row.backlog}")
        lines.append(f"  received {row.received}, stored {row.stored}, duplicates {row.duplicates}, "
                     f"filtered out {row.filtered_out}, rejected {row.rejected}, "
                     f"filtered out (server) {row.filtered_out_server}")
        if row.last_error:
            lines.append(f"  last error: {row.last_error}")
        for problem in ingester.problems:
            lines.append(f"  this heartbeat row is odd: {problem}")
    lines.extend(f"FALLING BEHIND: {sentence}" for sentence in status.behind.values())
    lines.extend(latency_lines(status.latency))
    lines.append(f"Rejected messages: {status.rejected_total} kept"
                 + (f", newest {len(status.rejected)}:" if status.rejected else "."))
    for message in status.rejected:
        lines.append(f"  {_when(message.received_at)} {message.subscription} {message.message_id}: "
                     f"{message.reason}")
    return "\n".join(lines)
