"""A Pitt-Google Pub/Sub subscription in the user's project: the one object every stream route pulls through.

In the spirit of pittgoogle-client's ``Subscription``: it has a name, a project (the user's, where it lives), a
topic (Pitt-Google's topic of the same name, in the project serving its survey, unless it already exists
attached to another), and clients created on first use with credentials from the one resolver
(:func:`tom_pittgoogle.core.credentials.get_credentials`). Constructing one does no I/O.

It speaks both of Pub/Sub's protocols, chosen by ``transport``:

- ``"grpc"``: google-cloud-pubsub's ``SubscriberClient`` (emulator-aware); the streaming engine pulls through
  :attr:`Subscription.client`;
- ``"rest"``: the REST API over google-auth's ``AuthorizedSession``; :meth:`Subscription.pull` and
  :meth:`Subscription.acknowledge` do batch pulls for StreamRest and the DataService.

Either way :meth:`~Subscription.touch`, :meth:`~Subscription.check` and :meth:`~Subscription.delete` manage the
subscription, with its server-side ``filter`` (Google's filter language on message attributes, fixed when the
subscription is created: see :mod:`tom_pittgoogle.core.attribute_filter`), and every failure of Google's, gRPC
or HTTP, is turned into this app's errors by one method,
:meth:`~Subscription.translate`, whose messages say what to do and never quote a credential.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from concurrent.futures import Executor
from typing import Any, Literal

import google.auth.exceptions
import orjson
import requests
import urllib3
from google.api_core import exceptions as gexc
from google.api_core.retry import Retry, if_exception_type
from google.auth.transport.requests import AuthorizedSession
from google.auth.transport.requests import Request as AuthRequest

from tom_pittgoogle import conf
from tom_pittgoogle.core.attribute_filter import AttributeFilter, FilterSyntaxError, parse_filter
from tom_pittgoogle.core.credentials import credentials_error_for, get_credentials
from tom_pittgoogle.core.pubsub import (
    close_client,
    subscriber_client,
    subscription_path,
    topic_path,
    validate_resource_id,
)
from tom_pittgoogle.exceptions import (
    CredentialsError,
    EndpointError,
    PermissionDeniedError,
    PittGoogleError,
    SubscriptionFilterError,
    SubscriptionNotFoundError,
    TopicNotFoundError,
)

logger = logging.getLogger(__name__)

Transport = Literal["grpc", "rest"]

#: The most messages one REST pull returns (the service's cap, whatever maxMessages says).
MAX_MESSAGES_PER_PULL = 100

#: What a failed call to Google can raise, whichever protocol carried it.
GOOGLE_ERRORS = (gexc.GoogleAPIError, google.auth.exceptions.GoogleAuthError, requests.RequestException,
                 ConnectionError)


def _post_and_read(session: requests.Session, url: str, body: bytes, headers: dict, timeout: float):
    """POST and read the whole answer in one read (``response.content`` joins it from 10 KB chunks: a pull's
    answer is about 9 MB). Returns (status, body bytes, response)."""
    with requests.Session.request(session, "POST", url, data=body, headers=headers, timeout=timeout,
                                  stream=True) as response:
        try:
            return response.status_code, response.raw.read(decode_content=True), response
        except urllib3.exceptions.HTTPError as error:  # as requests would have raised it from response.content
            raise requests.exceptions.ConnectionError(error) from None


def _loads(content: bytes) -> dict:
    """A REST answer's JSON, parsed from its bytes by orjson (a pull's answer holds 100 messages of about 88 KB
    of base64 each); an answer that is not JSON is requests' error, as ``response.json()`` would raise."""
    try:
        return orjson.loads(content) if content else {}
    except orjson.JSONDecodeError as error:
        raise requests.exceptions.InvalidJSONError(f"the answer is not JSON: {error}") from None


class JSONSession(AuthorizedSession):
    """An ``AuthorizedSession`` that sends a dict given as ``data`` as JSON.

    Google's REST APIs read JSON bodies only (the emulator answers a form-encoded POST with a plain-text 404);
    the original documented ``consumer.oauth2.post(url, data={...})``, which this keeps working.
    """

    def request(self, method, url, data=None, headers=None, **kwargs):
        if isinstance(data, Mapping) and kwargs.get("json") is None:
            kwargs["json"], data = dict(data), None
        return super().request(method, url, data=data, headers=headers, **kwargs)


