"""The stream ingester: listen to Pub/Sub subscriptions for as long as wanted and store every alert once.

Pub/Sub delivers at least once; storage is keyed on (survey, source id) and a message is acknowledged only
after the transaction that stores it commits, so every alert is stored exactly once however often it comes,
and an ingester killed at any moment loses nothing (what it had not acknowledged comes back).

Threads: google-cloud-pubsub runs the streaming pull and calls :meth:`StreamIngester._on_message` in a worker
thread of its own, one per subscription (``callback_threads``: the library's default of ten threads contend
for the GIL and spend more CPU per alert than one). It
only decodes and filters, and queues what passes. The thread that called
:meth:`StreamIngester.run` owns the database connection: it takes the queue in batches (up to ``batch_size``
alerts or ``batch_seconds``), stores each batch in one transaction, then acknowledges it. Flow control
(``max_backlog`` messages leased per subscription) bounds the queue, so memory stays flat all night.

:class:`~tom_pittgoogle.core.subscription.Subscription` objects are what it pulls through; it knows nothing of the
routes above it: :class:`~tom_pittgoogle.routes.stream_python.ConsumerStreamPython` runs one stream through
this module, the ``pittgoogle_stream`` command and the tom-alertstreams adapter run one or several all night.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from django.db import reset_queries, transaction

from tom_pittgoogle import conf
from tom_pittgoogle.core.alerts.decode import DecodeLimits, limits_for_batch
from tom_pittgoogle.core.attribute_filter import AttributeFilter
from tom_pittgoogle.core.filters import ATTRIBUTE_KEYS, SELECTION_KEYS, AlertFilter, server_filter
from tom_pittgoogle.core.latency import stamp_committed
from tom_pittgoogle.core.pubsub import (
    AlertCallback,
    close_client,
    subscriber_client,
    unpack_message,
    validate_resource_id,
)
from tom_pittgoogle.core.settle import settle, stored_keys
from tom_pittgoogle.core.store import AlertStore, DjangoAlertStore, RawMessage, SavedBatch, guard_database
from tom_pittgoogle.core.subscription import Subscription
from tom_pittgoogle.exceptions import ConfigurationError, PittGoogleError

logger = logging.getLogger(__name__)

#: Google's default flow control: at most this many messages leased and not yet acknowledged.
DEFAULT_MAX_BACKLOG = 1000
#: Largest batch stored in one transaction.
MAX_BATCH = 500
#: Longest a received alert waits for its batch to fill before it is stored (seconds). A batch costs about 4 ms of
#: CPU whatever its size (its transaction, the COPY, matching the Targets, stamping the commit): a trickle of 300
#: alerts/s gathered for a second pays that once per 300 alerts, not once per 75, for at most a second of latency.
BATCH_SECONDS = 1.0
#: Threads that run the callbacks of one subscription (decode and filter).
CALLBACK_THREADS = 1

#: ``TargetMaker(alert)``: create or update the TOM Target of a stored alert (the TOM adapter supplies it).
TargetMaker = Callable[[Mapping[str, Any]], Any]


@dataclass
class Stream:
    """One subscription to listen to, and what to do with its alerts.

    ``subscription`` is its name (the engine makes the :class:`~tom_pittgoogle.core.subscription.Subscription`, in
    ``project`` and attached to ``survey``'s topic), or a ``Subscription`` the caller already has.
    ``callback`` follows the original's filter contract: called as ``callback(alert, **callback_kwargs)``, it
    returns the alert if it passes, else None. ``lighten`` decides what the callback sees and what
    ``on_stored`` receives: the lightened alert (common fields) or the full record. What is stored is always
    the lightened alert.
    """

    subscription: str | Subscription
    callback: AlertCallback | None = None
    callback_kwargs: Mapping[str, Any] | None = None
    lighten: bool = True
    create_targets: bool = False
    save_metadata: bool = True
    project: str | None = None
    survey: str | None = None  # which Pitt-Google project a new subscription's topic is in (ZTF's by default)
    server_filter: AttributeFilter | None = None
    topic: str | None = None
    #: The TargetList whose Targets this stream's alerts are attached to; None: PITTGOOGLE_FOLLOW_TARGET_LIST.
    follow_list: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.subscription, Subscription):
            validate_resource_id(self.subscription)

    @property
    def name(self) -> str:
        """The subscription's name (what settings, handlers and progress lines call the stream)."""
        return self.subscription.name if isinstance(self.subscription, Subscription) else self.subscription

    #: Keys a stream declared in ``settings.PITTGOOGLE_STREAMS`` may have.
    SETTING_KEYS = frozenset({"subscription", "topic", "survey", "filter", "create_targets", "save_metadata",
                              "project",
                              "follow_list"})

    @classmethod
    def from_setting(cls, entry: Mapping[str, Any]) -> Stream:
        """A stream declared in settings: ``{"subscription": "ztf-loop", "filter": {...}, "create_targets": True}``.

        ``filter`` holds the same fields as the query forms (``classtar_threshold`` and ``classtar_gt_lt`` for
        ZTF, ``reliability_threshold`` for LSST; for either ``cone_ra``/``cone_dec``/``cone_radius_arcsec``,
        ``start_time``/``end_time`` (ISO 8601, UTC), ``score_name``/``score_min``, ``predicted_class``; and
        what the message attributes say, which becomes the subscription's server-side filter:
        ``pg_supernnova_class``, ``pg_variable``, ``pg_upsilon_band`` with ``pg_upsilon_label``/``pg_upsilon_flag``,
        ``pg_has_min_detections``, ``n_previous_detections``, ``is_pure``, ``is_extragalactic_transient``, ``fid``
        and ``attribute_filter``, an expression of Google's filter language);
        ``survey`` is "ztf" (default) or "lsst"; ``topic`` the Pitt-Google topic when it is not the subscription's
        name (a subscription of its own for a filter).
        """
        if not isinstance(entry, Mapping) or "subscription" not in entry:
            raise ConfigurationError(f"a PITTGOOGLE_STREAMS entry needs a 'subscription': {entry!r}")
        unknown = set(entry) - cls.SETTING_KEYS
        if unknown:
            raise ConfigurationError(
                f"unknown keys {sorted(unknown)} in the PITTGOOGLE_STREAMS entry for {entry['subscription']!r}; "
                f"allowed: {sorted(cls.SETTING_KEYS)}"
            )
        parameters = entry.get("filter") or {}
        return cls(
            subscription=entry["subscription"],
            callback=alert_filter(parameters),
            create_targets=bool(entry.get("create_targets", False)),
            save_metadata=bool(entry.get("save_metadata", True)),
            project=entry.get("project"),
            survey=entry.get("survey"),
            server_filter=stream_server_filter(parameters),
            topic=entry.get("topic"),
            follow_list=entry.get("follow_list"),
        )


#: Every filter field a stream takes (forms, settings, command options).
FILTER_KEYS = frozenset({"classtar_threshold", "classtar_gt_lt", "reliability_threshold", *SELECTION_KEYS,
                         *ATTRIBUTE_KEYS})


def _filter_spec(parameters: Mapping[str, Any]) -> AlertFilter:
    unknown = set(parameters) - FILTER_KEYS
    if unknown:
        raise ConfigurationError(f"unknown filter fields {sorted(unknown)}")
    try:
        return AlertFilter.from_parameters(parameters)
    except ConfigurationError:  # a bad filter expression: its message says what and where
        raise
    except (TypeError, ValueError) as error:
        raise ConfigurationError(f"bad filter {dict(parameters)!r}: {error}") from None


def alert_filter(parameters: Mapping[str, Any]) -> AlertCallback | None:
    """The TOM's part of the filter the forms' fields describe, as a stream callback; None when it keeps every
    alert (the part on message attributes is the subscription's: :func:`stream_server_filter`)."""
    spec = _filter_spec(parameters)
    if spec.keeps_everything:
        return None
    return spec


def stream_server_filter(parameters: Mapping[str, Any]) -> AttributeFilter | None:
    """The subscription filter the forms' fields ask for (what the message attributes can express), or None."""
    _filter_spec(parameters)  # the same checks as alert_filter
    try:
        return server_filter(parameters)
    except ConfigurationError:
        raise
    except ValueError as error:
        raise ConfigurationError(f"bad filter {dict(parameters)!r}: {error}") from None


def streams_from_settings() -> list[Stream]:
    """The streams declared in ``settings.PITTGOOGLE_STREAMS`` (a list of dicts, as :meth:`Stream.from_setting`)."""
    entries = conf.get("PITTGOOGLE_STREAMS") or []
    if not isinstance(entries, Sequence) or isinstance(entries, str | bytes):
        raise ConfigurationError("PITTGOOGLE_STREAMS must be a list of streams (dicts with a 'subscription').")
    return [Stream.from_setting(entry) for entry in entries]


@dataclass
class IngestStats:
    """What an ingester has done so far; ``line()`` is its progress line."""

    received: int = 0
    stored: int = 0  # new rows
    duplicates: int = 0  # alerts that were already stored (a redelivery): acknowledged, not stored twice
    filtered_out: int = 0  # by the TOM's filter
    filtered_out_server: int = 0  # by the subscription's filter (Pub/Sub would not have delivered them)
    rejected: int = 0  # messages that are not alerts: recorded, then acknowledged
    handed_back: int = 0  # nacked: beyond max_results, or still in flight at a hard stop
    target_errors: int = 0
    started_at: float = field(default_factory=time.monotonic)
    #: When the run ended (``time.monotonic()``); None while it runs. The summary, the last heartbeat and the
    #: status then all give the same elapsed time and rate.
    finished_at: float | None = None

    @property
    def accepted(self) -> int:
        """Alerts that passed the filter and are in the database (new or not)."""
        return self.stored + self.duplicates

    @property
    def elapsed(self) -> float:
        return (self.finished_at if self.finished_at is not None else time.monotonic()) - self.started_at

    @property
    def rate(self) -> float:
        """The alert rate, defined once for every place that shows it (progress lines, the summary, the status):
        alerts that passed the filter and are stored, per second since the run started."""
        elapsed = self.elapsed
        return self.accepted / elapsed if elapsed > 0 else 0.0

    @property
    def finished(self) -> bool:
        return self.finished_at is not None

    def line(self, *, backlog: int | None = None) -> str:
        parts = [
            f"received {self.received}",
            f"stored {self.stored}",
            f"duplicates {self.duplicates}",
            f"filtered out {self.filtered_out}",
            f"rejected {self.rejected}",
            f"filtered out (server) {self.filtered_out_server}",
            f"{self.rate:.1f} alerts/s",
        ]
        if backlog is not None:
            parts.append(f"backlog {backlog}")
        if self.handed_back:
            parts.append(f"handed back {self.handed_back}")
        if self.target_errors:
            parts.append(f"target errors {self.target_errors}")
        return ", ".join(parts)


#: ``progress(stats, line)``: called every ``progress_interval`` seconds and once at the end.
ProgressReporter = Callable[[IngestStats, str], None]


class _Subscribed:
    """A stream while it runs: its subscription (checks, error translation) and its streaming pull's future."""

    def __init__(self, stream: Stream, subscription: Subscription) -> None:
        self.stream = stream
        self.subscription = subscription
        self.future = None

    @property
    def path(self) -> str:
        return self.subscription.path


class StreamIngester:
    """Listen to ``streams`` until stopped; store each alert once and acknowledge it after it is stored.

    Stopping conditions (:meth:`run`): ``max_results`` alerts accepted, ``timeout`` seconds without a message,
    :meth:`stop` (a signal handler may call it), or a fatal error (raised as a
    :class:`~tom_pittgoogle.exceptions.PittGoogleError`). In every case what was received and queued is stored
    and acknowledged first, unless storage itself failed; nothing is acknowledged that was not stored.
    """

    def __init__(
        self,
        streams: Sequence[Stream],
        *,
        store: AlertStore | None = None,
        client: Any = None,
        max_backlog: int = DEFAULT_MAX_BACKLOG,
        batch_size: int = MAX_BATCH,
        batch_seconds: float = BATCH_SECONDS,
        on_stored: Callable[[Stream, list], None] | None = None,
        target_maker: TargetMaker | None = None,
        progress: ProgressReporter | None = None,
        progress_interval: float = 10.0,
        health_check_interval: float = 30.0,
        touch: bool = True,
        callback_threads: int = CALLBACK_THREADS,
    ) -> None:
        if not streams:
            raise ConfigurationError("no stream to listen to")
        if any(stream.create_targets for stream in streams) and target_maker is None:
            raise ConfigurationError("create_targets needs a target maker (the TOM adapter supplies one)")
        self._owns_client = client is None
        self.client = subscriber_client() if client is None else client
        self.store = DjangoAlertStore() if store is None else store
        self.max_backlog = int(max_backlog)
        self.batch_size = max(1, int(batch_size))
        self.batch_seconds = float(batch_seconds)
        self.on_stored = on_stored
        self.target_maker = target_maker
        self.progress = progress
        self.progress_interval = float(progress_interval)
        self.health_check_interval = float(health_check_interval)
        self.callback_threads = max(1, int(callback_threads))
        self.stats = IngestStats()
        self._stats_lock = threading.Lock()
        self._queue: queue.Queue = queue.Queue()
        #: Set by the callback once the queue holds ``_fill_target`` items: the storing thread, gathering a batch,
        #: sleeps until then (or its linger ends) instead of waking for every message.
        self._filled = threading.Event()
        self._fill_target = self.batch_size
        self._stopping = threading.Event()
        self._last_message_at = time.monotonic()
        try:
            self._subscribed = [_Subscribed(stream, self._subscription(stream)) for stream in streams]
            if touch:
                for subscribed in self._subscribed:
                    subscribed.subscription.touch()
        except BaseException:
            self._close_own_client()
            raise

    def _subscription(self, stream: Stream) -> Subscription:
        if isinstance(stream.subscription, Subscription):
            return stream.subscription
        # One client for every stream: one channel, one pool of callback threads.
        return Subscription(stream.subscription, project=stream.project, survey=stream.survey, client=self.client,
                            topic=stream.topic, filter=stream.server_filter)

    def __repr__(self) -> str:
        return f"<StreamIngester {[s.path for s in self._subscribed]}>"

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    def stop(self) -> None:
        """Ask :meth:`run` to finish: stop pulling, store what is in flight, acknowledge it, return.

        Safe to call from a signal handler or another thread.
        """
        self._stopping.set()

    def subscription_filters(self) -> dict[str, str]:
        """Each stream's subscription filter as Pub/Sub holds it ("" for none), by stream name."""
        return {s.stream.name: s.subscription.filter_expression for s in self._subscribed}

    @property
    def backlog(self) -> int:
        """Messages received and decoded, waiting to be stored."""
        return self._queue.qsize()

    # --- running ----------------------------------------------------------------------------------------

    def run(self, *, max_results: int | None = None, timeout: float | None = None) -> IngestStats:
        """Listen until a stopping condition; return the final statistics."""
        from google.cloud import pubsub_v1
        from google.cloud.pubsub_v1.subscriber.scheduler import ThreadScheduler

        self.stats = IngestStats()
        self._last_message_at = time.monotonic()
        self._limits = DecodeLimits.from_settings()
        flow_control = pubsub_v1.types.FlowControl(
            max_messages=self.max_backlog,
            # Leases are renewed while a message waits; a short lease means the messages of a listener that
            # stopped or died go back to the subscription within seconds.
            max_duration_per_lease_extension=int(conf.get("PITTGOOGLE_STREAM_LEASE_SECONDS")),
        )
        storage_failed = False
        try:
            for subscribed in self._subscribed:
                subscribed.future = subscribed.subscription.client.subscribe(
                    subscribed.path,
                    lambda message, subscribed=subscribed: self._on_message(subscribed, message),
                    flow_control=flow_control,
                    # A scheduler per stream (the streaming pull shuts its scheduler down when it ends).
                    scheduler=ThreadScheduler(ThreadPoolExecutor(
                        max_workers=self.callback_threads, thread_name_prefix=f"pittgoogle-{subscribed.stream.name}"
                    )),
                    # cancel() then result() waits for running callbacks, so none queues after the final drain.
                    await_callbacks_on_shutdown=True,
                )
            logger.info("listening to %s", ", ".join(s.path for s in self._subscribed))
            # The timeout counts from here: opening the streams may itself take seconds on a busy machine.
            self._last_message_at = time.monotonic()
            self._loop(max_results, timeout)
        except _StorageFailed as failure:
            storage_failed = True
            raise failure.__cause__ from None  # the database's own error, as the caller would see it
        finally:
            self._finish(max_results, store_in_flight=not storage_failed)
        return self.stats

    def _loop(self, max_results: int | None, timeout: float | None) -> None:
        next_progress = time.monotonic() + self.progress_interval
        next_health_check = time.monotonic() + self.health_check_interval
        while not self._stopping.is_set():
            if max_results is not None and self.stats.accepted >= max_results:
                return
            self._raise_if_a_stream_ended()
            # The decode limits' settings, read once per batch here rather than for each message.
            self._limits = DecodeLimits.from_settings()
            batch = self._next_batch(self._wanted(max_results))
            now = time.monotonic()
            if batch:
                self._store_and_ack(batch, max_results)
            elif timeout is not None and now - self._last_message_at >= timeout:
                logger.info("no message for %s s: stopping", timeout)
                return
            elif now >= next_health_check and now - self._last_message_at >= self.health_check_interval:
                # A quiet stream may be a dead one: the client library retries an unreachable endpoint forever.
                self._check_subscriptions()
                next_health_check = now + self.health_check_interval
            if self.progress is not None and now >= next_progress:
                self.progress(self.stats, self.stats.line(backlog=self.backlog))
                next_progress = now + self.progress_interval

    def _wanted(self, max_results: int | None) -> int:
        if max_results is None:
            return self.batch_size
        return max(0, min(self.batch_size, max_results - self.stats.accepted))

    def _next_batch(self, wanted: int) -> list:
        """Up to ``wanted`` queued items: wait briefly for the first, then until ``wanted`` are queued or
        ``batch_seconds`` have passed (one wake-up, however many messages come meanwhile)."""
        try:
            first = self._queue.get(timeout=0.1)
        except queue.Empty:
            return []
        rest = max(wanted, 1) - 1
        if rest and self._queue.qsize() < rest:
            self._fill_target = rest
            self._filled.clear()
            if self._queue.qsize() < rest:  # a message queued since the first check would have found it cleared
                self._filled.wait(self.batch_seconds)
        return [first, *self._drain(rest)]

    def _raise_if_a_stream_ended(self) -> None:
        for subscribed in self._subscribed:
            future = subscribed.future
            if future is not None and future.done():
                error = future.exception()
                if error is None:
                    raise PittGoogleError(f"the streaming pull on {subscribed.path} stopped unexpectedly")
                raise subscribed.subscription.translate(error) from None

    def _check_subscriptions(self) -> None:
        for subscribed in self._subscribed:
            # Bounded by PITTGOOGLE_REQUEST_TIMEOUT; raises this app's error for a missing subscription,
            # refused access or an unreachable endpoint.
            subscribed.subscription.check()

    # --- storing ----------------------------------------------------------------------------------------

    def _store_and_ack(self, batch: list, max_results: int | None) -> None:
        """Store ``batch`` (alerts and rejections) in one transaction, then acknowledge it."""
        wanted = None if max_results is None else max(0, max_results - self.stats.accepted)
        by_stream: dict[int, tuple[_Subscribed, list, list]] = {}
        extra = []
        kept = 0
        for subscribed, message, outcome in batch:
            _, alerts, rejected = by_stream.setdefault(id(subscribed), (subscribed, [], []))
            if outcome.rejected_reason is not None:
                rejected.append((message, outcome.rejected_reason))
            elif wanted is not None and kept >= wanted:
                extra.append(message)  # beyond max_results: goes back to the subscription untouched
            else:
                alerts.append((message, outcome))
                kept += 1
        for message in extra:
            message.nack()
        self._count(handed_back=len(extra))
        saved = {}
        committed_keys: list[tuple[str, str]] = []
        try:
            with guard_database(), transaction.atomic():
                for key, (subscribed, alerts, rejected) in by_stream.items():
                    saved[key], keys = self._store_stream_batch(subscribed, alerts, rejected)
                    committed_keys.extend(keys)
            committed_at = datetime.now(UTC)  # the commit just returned
        except Exception as error:
            # Not stored, so not acknowledged: Pub/Sub redelivers them.
            for _subscribed, alerts, rejected in by_stream.values():
                for message, _ in alerts + rejected:
                    message.nack()
            raise _StorageFailed() from error
        # With DEBUG on, Django logs every query, this batch's bulk insert of some hundred alerts included; a web
        # request clears that log when it ends, a night-long listener must do it itself.
        reset_queries()
        for key, (subscribed, alerts, rejected) in by_stream.items():
            for message, _ in alerts + rejected:
                message.ack()
            stored = [outcome for index, (_, outcome) in enumerate(alerts) if index not in saved[key].rejected]
            self._count(rejected=len(rejected) + len(saved[key].rejected), stored=saved[key].new,
                        duplicates=len(stored) - saved[key].new)
            if stored and self.on_stored is not None:
                self.on_stored(subscribed.stream, [outcome.alert for outcome in stored])
        # After the acknowledgements, so that they do not wait for it; the time is the commit's.
        stamp_committed(committed_keys, committed_at)

    def _store_stream_batch(
        self, subscribed: _Subscribed, alerts: list, rejected: list
    ) -> tuple[SavedBatch, list[tuple[str, str]]]:
        # Acknowledged by _store_and_ack once the transaction over every subscription's batch commits.
        passed = [(_raw(message), outcome) for message, outcome in alerts]

        def make_targets(saved: SavedBatch) -> None:
            if subscribed.stream.create_targets:
                for index, (_, outcome) in enumerate(passed):
                    if index not in saved.rejected:
                        self._make_target(outcome.lightened)

        saved = settle(
            self.store, passed, [(_raw(message), reason) for message, reason in rejected],
            subscription=subscribed.path, keep_message_ids=subscribed.stream.save_metadata, with_stored=make_targets,
            stamp_commit=False,
            target_list=subscribed.stream.follow_list,
        )
        return saved, stored_keys(passed, saved)

    def _make_target(self, alert: Mapping[str, Any]) -> None:
        # A savepoint per alert: a Target that cannot be made is logged and counted, and the alert stays stored
        # (the operator can make its Target later); it does not stop the night.
        try:
            with transaction.atomic():
                self.target_maker(alert)
        except Exception:
            logger.exception("could not create or update the Target of %s %s", alert.get("survey"),
                             alert.get("object_id"))
            self._count(target_errors=1)

    def _count(self, **increments: int) -> None:
        with self._stats_lock:
            for name, value in increments.items():
                setattr(self.stats, name, getattr(self.stats, name) + value)

    # --- the pull's callback (client-library threads) ---------------------------------------------------

    def _on_message(self, subscribed: _Subscribed, message) -> None:
        """Decode and filter one message; queue it for storage. Filtered-out alerts are acknowledged here."""
        self._last_message_at = time.monotonic()
        self._count(received=1)
        if self._stopping.is_set():
            message.nack()
            self._count(handed_back=1)
            return
        stream = subscribed.stream
        # Never raises on a message's content: a packet that cannot be read, or that the filter raises on, is a
        # rejection, recorded and acknowledged with the batch (handing it back would bring it back forever).
        with limits_for_batch(self._limits):
            outcome = unpack_message(
                message.data,
                lighten_alerts=stream.lighten,
                callback=stream.callback,
                callback_kwargs=stream.callback_kwargs,
                topic=subscribed.subscription.topic_path,
                attributes=message.attributes,
                server_filter=subscribed.subscription.filter,
            )
        if outcome.filtered_out:
            message.ack()  # not wanted: nothing to store
            self._count(**{"filtered_out_server" if outcome.filtered_out_server else "filtered_out": 1})
            return
        self._queue.put((subscribed, message, outcome))
        if self._queue.qsize() >= self._fill_target:
            self._filled.set()

    # --- ending -----------------------------------------------------------------------------------------

    def _finish(self, max_results: int | None, *, store_in_flight: bool) -> None:
        self._stopping.set()  # callbacks from now on hand their message back
        if store_in_flight:
            # Store and acknowledge what is queued while the streams can still send the acknowledgements.
            try:
                while True:
                    batch = self._drain(self.batch_size)
                    if not batch:
                        break
                    self._store_and_ack(batch, max_results)
            except _StorageFailed:
                logger.exception("could not store the alerts in flight; they will be redelivered")
        self._release_queued()
        for subscribed in self._subscribed:
            if subscribed.future is not None:
                subscribed.future.cancel()
        for subscribed in self._subscribed:
            if subscribed.future is not None:
                try:
                    subscribed.future.result(timeout=60)
                except Exception:  # noqa: BLE001 - a stream's own error was already reported by the loop
                    logger.debug("streaming pull on %s ended with an error", subscribed.path, exc_info=True)
        self._release_queued()
        self._close_own_client()
        self.stats.finished_at = time.monotonic()
        line = self.stats.line()
        paths = ", ".join(s.path for s in self._subscribed)
        if self.progress is not None:
            # The progress hook reports the summary (the command prints it once); the log just marks the stop.
            logger.info("stopped listening to %s", paths)
            self.progress(self.stats, line)
        else:
            logger.info("stopped listening to %s: %s", paths, line)

    def _drain(self, limit: int) -> list:
        batch = []
        while len(batch) < limit:
            try:
                batch.append(self._queue.get_nowait())
            except queue.Empty:
                break
        return batch

    def _release_queued(self) -> None:
        """Hand back every message still queued (not stored, so not acknowledged)."""
        for _, message, _ in self._drain(self._queue.qsize() + 1_000_000):
            message.nack()
            self._count(handed_back=1)

    def _close_own_client(self) -> None:
        if self._owns_client and self.client is not None:
            close_client(self.client)
            self.client = None


class _StorageFailed(Exception):
    """Storing a batch failed (its messages were handed back); the cause is the database's error."""


def _raw(message) -> RawMessage:
    return RawMessage(message.message_id, message.data, dict(message.attributes), message.publish_time)
