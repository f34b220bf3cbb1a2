"""Pitt-Google streams for tom-alertstreams: ``python manage.py readstreams`` with ``settings.ALERT_STREAMS``.

A thin adapter over :class:`~tom_pittgoogle.core.runner.IngesterRunner`, so the guarantees are those of
``pittgoogle_stream``: every alert is stored once (unique on survey and source id), a message is acknowledged only
after the transaction that stores it commits, and a message that is not an alert is kept as a
``RejectedMessage`` and then acknowledged. Only importable with tom-alertstreams installed
(``pip install tom-pittgoogle[alertstreams]``); nothing else in this app imports it.

    ALERT_STREAMS = [{
        "ACTIVE": True,
        "NAME": "tom_pittgoogle.adapters.alertstream.PittGoogleAlertStream",
        "OPTIONS": {
            "STREAMS": [                      # as settings.PITTGOOGLE_STREAMS; default: those, or ztf-loop
                {"subscription": "ztf-loop", "filter": {"classtar_threshold": 0.5, "classtar_gt_lt": "lt"},
                 "create_targets": True},
                {"subscription": "lsst-alerts", "survey": "lsst", "filter": {"reliability_threshold": 0.9}},
                # Attribute filters become the subscription's Pub/Sub filter: Google drops the rest before delivery.
                {"subscription": "lsst-variability-likely", "topic": "lsst-variability", "survey": "lsst",
                 "filter": {"pg_variable": "likely"}},
            ],
            "TOPIC_HANDLERS": {"ztf-loop": "myapp.handlers.new_alert"},  # optional: called with each stored alert
            "TARGETS_FOR": "alice",           # optional: the user given access to created Targets
            "MAX_RESULTS": None, "TIMEOUT": None,   # optional bounds; None: listen until stopped
        },
    }]

``readstreams`` runs each stream's ``listen()`` in a thread; SIGINT or SIGTERM (caught in the main thread, where
the stream was made) stops every Pitt-Google stream cleanly: pulling stops, what is in flight is stored, then
acknowledged. A second signal exits at once without acknowledging anything unstored (Pub/Sub redelivers it).

Invalid OPTIONS (an unknown key, a bad filter, a ``TARGETS_FOR`` naming no user, a handler that cannot be imported,
no ``GOOGLE_CLOUD_PROJECT``) stop ``readstreams`` at start with one line and exit status 1; a stream that stops on a
fatal error (subscription deleted, access refused, Pub/Sub unreachable) logs one line and the process then exits 1,
so that a supervisor sees the failure.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from typing import Any

from django.core.exceptions import ImproperlyConfigured

try:
    from tom_alertstreams.alertstreams.alertstream import AlertStream
except ImportError as error:  # the app works without tom-alertstreams; only this module needs it
    raise ImportError(
        "tom_pittgoogle.adapters.alertstream needs tom-alertstreams: pip install 'tom-pittgoogle[alertstreams]'"
    ) from error

from tom_pittgoogle import conf
from tom_pittgoogle.adapters.readstreams_process import FAILURES, LIVE, install_process_hooks
from tom_pittgoogle.core.engine import (
    DEFAULT_MAX_BACKLOG,
    MAX_BATCH,
    IngestStats,
    Stream,
    StreamIngester,
    streams_from_settings,
)
from tom_pittgoogle.core.runner import IngesterRunner, find_user
from tom_pittgoogle.exceptions import PittGoogleError

logger = logging.getLogger(__name__)

class PittGoogleAlertStream(AlertStream):
    """Listen to Pitt-Google Pub/Sub subscriptions and store every alert that passes its stream's filter."""

    # The AlertStream base turns each OPTIONS key in allowed_keys into a lower-case attribute.
    required_keys: list[str] = []
    allowed_keys = ["STREAMS", "TOPIC_HANDLERS", "TARGETS_FOR", "MAX_RESULTS", "TIMEOUT", "MAX_BACKLOG",
                    "BATCH_SIZE", "PROGRESS_INTERVAL"]
    # Defaults of the optional keys.
    streams: list | None = None
    topic_handlers: dict = {}
    targets_for: str | None = None
    max_results: int | None = None
    timeout: float | None = None
    max_backlog: int = DEFAULT_MAX_BACKLOG
    batch_size: int = MAX_BATCH
    progress_interval: float = 60.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        unknown = set(kwargs) - set(self.allowed_keys)
        if unknown:
            raise ImproperlyConfigured(
                f"unknown OPTIONS {sorted(unknown)} for {type(self).__name__}; allowed: {self.allowed_keys}"
            )
        try:
            super().__init__(*args, **kwargs)  # imports the TOPIC_HANDLERS
        except ImportError as error:
            raise ImproperlyConfigured(f"{type(self).__name__}: TOPIC_HANDLERS: {error}") from None
        # Everything that can be checked before listening is checked here: readstreams then exits 1 at once.
        try:
            self.stream_specs = self._streams()
            self._check_bounds()
            if any(stream.project is None for stream in self.stream_specs):
                conf.user_project()  # subscriptions are made in the TOM's Google Cloud project
            self._targets_user = self._user_named(self.targets_for)
        except PittGoogleError as error:
            raise ImproperlyConfigured(f"{type(self).__name__}: {error}") from None
        self._stop_requested = threading.Event()
        self._listening = threading.Event()
        self._finished = threading.Event()
        self._ingester: StreamIngester | None = None
        self.stats: IngestStats | None = None
        LIVE.add(self)
        install_process_hooks()

    def _streams(self) -> list[Stream]:
        """OPTIONS' STREAMS, else settings.PITTGOOGLE_STREAMS, else the default subscription; a subscription
        named only in TOPIC_HANDLERS is streamed with no filter."""
        if self.streams is not None:
            streams = [Stream.from_setting(entry) for entry in self.streams]
        else:
            streams = streams_from_settings()
        named = {stream.name for stream in streams}
        streams += [Stream(name) for name in self.topic_handlers if name != "*" and name not in named]
        return streams or [Stream(conf.get("PITTGOOGLE_DEFAULT_SUBSCRIPTION"))]

    #: OPTIONS that are numbers, with whether they may be None (no bound).
    _BOUNDS = {"MAX_RESULTS": True, "TIMEOUT": True, "MAX_BACKLOG": False, "BATCH_SIZE": False,
               "PROGRESS_INTERVAL": False}

    def _check_bounds(self) -> None:
        for key, may_be_none in self._BOUNDS.items():
            value = getattr(self, key.lower())
            if value is None and may_be_none:
                continue
            if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
                allowed = "a positive number" + (" or None" if may_be_none else "")
                raise PittGoogleError(f"OPTIONS {key} must be {allowed}, not {value!r}")

    @staticmethod
    def _user_named(username: str | None):
        if not username:
            return None
        user = find_user(username)
        if user is None:
            raise PittGoogleError(
                f"TARGETS_FOR names no TOM user {username!r}: create the user or correct the setting"
            )
        return user

    @property
    def listening(self) -> bool:
        return self._listening.is_set() and not self._finished.is_set()

    @property
    def finished(self) -> bool:
        return self._finished.is_set()

    @property
    def stopping(self) -> bool:
        return self._stop_requested.is_set()

    def stop(self) -> None:
        """Ask :meth:`listen` to finish cleanly (thread- and signal-safe)."""
        self._stop_requested.set()
        if self._ingester is not None:
            self._ingester.stop()

    def listen(self) -> IngestStats:
        """Listen until stopped, MAX_RESULTS alerts are stored, or nothing came for TIMEOUT seconds."""
        super().listen()
        self._listening.set()
        try:
            return self._listen()
        finally:
            self._finished.set()
            from django.db import connection

            connection.close()  # this thread's own connection

    def _listen(self) -> IngestStats:
        names = ", ".join(stream.name for stream in self.stream_specs)
        try:
            runner = IngesterRunner(
                self.stream_specs,
                kind="alert stream",
                progress_interval=float(self.progress_interval),
                max_backlog=int(self.max_backlog),
                batch_size=int(self.batch_size),
                report=lambda stats, line: logger.info("%s: %s", names, line),
                targets_user=self._targets_user,
                on_stored=self._dispatch,
            )
            self._ingester = runner.ingester
            if self._stop_requested.is_set():  # a signal before the ingester existed
                runner.stop()
            logger.info("listening to %s", names)
            self.stats = runner.run(max_results=self.max_results, timeout=self.timeout)
        except PittGoogleError as failure:
            logger.error("Pitt-Google stream %s stopped: %s", names, failure)
            FAILURES.append(f"Pitt-Google stream {names} stopped: {failure}")
            failure._pittgoogle_logged = True
            raise
        logger.info("Pitt-Google stream %s done in %.1f s: %s", names, self.stats.elapsed, self.stats.line())
        return self.stats

    def _dispatch(self, stream: Stream, alerts: list) -> None:
        # Called after the alerts are stored and acknowledged: a handler that fails loses no alert.
        handler: Callable | None = self.alert_handler.get(stream.name) or self.alert_handler.get("*")
        if handler is None:
            return
        for alert in alerts:
            try:
                handler(alert)
            except Exception:
                logger.exception("TOPIC_HANDLERS[%r] failed on %s %s", stream.name, alert.get("survey"),
                                 alert.get("source_id"))


def alert_logger(alert: Mapping[str, Any]) -> None:
    """An example TOPIC_HANDLERS handler: log each stored alert."""
    logger.info("stored %s alert %s of %s", alert.get("survey"), alert.get("source_id"), alert.get("object_id"))
