"""Consumer that listens to a Pitt-Google Pub/Sub subscription with google-cloud-pubsub's streaming pull.

Pub/Sub Python client: https://cloud.google.com/python/docs/reference/pubsub/latest

Used by :class:`~tom_pittgoogle.broker_stream_python.BrokerStreamPython`, and on its own::

    consumer = ConsumerStreamPython("ztf-loop")
    alerts = consumer.stream_alerts(
        lighten_alerts=True, user_filter=my_filter, parameters={"max_results": 100, "timeout": 30}
    )  # each alert was stored in the TOM's database before its message was acknowledged

The streaming pull is run by :class:`~tom_pittgoogle.ingest.StreamIngester`: the client library's threads only
decode and filter; the thread that called :meth:`~ConsumerStreamPython.stream_alerts` stores what passes in
batches (one transaction each) and acknowledges a message only after the transaction that stores it commits.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import google.auth.exceptions
from google.api_core import exceptions as gexc
from google.api_core.retry import Retry, if_exception_type

from . import conf
from .credentials import credentials_error_for
from .exceptions import (
    ConfigurationError,
    CredentialsError,
    EndpointError,
    PermissionDeniedError,
    PittGoogleError,
    SubscriptionNotFoundError,
    TopicNotFoundError,
)
from .ingest import DEFAULT_MAX_BACKLOG
from .pubsub import (
    AlertCallback,
    close_client,
    subscriber_client,
    subscription_path,
    topic_path,
    unpack_message,
    validate_resource_id,
)
from .store import AlertStore, RawMessage

logger = logging.getLogger(__name__)



class ConsumerStreamPython:
    """Manage a Pub/Sub subscription with the Python client and store the alerts it delivers.

    Constructing the consumer checks the subscription, creating it in the user's project (attached to the
    Pitt-Google topic of the same name, in the project serving ``survey``) if it does not exist; pass
    ``touch=False`` to skip that.
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
    ) -> None:
        self.subscription_name = validate_resource_id(subscription_name)
        # Which Pitt-Google project a new subscription's topic is in: ZTF's, or LSST's (pitt-alert-broker).
        self.survey = survey or "ztf"
        self.project = project or conf.user_project()
        self.subscription_path = subscription_path(subscription_name, self.project)
        self.topic_path = topic_path(subscription_name, survey=self.survey)
        self.timeout = float(conf.get("PITTGOOGLE_REQUEST_TIMEOUT"))
        self._client = client
        self._owns_client = client is None
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
        if self._client is None:
            self._client = subscriber_client()
        return self._client

    @property
    def store(self) -> AlertStore:
        if self._store is None:
            from .store import DjangoAlertStore

            self._store = DjangoAlertStore()
        return self._store

    def _retry(self) -> Retry:
        # The library's default retries an unreachable endpoint for 60 s; a person is waiting on a page.
        return Retry(
            predicate=if_exception_type(gexc.ServiceUnavailable, gexc.DeadlineExceeded),
            initial=0.25,
            maximum=2.0,
            timeout=self.timeout,
        )

    def _translate(self, error: Exception) -> PittGoogleError:
        """This app's error for a client-library error, with a message that holds no secret."""
        if isinstance(error, PittGoogleError):
            return error
        if isinstance(error, google.auth.exceptions.RefreshError):
            return credentials_error_for(error)
        if isinstance(error, gexc.NotFound):
            return SubscriptionNotFoundError(f"Subscription {self.subscription_path} does not exist.")
        if isinstance(error, gexc.PermissionDenied):
            return PermissionDeniedError(
                f"Pub/Sub refused access to {self.subscription_path}: check that your Google account or "
                f"service account may use Pub/Sub in project {self.project}."
            )
        if isinstance(error, gexc.Unauthenticated):
            return CredentialsError(f"Pub/Sub did not accept the credentials for {self.subscription_path}.")
        if isinstance(error, gexc.RetryError | gexc.ServiceUnavailable | gexc.DeadlineExceeded):
            return EndpointError(f"Pub/Sub is unreachable ({type(error).__name__}) for {self.subscription_path}.")
        if isinstance(error, gexc.GoogleAPICallError):
            return EndpointError(f"Pub/Sub error on {self.subscription_path}: {error.message}")
        return EndpointError(f"Pub/Sub error on {self.subscription_path}: {type(error).__name__}")

    # --- the subscription -------------------------------------------------------------------------------

    def touch_subscription(self) -> None:
        """Make sure the subscription exists and we can connect; create it if needed."""
        try:
            try:
                subscription = self.client.get_subscription(
                    subscription=self.subscription_path, retry=self._retry(), timeout=self.timeout
                )
            except gexc.NotFound:
                self._create_subscription()
            else:
                self.topic_path = subscription.topic
                logger.info("subscription %s exists, attached to %s", self.subscription_path, self.topic_path)
        except (gexc.GoogleAPIError, google.auth.exceptions.GoogleAuthError) as error:
            raise self._translate(error) from None

    def _create_subscription(self) -> None:
        try:
            self.client.create_subscription(
                name=self.subscription_path, topic=self.topic_path, retry=self._retry(), timeout=self.timeout
            )
        except gexc.NotFound:
            raise TopicNotFoundError(
                f"Subscription {self.subscription_name!r} does not exist in project {self.project}, and it "
                f"cannot be created: Pitt-Google publishes no topic {self.topic_path}."
            ) from None
        except gexc.AlreadyExists:  # created meanwhile by another process: fine
            pass
        logger.info("created subscription %s attached to %s", self.subscription_path, self.topic_path)

    def delete_subscription(self) -> None:
        """Delete the subscription (never called automatically; unused subscriptions expire after 31 days)."""
        try:
            self.client.delete_subscription(subscription=self.subscription_path, timeout=self.timeout)
        except gexc.NotFound:
            logger.info("nothing to delete: %s does not exist", self.subscription_path)
        except (gexc.GoogleAPIError, google.auth.exceptions.GoogleAuthError) as error:
            raise self._translate(error) from None
        else:
            logger.info("deleted subscription %s", self.subscription_path)

    def check_subscription(self) -> None:
        """Raise this app's error if the subscription is gone, refused, or Pub/Sub is unreachable."""
        try:
            self.client.get_subscription(subscription=self.subscription_path, retry=self._retry(), timeout=self.timeout)
        except (gexc.GoogleAPIError, google.auth.exceptions.GoogleAuthError) as error:
            raise self._translate(error) from None

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
        ``save_metadata`` ("no": do not store the message ids).
        ``user_filter(alert, parameters)`` returns the alert if it passes, else None.

        The work is done by :class:`~tom_pittgoogle.ingest.StreamIngester`, the night-long ingester, with one
        stream; this method keeps the original's call and returns what was stored, for a web request.
        """
        from .ingest import Stream, StreamIngester

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
            self.subscription_name,
            callback=user_filter,
            callback_kwargs=self._callback_settings["callback_kwargs"],
            lighten=lighten_alerts,
            save_metadata=self._save_metadata,
            project=self.project,
            survey=self.survey,
        )
        stored: list[dict] = []
        try:
            ingester = StreamIngester(
                [stream],
                store=self.store,
                client=self.client,
                max_backlog=int(parameters.get("max_backlog") or DEFAULT_MAX_BACKLOG),
                on_stored=lambda _stream, alerts: stored.extend(alerts),
                touch=False,
            )
            ingester.run(max_results=max_results, timeout=timeout)
        finally:
            self._close_own_client()
        logger.info("stored %d alerts from %s", len(stored), self.subscription_path)
        return stored

    def _close_own_client(self) -> None:
        """Close the client if this consumer made it (see :func:`~tom_pittgoogle.pubsub.close_client`)."""
        if self._owns_client and self._client is not None:
            close_client(self._client)
            self._client = None

    def callback(self, message) -> None:
        """Process one message as the original did: decode, filter, store, then acknowledge.

        For a subscriber of your own (``client.subscribe(path, consumer.callback)``); it uses the filter of
        the last :meth:`stream_alerts` call, if any. :meth:`stream_alerts` itself stores in batches.
        """
        outcome = unpack_message(
            message.data, topic=self.topic_path, **(self._callback_settings or {"lighten_alerts": True})
        )
        if outcome.rejected_reason is not None:
            raw = RawMessage(message.message_id, message.data, dict(message.attributes))
            self.store.record_rejected([(raw, outcome.rejected_reason)], subscription=self.subscription_path)
        elif outcome.alert is not None:
            self.store.save_alerts(
                [self._lightened(outcome.alert)],
                subscription=self.subscription_path,
                message_ids=[message.message_id if self._save_metadata else ""],
            )
        message.ack()

    def _lightened(self, alert: dict) -> dict:
        if self._callback_settings.get("lighten_alerts", True):
            return alert
        from .alerts import lighten_alert

        return lighten_alert(alert)

    def save_alert(self, alert: Mapping) -> None:
        """Save one alert, lightened or a full record (the original saved either), to the TOM's database (the
        streaming pull stores in batches instead)."""
        from .alerts import lighten_alert

        alert = dict(alert)
        # A lightened alert has the common fields; a full record (decode_alert's) has not.
        self.store.save_alerts([alert if "source_id" in alert else lighten_alert(alert)],
                               subscription=self.subscription_path)
