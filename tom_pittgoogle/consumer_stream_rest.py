"""Consumer that reads a Pitt-Google Pub/Sub subscription through the REST API, in batch pulls.

Pub/Sub REST API: https://cloud.google.com/pubsub/docs/reference/rest

Used by :class:`~tom_pittgoogle.broker_stream_rest.BrokerStreamRest`, and on its own::

    consumer = ConsumerStreamRest("ztf-loop")
    alerts = consumer.pull_alerts(max_results=10, callback=my_filter)  # stored, then acknowledged

or, as the original documented::

    response = consumer.oauth2.post(f"{consumer.subscription_url}:pull", data={"maxMessages": 10})
    alerts = consumer.unpack_and_ack_messages(response, lighten_alerts=True, callback=my_filter)

HTTP goes through google-auth's ``AuthorizedSession``, which adds and refreshes the access token itself. With
``PUBSUB_EMULATOR_HOST`` set, requests go over plain HTTP to the emulator, as Google's clients do.
"""

from __future__ import annotations

import base64
import logging
import time
from collections.abc import Mapping
from typing import Any

import google.auth.exceptions
import requests
from django.db import transaction
from google.auth.transport.requests import AuthorizedSession

from . import conf
from .credentials import credentials_error_for, get_credentials
from .exceptions import (
    CredentialsError,
    EndpointError,
    PermissionDeniedError,
    SubscriptionNotFoundError,
    TopicNotFoundError,
)
from .pubsub import AlertCallback, subscription_path, topic_path, unpack_message, validate_resource_id
from .store import AlertStore, RawMessage, guard_database, save_batch

logger = logging.getLogger(__name__)

#: The most messages one pull returns (the service's cap, whatever maxMessages says).
MAX_MESSAGES_PER_PULL = 100


class _JSONSession(AuthorizedSession):
    """An ``AuthorizedSession`` that sends a dict given as ``data`` as JSON.

    Google's REST APIs read JSON bodies only (the emulator answers a form-encoded POST with a plain-text
    404); the original documented ``consumer.oauth2.post(url, data={...})``, which this keeps working.
    """

    def request(self, method, url, data=None, headers=None, **kwargs):
        if isinstance(data, Mapping) and kwargs.get("json") is None:
            kwargs["json"], data = dict(data), None
        return super().request(method, url, data=data, headers=headers, **kwargs)


