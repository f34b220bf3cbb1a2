"""StreamPython against the official Pub/Sub emulator, over gRPC with google-cloud-pubsub's streaming pull."""

from __future__ import annotations

import io
import threading
import time

import fastavro
import pytest
from django.db import connection

from tom_pittgoogle.adapters.broker_base import BrokerQueryError
from tom_pittgoogle.adapters.broker_stream_python import BrokerStreamPython, FilterAlertsForm
from tom_pittgoogle.exceptions import ConfigurationError, TopicNotFoundError
from tom_pittgoogle.models import Alert, RejectedMessage
from tom_pittgoogle.routes.stream_python import ConsumerStreamPython
from tom_pittgoogle.routes.stream_rest import ConsumerStreamRest

from .conftest import PITTGOOGLE_PROJECT, USER_PROJECT

pytestmark = pytest.mark.django_db


def candid_of(packet: bytes) -> int:
    return next(iter(fastavro.reader(io.BytesIO(packet))))["candid"]


def classtar_of(packet: bytes):
    return next(iter(fastavro.reader(io.BytesIO(packet))))["candidate"]["classtar"]


def test_missing_subscription_is_created_on_the_pittgoogle_topic(topic_name):
    consumer = ConsumerStreamPython(topic_name)
    subscription = consumer.client.get_subscription(subscription=consumer.subscription_path)
    assert subscription.name == f"projects/{USER_PROJECT}/subscriptions/{topic_name}"
    assert subscription.topic == f"projects/{PITTGOOGLE_PROJECT}/topics/{topic_name}"


def test_missing_topic_is_a_clear_error(pubsub_emulator):
    with pytest.raises(TopicNotFoundError, match="Pitt-Google publishes no topic"):
        ConsumerStreamPython("no-such-stream")


def test_real_size_packets_stream_through_grpc_and_are_stored(topic_name, publish, packets):
    """60-75 KB packets, ~100 per emulator response: over gRPC's default 4 MiB cap the pull would stall."""
    consumer = ConsumerStreamPython(topic_name)
    many = packets * 12  # redeliveries of the same alerts must not duplicate rows either
    publish(topic_name, many)
    alerts = consumer.stream_alerts(lighten_alerts=True, parameters={"max_results": len(many), "timeout": 5})
    assert len(alerts) == len(many)
    stored = Alert.objects.filter(subscription=consumer.subscription_path)
    assert sorted(int(s) for s in stored.values_list("source_id", flat=True)) == sorted(map(candid_of, packets))


def listen_until(topic_name: str, expected: int, bound: float = 240) -> list[dict]:
    """Listen to ``topic_name`` until ``expected`` alerts are stored, for at most ``bound`` seconds.

    On Google a stopped listener's messages come back within the lease (10 s); the emulator may first route them
    to the cancelled stream for minutes (NOTES-emulators.md), so one listen of some seconds may come too early.
    """
    alerts: list[dict] = []
    deadline = time.monotonic() + bound
    while len(alerts) < expected and time.monotonic() < deadline:
        alerts += ConsumerStreamPython(topic_name).stream_alerts(
            lighten_alerts=True, parameters={"max_results": expected - len(alerts), "timeout": 30}
        )
    return alerts


def test_stops_at_max_results_and_hands_back_every_message_it_did_not_store(topic_name, publish, packets):
    consumer = ConsumerStreamPython(topic_name)
    publish(topic_name, packets)
    first = consumer.stream_alerts(lighten_alerts=True, parameters={"max_results": 2, "timeout": 5, "max_backlog": 3})
    assert len(first) == 2
    assert Alert.objects.count() == 2
    # Nothing lost: the messages not stored come back to the next listener.
    rest = listen_until(topic_name, len(packets) - 2)
    assert {a["source_id"] for a in first} | {a["source_id"] for a in rest} == {str(candid_of(p)) for p in packets}


def test_message_ids_are_stored_unless_save_metadata_is_no(topic_name, publish, packets):
    from tom_pittgoogle.core.pubsub import publisher_client

    other_topic = f"{topic_name}-b"
    publisher_client().create_topic(name=f"projects/{PITTGOOGLE_PROJECT}/topics/{other_topic}")
    with_metadata, without_metadata = ConsumerStreamPython(topic_name), ConsumerStreamPython(other_topic)
    message_ids = publish(topic_name, packets[:1])
    publish(other_topic, packets[1:2])
    with_metadata.stream_alerts(lighten_alerts=True, parameters={"max_results": 1, "timeout": 10})
    without_metadata.stream_alerts(
        lighten_alerts=True, parameters={"max_results": 1, "timeout": 10, "save_metadata": "no"}
    )
    assert Alert.objects.get(subscription=with_metadata.subscription_path).message_id == message_ids[0]
    assert Alert.objects.get(subscription=without_metadata.subscription_path).message_id == ""


