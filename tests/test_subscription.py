"""The Subscription object every stream route pulls through, on the Pub/Sub emulator over gRPC and REST alike."""

from __future__ import annotations

import socket

import pytest
import requests
from google.api_core import exceptions as gexc

from tom_pittgoogle.core.subscription import Subscription
from tom_pittgoogle.exceptions import (
    CredentialsError,
    EndpointError,
    PermissionDeniedError,
    SubscriptionNotFoundError,
    TopicNotFoundError,
)

from .conftest import PITTGOOGLE_PROJECT, USER_PROJECT, create_topic

TRANSPORTS = ["grpc", "rest"]


@pytest.fixture(params=TRANSPORTS)
def transport(request) -> str:
    return request.param


def test_constructing_a_subscription_does_no_io(monkeypatch):
    monkeypatch.setenv("PUBSUB_EMULATOR_HOST", "127.0.0.1:9")  # nothing listens there
    subscription = Subscription("ztf-loop", transport="rest")
    assert subscription.path == f"projects/{USER_PROJECT}/subscriptions/ztf-loop"
    assert subscription.topic_path == f"projects/{PITTGOOGLE_PROJECT}/topics/ztf-loop"
    assert Subscription("lsst-alerts", survey="lsst").topic_path == "projects/pitt-alert-broker/topics/lsst-alerts"


def test_touch_creates_a_missing_subscription_on_pittgoogles_topic(topic_name, transport):
    subscription = Subscription(topic_name, transport=transport)
    try:
        subscription.touch()
        again = Subscription(topic_name, transport=transport)
        again.topic_path = "projects/elsewhere/topics/not-this-one"
        again.touch()  # exists now: it reads the topic it is really attached to
        assert again.topic_path == f"projects/{PITTGOOGLE_PROJECT}/topics/{topic_name}"
        again.close()
    finally:
        subscription.delete()
        subscription.close()


def test_touch_on_an_lsst_topic_attaches_to_pittgoogles_lsst_project(pubsub_emulator, transport):
    name = create_topic("pitt-alert-broker", "lsst-test")
    subscription = Subscription(name, survey="lsst", transport=transport)
    try:
        subscription.touch()
        check = Subscription(name, transport=transport)
        check.touch()
        assert check.topic_path == f"projects/pitt-alert-broker/topics/{name}"
        check.close()
    finally:
        subscription.delete()
        subscription.close()


def test_touch_without_a_pittgoogle_topic_says_so(pubsub_emulator, transport):
    subscription = Subscription("ztf-no-such-topic", transport=transport)
    with pytest.raises(TopicNotFoundError, match="Pitt-Google publishes no topic"):
        subscription.touch()
    subscription.close()


def test_check_and_pull_on_a_deleted_subscription_are_not_found(topic_name, transport):
    subscription = Subscription(topic_name, transport=transport)
    subscription.touch()
    subscription.delete()
    subscription.delete()  # nothing to delete: fine
    with pytest.raises(SubscriptionNotFoundError, match="no longer exists"):
        subscription.check()
    if transport == "rest":
        with pytest.raises(SubscriptionNotFoundError):
            subscription.pull()
    subscription.close()


def test_rest_pull_returns_what_was_published_and_acknowledge_takes_it(topic_name, publish):
    subscription = Subscription(topic_name, transport="rest")
    subscription.touch()
    publish(topic_name, [b"one", b"two", b"three"], objectId="ZTF18abfkwnk")
    received: list[dict] = []
    for _ in range(50):  # the emulator may hand a fresh publication over in more than one pull
        received += subscription.pull(10)
        if len(received) >= 3:
            break
    assert sorted(m["message"]["attributes"]["objectId"] for m in received) == ["ZTF18abfkwnk"] * 3
    subscription.acknowledge([m["ackId"] for m in received])
    assert subscription.pull(10) == []
    subscription.delete()


def _closed_port() -> int:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        return listener.getsockname()[1]


def test_an_unreachable_endpoint_is_an_endpoint_error_on_both_transports(pubsub_emulator, monkeypatch, transport):
    monkeypatch.setenv("PUBSUB_EMULATOR_HOST", f"127.0.0.1:{_closed_port()}")
    subscription = Subscription("ztf-loop", transport=transport, timeout=1.5)
    with pytest.raises(EndpointError, match="unreachable"):
        subscription.check()
    subscription.close()


@pytest.mark.parametrize(
    "error, expected",
    [
        (gexc.PermissionDenied("denied"), PermissionDeniedError),  # gRPC
        (gexc.Forbidden("denied"), PermissionDeniedError),  # HTTP 403
        (gexc.Unauthenticated("who?"), CredentialsError),  # gRPC
        (gexc.Unauthorized("who?"), CredentialsError),  # HTTP 401
        (gexc.NotFound("gone"), SubscriptionNotFoundError),
        (gexc.ServiceUnavailable("down"), EndpointError),
        (requests.ConnectionError("refused"), EndpointError),
    ],
)
def test_one_translation_for_grpc_and_http_failures(error, expected):
    translated = Subscription("ztf-loop", transport="rest").translate(error)
    assert type(translated) is expected
    assert "projects/" in str(translated) or "unreachable" in str(translated)
