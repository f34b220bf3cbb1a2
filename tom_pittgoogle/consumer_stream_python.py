"""Consumer that listens to a Pitt-Google Pub/Sub subscription with google-cloud-pubsub's streaming pull.

Pub/Sub Python client: https://cloud.google.com/python/docs/reference/pubsub/latest

Used by :class:`~tom_pittgoogle.broker_stream_python.BrokerStreamPython`, and on its own::

    consumer = ConsumerStreamPython("ztf-loop")
    alerts = consumer.stream_alerts(
        lighten_alerts=True, user_filter=my_filter, parameters={"max_results": 100, "timeout": 30}
    )  # each alert was stored in the TOM's database before its message was acknowledged

The streaming pull runs in the client library's background threads. Their callback only decodes and filters;
the thread that called :meth:`~ConsumerStreamPython.stream_alerts` stores what passes in batches (one
transaction each) and acknowledges a message only after the transaction that stores it commits. That thread
owns the database connection, so no connection is left open in a worker thread.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
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
from .pubsub import (
    AlertCallback,
    subscriber_client,
    subscription_path,
    topic_path,
    unpack_message,
    validate_resource_id,
)
from .store import AlertStore, RawMessage

logger = logging.getLogger(__name__)

#: Google's default flow control: at most this many messages leased and not yet acknowledged.
DEFAULT_MAX_BACKLOG = 1000
#: Largest batch stored in one transaction.
MAX_BATCH = 500


class ConsumerStreamPython:
    """Manage a Pub/Sub subscription with the Python client and store the alerts it delivers.

    Constructing the consumer checks the subscription, creating it in the user's project (attached to the
    Pitt-Google topic of the same name) if it does not exist; pass ``touch=False`` to skip that.
    """

    def __init__(
        self,
        subscription_name: str,
        *,
        project: str | None = None,
        client: Any = None,
        store: AlertStore | None = None,
        touch: bool = True,
    ) -> None:
        self.subscription_name = validate_resource_id(subscription_name)
        self.project = project or conf.user_project()
        self.subscription_path = subscription_path(subscription_name, self.project)
        self.topic_path = topic_path(subscription_name)
        self.timeout = float(conf.get("PITTGOOGLE_REQUEST_TIMEOUT"))
        self._client = client
        self._owns_client = client is None
        self._store = store
        self.queue: queue.Queue = queue.Queue()
        self._last_message_at = time.monotonic()
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
        without a message); and ``max_backlog``, the flow control (messages leased but not yet processed).
        ``user_filter(alert, parameters)`` returns the alert if it passes, else None.
        """
        parameters = dict(parameters or {})
        max_results = parameters.get("max_results") or None
        timeout = parameters.get("timeout") or None
        if max_results is None and timeout is None:
            raise ConfigurationError(
                "Set at least one stopping condition: max_results or timeout (otherwise the pull never ends)."
            )
        max_backlog = int(parameters.get("max_backlog") or DEFAULT_MAX_BACKLOG)
        self._save_metadata = parameters.get("save_metadata", "yes") != "no"
        self._callback_settings = {
            "lighten_alerts": lighten_alerts,
            "callback": user_filter,
            "callback_kwargs": {"parameters": parameters} if user_filter is not None else None,
        }

        from google.cloud import pubsub_v1

        self._last_message_at = time.monotonic()
        self._stopping = threading.Event()
        future = self.client.subscribe(
            self.subscription_path,
            self.callback,
            flow_control=pubsub_v1.types.FlowControl(
                max_messages=max_backlog,
                # Leases are renewed while a message is being processed; a short lease means the messages of
                # a listener that stopped or died go back to the subscription within seconds, not a minute.
                max_duration_per_lease_extension=int(conf.get("PITTGOOGLE_STREAM_LEASE_SECONDS")),
            ),
            # cancel() then result() waits for running callbacks, so none enqueues after the final drain.
            await_callbacks_on_shutdown=True,
        )
        stored: list[dict] = []
        try:
            self._consume(future, stored, max_results, timeout)
        finally:
            # Hand back what is queued while the stream can still send the nacks; callbacks still running see
            # _stopping and hand back their message themselves; the library nacks what it had not dispatched.
            self._stopping.set()
            self._release_unstored()
            future.cancel()
            try:
                future.result(timeout=60)
            except Exception:  # noqa: BLE001 - the stream's own error was already reported by _consume
                logger.debug("streaming pull ended with an error", exc_info=True)
            self._release_unstored()
            self._close_own_client()
        logger.info("stored %d alerts from %s", len(stored), self.subscription_path)
        return stored

    def _consume(self, future, stored: list[dict], max_results: int | None, timeout: float | None) -> None:
        while max_results is None or len(stored) < max_results:
            if future.done():
                error = future.exception()
                raise self._translate(error) if error else EndpointError(
                    f"the streaming pull on {self.subscription_path} stopped unexpectedly"
                )
            try:
                batch = [self.queue.get(timeout=0.1)]
            except queue.Empty:
                if timeout is not None and time.monotonic() - self._last_message_at >= timeout:
                    return
                continue
            wanted = MAX_BATCH if max_results is None else max_results - len(stored)
            while len(batch) < wanted:
                try:
                    batch.append(self.queue.get_nowait())
                except queue.Empty:
                    break
            self._store_and_ack(batch, stored, wanted)

    def _store_and_ack(self, batch: list, stored: list[dict], wanted: int) -> None:
        alerts = [(message, alert) for message, alert, reason in batch if reason is None]
        rejected = [(message, reason) for message, _, reason in batch if reason is not None]
        # Alerts beyond max_results go back to the subscription untouched.
        for message, _ in alerts[wanted:]:
            message.nack()
        alerts = alerts[:wanted]
        try:
            self.store.record_rejected(
                [(RawMessage(m.message_id, m.data, dict(m.attributes)), reason) for m, reason in rejected],
                subscription=self.subscription_path,
            )
            self.store.save_alerts(
                [self._lightened(alert) for _, alert in alerts],
                subscription=self.subscription_path,
                message_ids=[message.message_id if self._save_metadata else "" for message, _ in alerts],
            )
        except Exception:
            # Not stored, so not acknowledged: Pub/Sub redelivers them.
            for message, _ in alerts:
                message.nack()
            for message, _ in rejected:
                message.nack()
            raise
        for message, alert in alerts:
            message.ack()
            stored.append(alert)
        for message, _ in rejected:
            message.ack()

    def _lightened(self, alert: dict) -> dict:
        if self._callback_settings.get("lighten_alerts"):
            return alert
        from .alerts import lighten_alert

        return lighten_alert(alert)

    def _close_own_client(self) -> None:
        """Close the client's channel if this consumer made it (the next use makes a new one).

        Closing the channel ends the streaming RPC on the server too; the Pub/Sub emulator otherwise keeps
        routing the subscription's messages, redeliveries included, to the stream that was cancelled.
        """
        if self._owns_client and self._client is not None:
            self._client.close()
            self._client = None

    def _release_unstored(self) -> None:
        """Hand back every message still waiting in the queue (not stored, so not acknowledged)."""
        while True:
            try:
                message, _, _ = self.queue.get_nowait()
            except queue.Empty:
                return
            message.nack()

    def callback(self, message) -> None:
        """Decode and filter one message (in a client-library thread); queue it for storage.

        Filtered-out alerts are acknowledged here: they are not wanted, so there is nothing to store.
        """
        self._last_message_at = time.monotonic()
        if getattr(self, "_stopping", None) is not None and self._stopping.is_set():
            message.nack()
            return
        try:
            outcome = unpack_message(message.data, **self._callback_settings)
        except Exception:  # a bug in the user's filter: keep the message, say what happened
            logger.exception("the filter failed on message %s; it will be redelivered", message.message_id)
            message.nack()
            return
        if outcome.filtered_out:
            message.ack()
            return
        self.queue.put((message, outcome.alert, outcome.rejected_reason))

    def save_alert(self, alert: Mapping) -> None:
        """Save one alert to the TOM's database (the streaming pull stores in batches instead)."""
        self.store.save_alerts([self._lightened(dict(alert))], subscription=self.subscription_path)