class ConsumerStreamRest:
    """Manage a Pub/Sub subscription over REST and turn its messages into stored alerts.

    Constructing the consumer checks the subscription, creating it in the user's project (attached to the
    Pitt-Google topic of the same name, in the project serving ``survey``) if it does not exist; pass
    ``touch=False`` to skip that.
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
    ) -> None:
        self.subscription_name = validate_resource_id(subscription_name)
        # Which Pitt-Google project a new subscription's topic is in: ZTF's, or LSST's (pitt-alert-broker).
        self.survey = survey or "ztf"
        self.project = project or conf.user_project()
        self.subscription_path = subscription_path(subscription_name, self.project)
        # The topic a new subscription attaches to; replaced by the real one when the subscription exists.
        self.topic_path = topic_path(subscription_name, survey=self.survey)
        emulator = conf.pubsub_emulator_host()
        endpoint = f"http://{emulator}" if emulator else conf.get("PITTGOOGLE_PUBSUB_ENDPOINT").rstrip("/")
        self.subscription_url = f"{endpoint}/v1/{self.subscription_path}"
        self.topic_url = f"{endpoint}/v1/{self.topic_path}"
        self.timeout = float(conf.get("PITTGOOGLE_REQUEST_TIMEOUT"))
        self._credentials = credentials
        self._session: AuthorizedSession | None = None
        self._store = store
        if touch:
            self.touch_subscription()

    def __repr__(self) -> str:
        return f"<ConsumerStreamRest {self.subscription_path}>"

    # --- connection -------------------------------------------------------------------------------------

    @property
    def session(self) -> AuthorizedSession:
        """The HTTP session (created on first use); it adds and refreshes the access token."""
        if self._session is None:
            credentials = self._credentials or get_credentials("pubsub")
            self._session = _JSONSession(credentials)
        return self._session

    #: The original's name for the HTTP session.
    oauth2 = session

    @property
    def store(self) -> AlertStore:
        if self._store is None:
            from .store import DjangoAlertStore

            self._store = DjangoAlertStore()
        return self._store

    def _request(self, method: str, url: str, body: Mapping | None = None) -> requests.Response:
        """Send one request; turn transport and auth failures into this app's errors."""
        try:
            response = self.session.request(method, url, json=body, timeout=self.timeout)
        except google.auth.exceptions.RefreshError as error:
            raise credentials_error_for(error) from None
        except google.auth.exceptions.GoogleAuthError as error:
            raise CredentialsError(f"Google credentials could not be used: {type(error).__name__}") from None
        except requests.RequestException as error:
            raise EndpointError(
                f"Pub/Sub is unreachable at {url.split('/v1/')[0]} ({type(error).__name__})"
            ) from None
        if response.status_code in (401, 403):
            error_class = CredentialsError if response.status_code == 401 else PermissionDeniedError
            raise error_class(
                f"Pub/Sub refused the request on {self.subscription_path} (HTTP {response.status_code}: "
                f"{_error_status(response)}): check that your Google account or service account may use "
                f"Pub/Sub in project {self.project}."
            )
        return response

    def _raise_for_status(self, response: requests.Response, action: str) -> None:
        if response.status_code >= 400:
            raise EndpointError(
                f"Pub/Sub could not {action} {self.subscription_path}: HTTP {response.status_code} "
                f"{_error_status(response)}"
            )

    # --- the subscription -------------------------------------------------------------------------------

    def touch_subscription(self) -> dict:
        """Make sure the subscription exists and we can connect; create it if needed.

        A new subscription is attached to the Pitt-Google topic of the same name; messages published
        before it was created are not available to it.
        """
        response = self._request("GET", self.subscription_url)
        if response.status_code == 404:
            return self._create_subscription()
        self._raise_for_status(response, "read")
        subscription = response.json()
        self.topic_path = subscription.get("topic", self.topic_path)
        logger.info("subscription %s exists, attached to %s", self.subscription_path, self.topic_path)
        return subscription

    #: The original's earlier name.
    get_create_subscription = touch_subscription

    def _create_subscription(self) -> dict:
        response = self._request("PUT", self.subscription_url, {"topic": self.topic_path})
        if response.status_code == 404:
            raise TopicNotFoundError(
                f"Subscription {self.subscription_name!r} does not exist in project {self.project}, and it "
                f"cannot be created: Pitt-Google publishes no topic {self.topic_path}."
            )
        if response.status_code == 409:  # created meanwhile by another process: fine
            return self.touch_subscription()
        self._raise_for_status(response, "create")
        logger.info("created subscription %s attached to %s", self.subscription_path, self.topic_path)
        return response.json()

    def delete_subscription(self) -> None:
        """Delete the subscription (never called automatically; unused subscriptions expire after 31 days)."""
        response = self._request("DELETE", self.subscription_url)
        if response.status_code == 404:
            logger.info("nothing to delete: %s does not exist", self.subscription_path)
            return
        self._raise_for_status(response, "delete")
        logger.info("deleted subscription %s", self.subscription_path)

    # --- messages -----------------------------------------------------------------------------------------

    def pull(self, max_messages: int = MAX_MESSAGES_PER_PULL) -> list[dict]:
        """One pull of up to ``max_messages`` (at most 100); returns at once, possibly with none."""
        response = self._request(
            "POST",
            f"{self.subscription_url}:pull",
            # Without returnImmediately an empty subscription holds the request open for about 90 s.
            {"maxMessages": max(1, min(max_messages, MAX_MESSAGES_PER_PULL)), "returnImmediately": True},
        )
        if response.status_code == 404:
            raise SubscriptionNotFoundError(
                f"Subscription {self.subscription_path} no longer exists (was it deleted?)."
            )
        self._raise_for_status(response, "pull from")
        return response.json().get("receivedMessages", [])

    def acknowledge(self, ack_ids: list[str]) -> None:
        if not ack_ids:
            return
        response = self._request("POST", f"{self.subscription_url}:acknowledge", {"ackIds": ack_ids})
        self._raise_for_status(response, "acknowledge messages of")

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
        that is down raises :class:`~tom_pittgoogle.store.DatabaseUnavailableError` and acknowledges nothing.
        """
        if isinstance(response, requests.Response):
            self._raise_for_status(response, "pull from")
            response = response.json()
        received = response.get("receivedMessages", []) if isinstance(response, Mapping) else response

        passed, rejected, ack_ids = [], [], []
        for received_message in received:
            message = received_message.get("message", {})
            attributes = message.get("attributes") or {}
            try:
                data = base64.b64decode(message.get("data", ""), validate=True)
            except ValueError:
                raw = RawMessage(message.get("messageId", ""), message.get("data", "").encode(), attributes)
                rejected.append((raw, "message data is not valid base64"))
            else:
                raw = RawMessage(message.get("messageId", ""), data, attributes)
                outcome = unpack_message(
                    data, lighten_alerts=lighten_alerts, callback=callback, callback_kwargs=kwargs,
                    topic=self.topic_path, attributes=attributes,
                )
                if outcome.rejected_reason is not None:
                    rejected.append((raw, outcome.rejected_reason))
                elif outcome.alert is not None:
                    passed.append((raw, outcome))
            ack_ids.append(received_message["ackId"])

        with guard_database(), transaction.atomic():  # the rejections and the alerts together, or neither
            self.store.record_rejected(rejected, subscription=self.subscription_path)
            saved = save_batch(
                self.store,
                [outcome.lightened for _, outcome in passed],  # the store keeps lightened alerts
                [raw for raw, _ in passed],
                subscription=self.subscription_path,
            )
        self.acknowledge(ack_ids)
        # The caller gets what it asked for, of the alerts that are stored.
        return [outcome.alert for index, (_, outcome) in enumerate(passed) if index not in saved.rejected]

    def pull_alerts(
        self,
        max_results: int,
        *,
        lighten_alerts: bool = True,
        callback: AlertCallback | None = None,
        max_wait: float | None = None,
        **kwargs: Any,
    ) -> list[dict]:
        """Pull until ``max_results`` alerts pass ``callback`` or nothing arrives for ``max_wait`` seconds.

        Each pull asks for no more messages than are still wanted, so nothing beyond ``max_results`` is
        taken from the subscription. Empty pulls back off (0.2 s doubling to 2 s) instead of spinning.
        """
        if max_results < 1:
            raise ValueError("max_results must be at least 1")
        max_wait = float(conf.get("PITTGOOGLE_REST_MAX_WAIT") if max_wait is None else max_wait)
        alerts: list[dict] = []
        idle_since = time.monotonic()
        backoff = 0.2
        while len(alerts) < max_results:
            received = self.pull(max_results - len(alerts))
            if received:
                alerts += self.unpack_and_ack_messages(
                    {"receivedMessages": received}, lighten_alerts=lighten_alerts, callback=callback, **kwargs
                )
                idle_since, backoff = time.monotonic(), 0.2
                continue
            waited = time.monotonic() - idle_since
            if waited >= max_wait:
                break
            time.sleep(min(backoff, max_wait - waited))
            backoff = min(backoff * 2, 2.0)
        logger.info("pulled %d alerts from %s", len(alerts), self.subscription_path)
        return alerts


def _error_status(response: requests.Response) -> str:
    """The API's error status and message, without echoing request headers or tokens."""
    try:
        error = response.json().get("error", {})
        return f"{error.get('status', '')} {error.get('message', '')}".strip()[:300]
    except ValueError:
        return response.reason or ""
