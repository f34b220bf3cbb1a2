"""Consumer that listens to a Pitt-Google Pub/Sub subscription with google-cloud-pubsub's streaming pull.

Pub/Sub Python client: https://cloud.google.com/python/docs/reference/pubsub/latest

Used by :class:`~tom_pittgoogle.adapters.broker_stream_python.BrokerStreamPython`, and on its own::

    consumer = ConsumerStreamPython("ztf-loop")
    alerts = consumer.stream_alerts(
        lighten_alerts=True, user_filter=my_filter, parameters={"max_results": 100, "timeout": 30}
    )  # each alert was stored in the TOM's database before its message was acknowledged

The streaming pull is run by :class:`~tom_pittgoogle.core.engine.StreamIngester`: the client library's threads only
decode and filter; the thread that called :meth:`~ConsumerStreamPython.stream_alerts` stores what passes in
batches (one transaction each) and acknowledges a message only after the transaction that stores it commits.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from typing import Any

from tom_pittgoogle import conf
from tom_pittgoogle.core.alerts import lighten_alert
from tom_pittgoogle.core.engine import DEFAULT_MAX_BACKLOG, Stream, StreamIngester
from tom_pittgoogle.core.pubsub import AlertCallback, unpack_message
from tom_pittgoogle.core.settle import settle, sort_outcomes
from tom_pittgoogle.core.store import AlertStore, DjangoAlertStore, RawMessage
from tom_pittgoogle.core.subscription import Subscription
from tom_pittgoogle.core.words import count
from tom_pittgoogle.exceptions import ConfigurationError, PittGoogleError

logger = logging.getLogger(__name__)


class ConsumerStreamPython:
    """Manage a Pub/Sub subscription with the Python client and store the alerts it delivers.

    A thin adapter: the subscription is a :class:`~tom_pittgoogle.core.subscription.Subscription` (gRPC), the pull
    runs on :class:`~tom_pittgoogle.core.engine.StreamIngester`. Constructing the consumer checks the subscription,
    creating it in the user's project (attached to the Pitt-Google topic of the same name, in the project
    serving ``survey``, or to ``topic``) if it does not exist; pass ``touch=False`` to skip that.
    ``server_filter`` is the subscription's filter on message attributes (see
    :class:`~tom_pittgoogle.core.subscription.Subscription`); the messages it drops are filtered out here too.
    """

    def __init__(
        self,
        subscription_name: str,
        *,
        project: str | None = None,
        client: Any = None,
        store: AlertStore | None = None,
        touch: bool = True,
        survey: str | None = None,
        topic: str | None = None,
        server_filter: Any = None,
    ) -> None:
        self.subscription = Subscription(subscription_name, project=project, survey=survey, client=client,
                                         topic=topic, filter=server_filter)
        self.subscription_name = self.subscription.name
        self.survey = self.subscription.survey
        self.project = self.subscription.project
        self.subscription_path = self.subscription.path
        self.timeout = self.subscription.timeout
        self._store = store
        self._callback_settings: dict[str, Any] = {}
        self._save_metadata = True
        if touch:
            self.touch_subscription()

    def __repr__(self) -> str:
        return f"<ConsumerStreamPython {self.subscription_path}>"

    @property
    def client(self):
        """The ``SubscriberClient`` (created on first use; emulator-aware)."""
        return self.subscription.client

    @property
    def topic_path(self) -> str:
        """The Pitt-Google topic: the one a new subscription attaches to, or the one it is attached to."""
        return self.subscription.topic_path

    @property
    def store(self) -> AlertStore:
        if self._store is None:
            self._store = DjangoAlertStore()
        return self._store

    def _translate(self, error: Exception) -> PittGoogleError:
        return self.subscription.translate(error)

    # --- the subscription -------------------------------------------------------------------------------

    def touch_subscription(self) -> None:
        """Make sure the subscription exists and we can connect; create it if needed."""
        self.subscription.touch()

    def delete_subscription(self) -> None:
        """Delete the subscription (never called automatically; unused subscriptions expire after 31 days)."""
        self.subscription.delete()

    def check_subscription(self) -> None:
        """Raise this app's error if the subscription is gone, refused, or Pub/Sub is unreachable."""
        self.subscription.check()

    # --- streaming --------------------------------------------------------------------------------------

    def stream_alerts(
        self,
        lighten_alerts: bool = False,
        user_filter: AlertCallback | None = None,
        parameters: Mapping[str, Any] | None = None,
    ) -> list[dict]:
        """Run a streaming pull until a stopping condition; return the alerts stored (in arrival order).

        ``parameters`` holds the stopping conditions (at least one is required): ``max_results`` (stop after
        that many alerts passed the filter and were stored) and ``timeout`` (stop after that many seconds
        without a message); ``max_backlog``, the flow control (messages leased but not yet processed); and
        ``save_metadata`` ("no": do not store the message ids). In a web request the pull also stops after
        ``PITTGOOGLE_WEB_QUERY_DEADLINE`` seconds in all, whatever the stream does (``deadline`` in
        ``parameters`` overrides), storing and acknowledging what is in flight first.
        ``user_filter(alert, parameters)`` returns the alert if it passes, else None.

        The work is done by :class:`~tom_pittgoogle.core.engine.StreamIngester`, the night-long ingester, with one
        stream; this method keeps the original's call and returns what was stored, for a web request.
        """
        parameters = dict(parameters or {})
        max_results = parameters.get("max_results") or None
        timeout = parameters.get("timeout") or None
        if max_results is None and timeout is None:
            raise ConfigurationError(
                "Set at least one stopping condition: max_results or timeout (otherwise the pull never ends)."
            )
        self._callback_settings = {
            "lighten_alerts": lighten_alerts,
            "callback": user_filter,
            "callback_kwargs": {"parameters": parameters} if user_filter is not None else None,
        }
        self._save_metadata = parameters.get("save_metadata", "yes") != "no"
        stream = Stream(
            self.subscription,
            callback=user_filter,
            callback_kwargs=self._callback_settings["callback_kwargs"],
            lighten=lighten_alerts,
            save_metadata=self._save_metadata,
        )
        stored: list[dict] = []
        deadline = parameters.get("deadline")
        deadline = conf.web_query_deadline() if deadline is None else float(deadline)
        self.stopped_at_deadline = False
        timer = None
        try:
            ingester = StreamIngester(
                [stream],
                store=self.store,
                client=self.client,
                max_backlog=int(parameters.get("max_backlog") or DEFAULT_MAX_BACKLOG),
                on_stored=lambda _stream, alerts: stored.extend(alerts),
                touch=False,
            )
            if deadline is not None:
                # stop() is the ingester's clean stop: what is in flight is stored, then acknowledged.
                def at_deadline() -> None:
                    self.stopped_at_deadline = True
                    logger.info("stopping the pull of %s at its deadline (%g s)", self.subscription_path, deadline)
                    ingester.stop()

                timer = threading.Timer(deadline, at_deadline)
                timer.daemon = True
                timer.start()
            ingester.run(max_results=max_results, timeout=timeout)
        finally:
            if timer is not None:
                timer.cancel()
            self.subscription.close()
        logger.info("stored %s from %s", count(len(stored), "alert"), self.subscription_path)
        return stored

    def callback(self, message) -> None:
        """Process one message as the original did: decode, filter, store, then acknowledge.

        For a subscriber of your own (``client.subscribe(path, consumer.callback)``); it uses the filter of
        the last :meth:`stream_alerts` call, if any. :meth:`stream_alerts` itself stores in batches.
        """
        attributes = dict(message.attributes)
        outcome = unpack_message(
            message.data, topic=self.topic_path, attributes=attributes, server_filter=self.subscription.filter,
            **(self._callback_settings or {"lighten_alerts": True}),
        )
        raw = RawMessage(message.message_id, message.data, attributes, message.publish_time)
        passed, rejected = sort_outcomes([(raw, outcome)])
        settle(self.store, passed, rejected, subscription=self.subscription_path,
               keep_message_ids=self._save_metadata, acknowledge=message.ack)

    def save_alert(self, alert: Mapping) -> None:
        """Save one alert, lightened or a full record (the original saved either), to the TOM's database (the
        streaming pull stores in batches instead)."""
        self.store.save_alerts([lighten_alert(dict(alert))], subscription=self.subscription_path)
