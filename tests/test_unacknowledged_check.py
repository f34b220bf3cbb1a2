"""The check the tests use for "nothing left unacknowledged" (tests/unacknowledged.py) finds what was left: messages
pulled and never acknowledged, over REST and over a streaming pull that ended (which the emulator would otherwise
keep for that stream, out of a REST pull's reach, for seconds to minutes), so that a route that fails to
acknowledge fails the tests that use it."""

from __future__ import annotations

import base64

from google.cloud import pubsub_v1

from tom_pittgoogle.core.pubsub import close_client, subscriber_client
from tom_pittgoogle.core.subscription import Subscription

from .helpers import wait_until
from .unacknowledged import assert_nothing_left_unacknowledged, left_unacknowledged


def test_messages_pulled_over_rest_and_not_acknowledged_are_found(topic_name, publish):
    subscription = Subscription(topic_name, transport="rest")
    subscription.touch()
    publish(topic_name, [b"one", b"two", b"three"])
    pulled: list[dict] = []

    def pulled_all() -> bool:
        pulled.extend(subscription.pull(10))
        return len(pulled) >= 3

    assert wait_until(pulled_all, timeout=30)
    subscription.acknowledge([pulled[0]["ackId"]])

    left = left_unacknowledged(topic_name)
    assert sorted(base64.b64decode(message["data"]) for message in left) == sorted(
        base64.b64decode(item["message"]["data"]) for item in pulled[1:])
    assert_nothing_left_unacknowledged(topic_name)  # the check acknowledged what it found


def test_messages_a_streaming_pull_received_and_did_not_acknowledge_are_found(topic_name, publish):
    Subscription(topic_name).touch()
    publish(topic_name, [b"one", b"two"])
    received = []
    client = subscriber_client()
    # The product's lease (PITTGOOGLE_STREAM_LEASE_SECONDS, 10 s); the client library's default is 60 s.
    flow_control = pubsub_v1.types.FlowControl(max_duration_per_lease_extension=10)
    future = client.subscribe(f"projects/{Subscription(topic_name).project}/subscriptions/{topic_name}",
                              lambda message: received.append(message.data),  # never acknowledged
                              flow_control=flow_control)
    try:
        assert wait_until(lambda: len(received) == 2, timeout=30)
    finally:
        future.cancel()
        future.result(timeout=30)
        close_client(client)  # as the product closes its clients: the emulator ends the stream

    left = left_unacknowledged(topic_name)
    assert sorted(base64.b64decode(message["data"]) for message in left) == [b"one", b"two"]