@pytest.mark.django_db(transaction=True)  # the listener runs in a thread of its own, with its own connection
def test_stops_after_timeout_seconds_without_a_message(topic_name, publish, packets):
    consumer = ConsumerStreamPython(topic_name)
    publish(topic_name, packets[:3])
    outcome: dict = {}

    def listen() -> None:
        try:
            outcome["alerts"] = consumer.stream_alerts(lighten_alerts=True,
                                                       parameters={"max_results": None, "timeout": 2})
        finally:
            connection.close()

    # With no max_results only the timeout can end the pull: if it broke, the listener would never return, and
    # this test fails at the join's bound instead of hanging.
    listener = threading.Thread(target=listen, daemon=True)
    listener.start()
    listener.join(timeout=120)
    assert not listener.is_alive(), "stream_alerts did not stop after 2 s without a message"
    assert len(outcome["alerts"]) == 3


def test_at_least_one_stopping_condition_is_required(topic_name):
    with pytest.raises(ConfigurationError, match="stopping condition"):
        ConsumerStreamPython(topic_name).stream_alerts(parameters={"max_results": None, "timeout": None})


def test_the_form_refuses_a_query_without_a_stopping_condition():
    form = FilterAlertsForm(
        data={"query_name": "q", "broker": BrokerStreamPython.name, "subscription_name": "ztf-loop",
              "classtar_gt_lt": "lt", "save_metadata": "yes"}
    )
    assert not form.is_valid()
    assert "stopping condition" in str(form.errors)


def test_filter_applies_and_filtered_out_messages_are_acknowledged(topic_name, publish, packets):
    consumer = ConsumerStreamPython(topic_name)
    publish(topic_name, packets)
    parameters = {"max_results": None, "timeout": 2, "classtar_threshold": 0.9, "classtar_gt_lt": "lt"}
    alerts = consumer.stream_alerts(lighten_alerts=True, user_filter=BrokerStreamPython.user_filter,
                                    parameters=parameters)
    passing = [p for p in packets if classtar_of(p) is not None and classtar_of(p) < 0.9]
    assert 0 < len(passing) < len(packets)  # the sample packets have scores on both sides
    assert sorted(int(a["source_id"]) for a in alerts) == sorted(map(candid_of, passing))
    assert sorted(int(s) for s in Alert.objects.values_list("source_id", flat=True)) == sorted(map(candid_of, passing))
    assert ConsumerStreamRest(topic_name).pull() == []


def test_malformed_messages_are_recorded_and_acknowledged(topic_name, publish, packets):
    consumer = ConsumerStreamPython(topic_name)
    publish(topic_name, [b"not avro", packets[0][:1000], packets[0]])
    alerts = consumer.stream_alerts(lighten_alerts=True, parameters={"timeout": 2})
    assert len(alerts) == 1
    assert RejectedMessage.objects.filter(subscription=consumer.subscription_path).count() == 2
    assert ConsumerStreamRest(topic_name).pull() == []


def test_no_streaming_thread_is_left_running(topic_name, publish, packets):
    consumer = ConsumerStreamPython(topic_name)
    publish(topic_name, packets)
    before = {t.ident for t in threading.enumerate()}
    consumer.stream_alerts(lighten_alerts=True, parameters={"max_results": 2, "timeout": 5})
    deadline = time.monotonic() + 5  # threads that are ending may take a moment to be gone
    while (leftover := [t for t in threading.enumerate() if t.ident not in before and t.is_alive()]):
        if time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert leftover == [], leftover


def test_a_storage_failure_acknowledges_nothing(topic_name, publish, packets):
    class BrokenStore:
        def save_alerts(self, alerts, **kwargs):
            raise RuntimeError("database is down")

        def record_rejected(self, messages, **kwargs):
            pass

    consumer = ConsumerStreamPython(topic_name, store=BrokenStore())
    publish(topic_name, packets[:3])
    with pytest.raises(RuntimeError, match="database is down"):
        consumer.stream_alerts(lighten_alerts=True, parameters={"timeout": 3})
    assert len(listen_until(topic_name, 3)) == 3


def test_broker_returns_stored_alerts_and_reports_errors(topic_name, publish, packets):
    ConsumerStreamPython(topic_name)
    publish(topic_name, packets[:2])
    alerts = list(BrokerStreamPython().fetch_alerts(
        {"subscription_name": topic_name, "max_results": 2, "timeout": 5, "max_backlog": None,
         "classtar_threshold": None, "classtar_gt_lt": "lt"}))
    assert len(alerts) == 2
    with pytest.raises(BrokerQueryError, match="publishes no topic"):
        BrokerStreamPython().fetch_alerts({"subscription_name": "no-such-stream", "max_results": 1, "timeout": 1})
