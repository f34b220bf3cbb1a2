"""Consumer that reads a Pitt-Google Pub/Sub subscription through the REST API, in batch pulls.

Pub/Sub REST API: https://cloud.google.com/pubsub/docs/reference/rest

Used by :class:`~tom_pittgoogle.adapters.broker_stream_rest.BrokerStreamRest`, and on its own::

    consumer = ConsumerStreamRest("ztf-loop")
    alerts = consumer.pull_alerts(max_results=10, callback=my_filter)  # stored, then acknowledged

or, as the original documented::

    response = consumer.oauth2.post(f"{consumer.subscription_url}:pull", data={"maxMessages": 10})
    alerts = consumer.unpack_and_ack_messages(response, lighten_alerts=True, callback=my_filter)

HTTP goes through google-auth's ``AuthorizedSession``, which adds and refreshes the access token itself. With
``PUBSUB_EMULATOR_HOST`` set, requests go over plain HTTP to the emulator, as Google's clients do.
"""

from __future__ import annotations

import binascii
import logging
import math
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pybase64
import requests
from google.api_core import exceptions as gexc
from google.auth.transport.requests import AuthorizedSession

from tom_pittgoogle import conf
from tom_pittgoogle.core.alerts.decode import limits_for_batch
from tom_pittgoogle.core.latency import parse_publish_time
from tom_pittgoogle.core.pubsub import AlertCallback, Unpacked, unpack_message
from tom_pittgoogle.core.settle import alerts_stored, settle, sort_outcomes
from tom_pittgoogle.core.store import AlertStore, DjangoAlertStore, RawMessage
from tom_pittgoogle.core.subscription import MAX_MESSAGES_PER_PULL, Subscription
from tom_pittgoogle.core.words import count

logger = logging.getLogger(__name__)

__all__ = ["MAX_MESSAGES_PER_PULL", "ConsumerStreamRest"]


