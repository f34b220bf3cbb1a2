"""StreamRest against the official Pub/Sub emulator, over its REST API."""

from __future__ import annotations

import io

import fastavro
import pytest

from tom_pittgoogle.adapters.broker_base import BrokerQueryError
from tom_pittgoogle.adapters.broker_stream_rest import BrokerStreamRest
from tom_pittgoogle.exceptions import EndpointError, SubscriptionNotFoundError, TopicNotFoundError
from tom_pittgoogle.models import Alert, RejectedMessage
from tom_pittgoogle.routes.stream_rest import ConsumerStreamRest

from .conftest import PITTGOOGLE_PROJECT, USER_PROJECT

pytestmark = pytest.mark.django_db


def classtar_of(packet: bytes):
    return next(iter(fastavro.reader(io.BytesIO(packet))))["candidate"]["classtar"]


def test_missing_subscription_is_created_on_the_pittgoogle_topic_of_the_same_name(topic_name):
    consumer = ConsumerStreamRest(topic_name)
    subscription = consumer.session.get(consumer.subscription_url).json()
    assert subscription["name"] == f"projects/{USER_PROJECT}/subscriptions/{topic_name}"
    assert subscription["topic"] == f"projects/{PITTGOOGLE_PROJECT}/topics/{topic_name}"
    # A second consumer finds it instead of failing.
    assert ConsumerStreamRest(topic_name).topic_path == subscription["topic"]


def test_missing_topic_says_pittgoogle_publishes_no_such_topic(pubsub_emulator):
    with pytest.raises(TopicNotFoundError, match="Pitt-Google publishes no topic"):
        ConsumerStreamRest("no-such-stream")


def test_pulls_every_real_packet_stores_it_then_acknowledges_it(topic_name, publish, packets):
    consumer = ConsumerStreamRest(topic_name)
    publish(topic_name, packets)
    alerts = consumer.pull_alerts(max_results=len(packets) + 5, max_wait=1)
    records = [next(iter(fastavro.reader(io.BytesIO(p)))) for p in packets]
    assert sorted(a["candid"] for a in alerts) == sorted(r["candid"] for r in records)
    stored = Alert.objects.filter(subscription=consumer.subscription_path)
    assert sorted(int(s) for s in stored.values_list("source_id", flat=True)) == sorted(r["candid"] for r in records)
    assert consumer.pull() == []  # all acknowledged: nothing comes back


def test_stops_at_max_results_and_leaves_the_rest_in_the_subscription(topic_name, publish, packets):
    consumer = ConsumerStreamRest(topic_name)
    publish(topic_name, packets)
    first = consumer.pull_alerts(max_results=3, max_wait=1)
    rest = consumer.pull_alerts(max_results=100, max_wait=1)
    assert len(first) == 3
    assert len({a["source_id"] for a in first + rest}) == len(packets)


def test_filtered_out_alerts_are_acknowledged_but_not_stored(topic_name, publish, packets):
    consumer = ConsumerStreamRest(topic_name)
    publish(topic_name, packets)
    parameters = {"classtar_threshold": 0.9, "classtar_gt_lt": "gt"}
    alerts = consumer.pull_alerts(
        max_results=100, max_wait=1, callback=BrokerStreamRest.user_filter, parameters=parameters
    )
    expected = [p for p in packets if (classtar_of(p) is not None and classtar_of(p) >= 0.9)]
    assert len(alerts) == len(expected) and all(a["classtar"] >= 0.9 for a in alerts)
    assert Alert.objects.filter(subscription=consumer.subscription_path).count() == len(expected)
    assert consumer.pull() == []


def test_malformed_messages_are_recorded_then_acknowledged_and_good_ones_still_stored(topic_name, publish, packets):
    consumer = ConsumerStreamRest(topic_name)
    bad = [b"", b"garbage bytes", packets[0][:500], b'{"json": "but not an alert"}']
    publish(topic_name, bad[1:] + [packets[0]], origin="test")
    alerts = consumer.pull_alerts(max_results=10, max_wait=1)
    assert len(alerts) == 1
    rejected = RejectedMessage.objects.filter(subscription=consumer.subscription_path)
    assert rejected.count() == 3
    assert {bytes(r.data) for r in rejected} == set(bad[1:])
    assert all(r.reason and r.message_id and r.attributes == {"origin": "test"} for r in rejected)
    assert consumer.pull() == []


def test_the_originals_documented_workflow_still_works(topic_name, publish, packets):
    consumer = ConsumerStreamRest(topic_name)
    publish(topic_name, packets[:2])
    response = consumer.oauth2.post(
        f"{consumer.subscription_url}:pull", data={"maxMessages": 10, "returnImmediately": True}
    )
    alerts = consumer.unpack_and_ack_messages(response, lighten_alerts=True, callback=None)
    assert len(alerts) == 2 and {"objectId", "candid", "jd", "ra", "dec", "magpsf", "classtar"} <= set(alerts[0])


@pytest.mark.timeout(120)  # if the wait were unbounded, the pull would go on for the 48 missing alerts: a hang
def test_a_subscription_that_runs_dry_returns_what_there_is_instead_of_waiting_for_max_results(
    topic_name, publish, packets
):
    consumer = ConsumerStreamRest(topic_name)
    publish(topic_name, packets[:2])
    alerts = consumer.pull_alerts(max_results=50, max_wait=0.5)
    assert sorted(a["candid"] for a in alerts) == sorted(
        next(iter(fastavro.reader(io.BytesIO(p))))["candid"] for p in packets[:2])


@pytest.mark.timeout(120)
def test_the_broker_returns_with_the_alerts_there_are_when_fewer_than_asked_arrive(topic_name, publish, packets,
                                                                                    settings):
    settings.PITTGOOGLE_REST_MAX_WAIT = 0.5
    ConsumerStreamRest(topic_name)
    publish(topic_name, packets[:2])
    alerts = list(BrokerStreamRest().fetch_alerts(
        {"subscription_name": topic_name, "max_results": 50, "classtar_threshold": None, "classtar_gt_lt": "lt"}))
    assert len(alerts) == 2


def test_a_deleted_subscription_is_a_clear_error(topic_name):
    consumer = ConsumerStreamRest(topic_name)
    consumer.delete_subscription()
    with pytest.raises(SubscriptionNotFoundError, match="no longer exists"):
        consumer.pull_alerts(max_results=1, max_wait=0.2)


def test_an_unreachable_endpoint_is_a_clear_error(settings, monkeypatch):
    monkeypatch.setenv("PUBSUB_EMULATOR_HOST", "127.0.0.1:9")  # discard port: nothing listens
    with pytest.raises(EndpointError, match="unreachable"):
        ConsumerStreamRest("ztf-loop")


def test_broker_reports_a_missing_topic_as_a_query_error(pubsub_emulator):
    with pytest.raises(BrokerQueryError, match="publishes no topic"):
        BrokerStreamRest().fetch_alerts({"subscription_name": "no-such-stream", "max_results": 1})