class Subscription:
    """A subscription ``name`` in the user's ``project``, attached (when created) to Pitt-Google's topic of the
    same name (or ``topic``) in the project serving ``survey`` (ZTF's by default).

    ``filter`` (an :class:`~tom_pittgoogle.core.attribute_filter.AttributeFilter` or its text) is the server-side
    filter asked for: a new subscription is created with it, and an existing one must already have it
    (:meth:`touch` raises :class:`~tom_pittgoogle.exceptions.SubscriptionFilterError` otherwise). After
    :meth:`touch`, :attr:`filter` is the filter the subscription really has, which the streams also apply to
    each message (the emulator does not).
    """

    def __init__(
        self,
        name: str,
        *,
        project: str | None = None,
        survey: str | None = None,
        transport: Transport = "grpc",
        client: Any = None,
        credentials: Any = None,
        timeout: float | None = None,
        topic: str | None = None,
        filter: AttributeFilter | str | None = None,  # noqa: A002 - Pub/Sub's own name for it
    ) -> None:
        self.name = validate_resource_id(name)
        self.survey = survey or "ztf"
        self.project = project or conf.user_project()
        self.path = subscription_path(name, self.project)
        #: The topic a new subscription attaches to; replaced by the real one once the subscription is read.
        self.topic_path = (topic if topic and topic.startswith("projects/")
                           else topic_path(topic or name, survey=self.survey))
        #: The server-side filter asked for (None: none asked for).
        self.requested_filter = filter if isinstance(filter, AttributeFilter | None) else parse_filter(filter)
        #: The subscription's filter: the one asked for until the subscription is read, then the one it has.
        self.filter: AttributeFilter | None = self.requested_filter
        #: Its text as Pub/Sub holds it ("" for none).
        self.filter_expression = self.filter.expression if self.filter is not None else ""
        if transport not in ("grpc", "rest"):
            raise ValueError(f"transport must be 'grpc' or 'rest', not {transport!r}")
        self.transport = transport
        self.timeout = float(conf.get("PITTGOOGLE_REQUEST_TIMEOUT") if timeout is None else timeout)
        self._client = client
        self._owns_client = client is None
        self._credentials = credentials
        self._session: AuthorizedSession | None = None

    def __repr__(self) -> str:
        return f"<Subscription {self.path} ({self.transport})>"

    # --- clients, made on first use -------------------------------------------------------------------------

    @property
    def client(self):
        """The gRPC ``SubscriberClient`` (emulator-aware); shared when one was given."""
        if self._client is None:
            self._client = subscriber_client(self._credentials)
            self._owns_client = True
        return self._client

    @property
    def session(self) -> AuthorizedSession:
        """The REST session; google-auth adds and refreshes the access token."""
        if self._session is None:
            self._session = JSONSession(self._credentials or get_credentials("pubsub"))
        return self._session

    @property
    def endpoint(self) -> str:
        emulator = conf.pubsub_emulator_host()
        return f"http://{emulator}" if emulator else conf.get("PITTGOOGLE_PUBSUB_ENDPOINT").rstrip("/")

    @property
    def url(self) -> str:
        """The subscription's REST resource URL."""
        return f"{self.endpoint}/v1/{self.path}"

    def close(self) -> None:
        """Close the gRPC channel if this object opened it (the Pub/Sub emulator otherwise keeps routing the
        subscription's messages to a stream that ended)."""
        if self._owns_client and self._client is not None:
            close_client(self._client)
            self._client = None

    # --- managing the subscription ----------------------------------------------------------------------

    def touch(self) -> None:
        """Make sure the subscription exists and can be reached; create it on Pitt-Google's topic if missing."""
        try:
            found = self._get()
        except gexc.NotFound:
            self._create()
            return
        except GOOGLE_ERRORS as error:
            raise self.translate(error) from None
        self._found(*found)
        logger.info("subscription %s exists, attached to %s%s", self.path, self.topic_path,
                    f", filter {self.filter_expression}" if self.filter_expression else "")

    def _found(self, topic: str | None, expression: str) -> None:
        """Take what an existing subscription is: its topic and its filter, which must be the one asked for."""
        self.topic_path = topic or self.topic_path
        try:
            existing = parse_filter(expression)
        except FilterSyntaxError as error:  # Pub/Sub took it; this app cannot read it: Pub/Sub alone applies it
            logger.warning("subscription %s has a filter this app cannot read, so only Pub/Sub applies it: %s",
                           self.path, error)
            existing = None
        wanted = self.requested_filter
        if wanted is not None and (existing is None or existing.canonical != wanted.canonical):
            has = f"the filter {expression}" if expression else "no filter"
            raise SubscriptionFilterError(
                f"Subscription {self.path} already exists with {has}, and Pub/Sub cannot change a subscription's "
                f"filter, so it cannot filter on {wanted.expression}. Use a subscription name of its own for this "
                f"filter (created with it, on topic {self.topic_path}), or delete {self.name} (its unread "
                "messages are lost) so that it is created again with this filter."
            )
        self.filter = existing
        self.filter_expression = expression or ""

    def check(self) -> None:
        """Raise this app's error if the subscription is gone, refused, or Pub/Sub is unreachable."""
        try:
            self._get()
        except GOOGLE_ERRORS as error:
            raise self.translate(error) from None

    def delete(self) -> None:
        """Delete the subscription (never called automatically; unused subscriptions expire after 31 days)."""
        try:
            if self.transport == "rest":
                self._rest("DELETE", self.url)
            else:
                self.client.delete_subscription(subscription=self.path, retry=self._retry(), timeout=self.timeout)
        except gexc.NotFound:
            logger.info("nothing to delete: %s does not exist", self.path)
            return
        except GOOGLE_ERRORS as error:
            raise self.translate(error) from None
        logger.info("deleted subscription %s", self.path)

    def _get(self) -> tuple[str | None, str]:
        """Read the subscription; return the topic it is attached to and its filter ("" for none)."""
        if self.transport == "rest":
            found = self._rest("GET", self.url)
            return found.get("topic"), found.get("filter") or ""
        found = self.client.get_subscription(subscription=self.path, retry=self._retry(), timeout=self.timeout)
        return found.topic, found.filter

    def _create(self) -> None:
        expression = self.requested_filter.expression if self.requested_filter is not None else ""
        try:
            if self.transport == "rest":
                body = {"topic": self.topic_path, **({"filter": expression} if expression else {})}
                self._rest("PUT", self.url, body)
            else:
                self.client.create_subscription(
                    request={"name": self.path, "topic": self.topic_path, "filter": expression},
                    retry=self._retry(), timeout=self.timeout,
                )
        except gexc.NotFound:
            raise TopicNotFoundError(
                f"Subscription {self.name!r} does not exist in project {self.project}, and it cannot be created: "
                f"Pitt-Google publishes no topic {self.topic_path}."
            ) from None
        except gexc.Conflict:  # already exists: created meanwhile by another process; its filter must be ours too
            try:
                self._found(*self._get())
            except GOOGLE_ERRORS as error:
                raise self.translate(error) from None
            return
        except GOOGLE_ERRORS as error:
            raise self.translate(error) from None
        self.filter, self.filter_expression = self.requested_filter, expression
        logger.info("created subscription %s attached to %s%s", self.path, self.topic_path,
                    f" with filter {expression}" if expression else "")

    # --- REST pulls --------------------------------------------------------------------------------------

    def pull(self, max_messages: int = MAX_MESSAGES_PER_PULL) -> list[dict]:
        """One REST pull of up to ``max_messages`` (at most 100); returns at once, possibly with none."""
        body = {
            "maxMessages": max(1, min(int(max_messages), MAX_MESSAGES_PER_PULL)),
            # Without returnImmediately an empty subscription holds the request open for about 90 s.
            "returnImmediately": True,
        }
        try:
            return self._rest("POST", f"{self.url}:pull", body).get("receivedMessages", [])
        except GOOGLE_ERRORS as error:
            raise self.translate(error) from None

    def pull_in(self, executor: Executor, max_messages: int = MAX_MESSAGES_PER_PULL) -> Callable[[], list[dict]]:
        """Start a REST pull on ``executor`` (another thread) and return the call that gives its messages.

        Only the HTTP exchange runs there: the access token is refreshed if needed and put in the headers here,
        on the calling thread (a user's OAuth credentials save their new token through the ORM, which belongs to
        this thread), and the answer's JSON is parsed here. An answer of 401 is pulled again here, through the
        session, which refreshes the token.
        """
        body = orjson.dumps({"maxMessages": max(1, min(int(max_messages), MAX_MESSAGES_PER_PULL)),
                             "returnImmediately": True})
        url = f"{self.url}:pull"
        session = self.session
        headers = {"Content-Type": "application/json"}
        try:
            session.credentials.before_request(AuthRequest(), "POST", url, headers)
        except GOOGLE_ERRORS as error:
            raise self.translate(error) from None
        # requests.Session's own request: no credential refresh can happen on the other thread.
        future = executor.submit(_post_and_read, session, url, body, headers, self.timeout)

        def result() -> list[dict]:
            try:
                status, content, response = future.result()
            except GOOGLE_ERRORS as error:
                raise self.translate(error) from None
            if status == 401:  # the token expired meanwhile: again, refreshing here
                return self.pull(max_messages)
            try:
                if status >= 400:
                    raise gexc.from_http_status(status, content[:500].decode("utf-8", "replace"), response=response)
                return _loads(content).get("receivedMessages", [])
            except GOOGLE_ERRORS as error:
                raise self.translate(error) from None

        return result

    def hand_back(self, ack_ids: list[str]) -> None:
        """Give REST-pulled messages back to the subscription at once (deadline 0), unprocessed."""
        if not ack_ids:
            return
        try:
            self._rest("POST", f"{self.url}:modifyAckDeadline", {"ackIds": list(ack_ids), "ackDeadlineSeconds": 0})
        except GOOGLE_ERRORS as error:
            raise self.translate(error) from None

    def acknowledge(self, ack_ids: list[str]) -> None:
        """Acknowledge REST-pulled messages by their ack ids."""
        if not ack_ids:
            return
        try:
            self._rest("POST", f"{self.url}:acknowledge", {"ackIds": list(ack_ids)})
        except GOOGLE_ERRORS as error:
            raise self.translate(error) from None

    def _rest(self, method: str, url: str, body: Mapping | None = None) -> dict:
        """One REST call; an HTTP error becomes google-api-core's exception for its status, as gRPC's would."""
        response = self.session.request(method, url, json=body, timeout=self.timeout)
        if response.status_code >= 400:
            raise gexc.from_http_response(response)
        return _loads(response.content)

    def _retry(self) -> Retry:
        # The library's default retries an unreachable endpoint for 60 s; a person may be waiting on a page.
        return Retry(
            predicate=if_exception_type(gexc.ServiceUnavailable, gexc.DeadlineExceeded),
            initial=0.25,
            maximum=2.0,
            timeout=self.timeout,
        )

    # --- errors ------------------------------------------------------------------------------------------

    def translate(self, error: BaseException) -> PittGoogleError:
        """This app's error for a failure of Google's (gRPC, HTTP or google-auth), with no secret in it."""
        if isinstance(error, PittGoogleError):
            return error
        if isinstance(error, google.auth.exceptions.RefreshError):
            return credentials_error_for(error)
        if isinstance(error, google.auth.exceptions.GoogleAuthError):
            return CredentialsError(f"Google credentials could not be used: {type(error).__name__}")
        if isinstance(error, requests.RequestException | ConnectionError):
            return EndpointError(f"Pub/Sub is unreachable at {self.endpoint} ({type(error).__name__}).")
        if isinstance(error, gexc.NotFound):
            return SubscriptionNotFoundError(
                f"Subscription {self.path} does not exist, or no longer exists (was it deleted?)."
            )
        if isinstance(error, gexc.Forbidden):  # HTTP 403, and gRPC's PERMISSION_DENIED (a subclass)
            return PermissionDeniedError(
                f"Pub/Sub refused access to {self.path}: check that your Google account or service account may "
                f"use Pub/Sub in project {self.project}."
            )
        if isinstance(error, gexc.Unauthorized):  # HTTP 401, and gRPC's UNAUTHENTICATED (a subclass)
            return CredentialsError(f"Pub/Sub did not accept the credentials for {self.path}.")
        if isinstance(error, gexc.RetryError | gexc.ServiceUnavailable | gexc.DeadlineExceeded):
            return EndpointError(f"Pub/Sub is unreachable ({type(error).__name__}) for {self.path}.")
        if isinstance(error, gexc.GoogleAPICallError):
            return EndpointError(f"Pub/Sub error on {self.path}: {error.message}"[:500])
        return EndpointError(f"Pub/Sub error on {self.path}: {type(error).__name__}")