class ConsumerStreamRest:
    """Manage a Pub/Sub subscription over REST and turn its messages into stored alerts.

    A thin adapter over a REST :class:`~tom_pittgoogle.core.subscription.Subscription`. Constructing the consumer
    checks the subscription, creating it in the user's project (attached to the Pitt-Google topic of the same
    name, or ``topic``, in the project serving ``survey``) if it does not exist; pass ``touch=False`` to skip that.
    ``server_filter`` is the subscription's filter on message attributes (see
    :class:`~tom_pittgoogle.core.subscription.Subscription`); the messages it drops are filtered out here too.
    """

    def __init__(
        self,
        subscription_name: str,
        *,
        project: str | None = None,
        credentials: Any = None,
        store: AlertStore | None = None,
        touch: bool = True,
        survey: str | None = None,
        topic: str | None = None,
        server_filter: Any = None,
    ) -> None:
        self.subscription = Subscription(
            subscription_name, project=project, survey=survey, transport="rest", credentials=credentials,
            topic=topic, filter=server_filter,
        )
        self.subscription_name = self.subscription.name
        self.survey = self.subscription.survey
        self.project = self.subscription.project
        self.subscription_path = self.subscription.path
        self.subscription_url = self.subscription.url
        self.timeout = self.subscription.timeout
        self._store = store
        if touch:
            self.touch_subscription()

    def __repr__(self) -> str:
        return f"<ConsumerStreamRest {self.subscription_path}>"

    @property
    def topic_path(self) -> str:
        """The Pitt-Google topic: the one a new subscription attaches to, or the one it is attached to."""
        return self.subscription.topic_path

    @property
    def topic_url(self) -> str:
        return f"{self.subscription.endpoint}/v1/{self.topic_path}"

    @property
    def session(self) -> AuthorizedSession:
        """The HTTP session (created on first use); it adds and refreshes the access token."""
        return self.subscription.session

    #: The original's name for the HTTP session.
    oauth2 = session

    @property
    def store(self) -> AlertStore:
        if self._store is None:
            self._store = DjangoAlertStore()
        return self._store

    # --- the subscription -------------------------------------------------------------------------------

    def touch_subscription(self) -> None:
        """Make sure the subscription exists and we can connect; create it if needed.

        A new subscription is attached to the Pitt-Google topic of the same name; messages published
        before it was created are not available to it.
        """
        self.subscription.touch()

    #: The original's earlier name.
    get_create_subscription = touch_subscription

    def delete_subscription(self) -> None:
        """Delete the subscription (never called automatically; unused subscriptions expire after 31 days)."""
        self.subscription.delete()

    # --- messages -----------------------------------------------------------------------------------------

    def pull(self, max_messages: int = MAX_MESSAGES_PER_PULL) -> list[dict]:
        """One pull of up to ``max_messages`` (at most 100); returns at once, possibly with none."""
        return self.subscription.pull(max_messages)

    def acknowledge(self, ack_ids: list[str]) -> None:
        self.subscription.acknowledge(ack_ids)

    def _hand_back(self, pending) -> None:
        try:
            self.subscription.hand_back([received["ackId"] for received in pending()])
        except Exception:  # noqa: BLE001 - the error being raised matters more; the lease expires anyway
            logger.debug("could not hand back a prefetched pull", exc_info=True)

    def unpack_and_ack_messages(
        self,
        response: requests.Response | Mapping | list,
        lighten_alerts: bool = False,
        callback: AlertCallback | None = None,
        **kwargs: Any,
    ) -> list[dict]:
        """Unpack the messages of a pull, run ``callback`` on each, store what passes, then acknowledge.

        ``callback`` is a filter: it receives the alert (and ``**kwargs``) and returns it if it passes, else
        None. Filtered-out alerts are acknowledged without being stored; a message that is not a readable
        alert, that the filter raised on, or that the database refused is recorded as rejected, then
        acknowledged, and is not returned. Nothing is acknowledged before it is stored or recorded; a database
        that is down raises :class:`~tom_pittgoogle.core.store.DatabaseUnavailableError` and acknowledges nothing.
        """
        if isinstance(response, requests.Response):  # the original's own pull, through consumer.oauth2
            if response.status_code >= 400:
                raise self.subscription.translate(gexc.from_http_response(response))
            response = response.json()
        received = response.get("receivedMessages", []) if isinstance(response, Mapping) else response

        decoded, ack_ids = [], []
        with limits_for_batch():  # the decode limits' settings, read once for the pull
            for received_message in received:
                message = received_message.get("message", {})
                attributes = message.get("attributes") or {}
                published = parse_publish_time(message.get("publishTime"))
                try:
                    data = pybase64.b64decode(message.get("data", ""), validate=True)  # SIMD: half the stdlib's cost
                except (binascii.Error, ValueError, TypeError):
                    raw = RawMessage(message.get("messageId", ""), message.get("data", "").encode(), attributes,
                                     published)
                    decoded.append((raw, Unpacked(rejected_reason="message data is not valid base64")))
                else:
                    raw = RawMessage(message.get("messageId", ""), data, attributes, published)
                    decoded.append((raw, unpack_message(
                        data, lighten_alerts=lighten_alerts, callback=callback, callback_kwargs=kwargs,
                        topic=self.topic_path, attributes=attributes, server_filter=self.subscription.filter,
                    )))
                ack_ids.append(received_message["ackId"])

        # The rejections and the alerts together, or neither; acknowledged once stored.
        passed, rejected = sort_outcomes(decoded)
        saved = settle(self.store, passed, rejected, subscription=self.subscription_path,
                       acknowledge=lambda: self.acknowledge(ack_ids))
        # The caller gets what it asked for, of the alerts that are stored.
        return alerts_stored(passed, saved)

    def pull_alerts(
        self,
        max_results: int,
        *,
        lighten_alerts: bool = True,
        callback: AlertCallback | None = None,
        max_wait: float | None = None,
        deadline: float | None = None,
        **kwargs: Any,
    ) -> list[dict]:
        """Pull until ``max_results`` alerts pass ``callback``, nothing arrives for ``max_wait`` seconds, or
        ``deadline`` seconds have passed in all (default: ``PITTGOOGLE_WEB_QUERY_DEADLINE`` in a web request, none
        in a command), whatever the stream delivers: a stream whose alerts the filter drops never goes idle.
        What was stored by then is returned; nothing pulled is left unprocessed (a prefetched pull is handed back).

        Each pull asks for no more messages than are still wanted, so nothing beyond ``max_results`` is
        taken from the subscription. Empty pulls back off (0.2 s doubling to 2 s) instead of spinning. While a
        batch is decoded and stored, the next pull is already in flight (its HTTP exchange only, on a second
        thread), asking for what would still be wanted if the whole batch passed; if storing fails, what it
        brought is handed back at once.
        """
        if max_results < 1:
            raise ValueError("max_results must be at least 1")
        max_wait = float(conf.get("PITTGOOGLE_REST_MAX_WAIT") if max_wait is None else max_wait)
        deadline = conf.web_query_deadline() if deadline is None else float(deadline)
        alerts: list[dict] = []
        started = idle_since = time.monotonic()
        ends_at = math.inf if deadline is None else started + deadline
        #: Whether the last pull stopped at its deadline (the caller may say so).
        self.stopped_at_deadline = False
        backoff = 0.2
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="pittgoogle-rest-pull") as executor:
            pending = None
            try:
                while len(alerts) < max_results:
                    if time.monotonic() >= ends_at:
                        self.stopped_at_deadline = True
                        logger.info("stopping the pull of %s at its deadline (%g s)", self.subscription_path,
                                    deadline)
                        break
                    received = pending() if pending is not None else self.pull(max_results - len(alerts))
                    pending = None
                    if received:
                        ahead = max_results - len(alerts) - len(received)
                        if ahead > 0:
                            pending = self.subscription.pull_in(executor, ahead)
                        alerts += self.unpack_and_ack_messages(
                            {"receivedMessages": received}, lighten_alerts=lighten_alerts, callback=callback,
                            **kwargs,
                        )
                        idle_since, backoff = time.monotonic(), 0.2
                        continue
                    now = time.monotonic()
                    waited = now - idle_since
                    if waited >= max_wait:
                        break
                    time.sleep(max(0.0, min(backoff, max_wait - waited, ends_at - now)))
                    backoff = min(backoff * 2, 2.0)
            finally:
                if pending is not None:  # storing raised, or the deadline came: nothing of this pull was processed
                    self._hand_back(pending)
        logger.info("pulled %s from %s", count(len(alerts), "alert"), self.subscription_path)
        return alerts
