"""The three legs of each alert's latency, stored with it, on the Pub/Sub emulator and PostgreSQL: exposure to the
survey's publication (Kafka timestamp), that to Pitt-Google's Pub/Sub publication (the message's publish time, as
the emulator stamped it: read back through a second subscription), and that to the commit in the TOM."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tom_pittgoogle.core.alerts import decode_alert, lighten_alert
from tom_pittgoogle.core.alerts.validate import JD_UNIX_EPOCH
from tom_pittgoogle.core.pubsub import subscriber_client
from tom_pittgoogle.core.store import DjangoAlertStore
from tom_pittgoogle.models import Alert
from tom_pittgoogle.routes.stream_python import ConsumerStreamPython
from tom_pittgoogle.routes.stream_rest import ConsumerStreamRest

from .conftest import PITTGOOGLE_PROJECT, USER_PROJECT
from .lsst_samples import LSST_PACKETS, LSST_PROJECT

pytestmark = pytest.mark.django_db(transaction=True)

#: Each packet's survey publication: this many milliseconds after its exposure (a known, packet-own time).
SURVEY_DELAY_MS = {"ztf": 41_250, "lsst": 58_125}


def exposure_ms(packet: bytes) -> float:
    return (lighten_alert(decode_alert(packet))["jd"] - JD_UNIX_EPOCH) * 86_400_000.0


def kafka_ms(packet: bytes, survey: str) -> int:
    return int(exposure_ms(packet)) + SURVEY_DELAY_MS[survey]


def publish_with_times(project: str, topic: str, packets: list[bytes], survey: str) -> dict[str, datetime]:
    """Publish each packet with its own ``kafka.timestamp``; return each source id's Pub/Sub publish time, read
    from a witness subscription made before publishing (the emulator's own stamp, not the route's reading)."""
    from tom_pittgoogle.core.pubsub import publisher_client

    client = subscriber_client()
    witness = f"projects/{USER_PROJECT}/subscriptions/{topic}-witness"
    client.create_subscription(name=witness, topic=f"projects/{project}/topics/{topic}")
    publisher = publisher_client()
    futures = [publisher.publish(f"projects/{project}/topics/{topic}", packet,
                                 **{"kafka.timestamp": str(kafka_ms(packet, survey))}) for packet in packets]
    for future in futures:
        future.result(timeout=30)
    times: dict[str, datetime] = {}
    for _ in range(50):
        if len(times) == len(packets):
            break
        response = client.pull(subscription=witness, max_messages=100, timeout=30)
        for received in response.received_messages:
            source_id = lighten_alert(decode_alert(received.message.data))["source_id"]
            times[source_id] = received.message.publish_time
        if response.received_messages:
            client.acknowledge(subscription=witness, ack_ids=[r.ack_id for r in response.received_messages])
    assert len(times) == len(packets), f"the witness subscription got {len(times)} of {len(packets)} messages"
    return times


def assert_legs(packets: list[bytes], survey: str, published: dict[str, datetime], before: datetime,
                after: datetime) -> None:
    for packet in packets:
        source_id = lighten_alert(decode_alert(packet))["source_id"]
        row = Alert.objects.get(survey=survey, source_id=source_id)
        kafka = kafka_ms(packet, survey)
        assert row.exposure_to_survey == pytest.approx((kafka - exposure_ms(packet)) / 1000.0, abs=2e-3)
        assert row.published_at == published[source_id]
        assert row.survey_to_broker == pytest.approx(published[source_id].timestamp() - kafka / 1000.0, abs=1e-5)
        # Committed after the route began and before it returned, and the leg is exactly commit minus publication.
        assert before <= row.committed_at <= after
        assert row.broker_to_tom == pytest.approx((row.committed_at - row.published_at).total_seconds(), abs=1e-5)
        assert row.broker_to_tom > 0



def test_rest_route_stores_the_three_legs_of_ztf_and_lsst_alerts(topic_name, lsst_topic, packets):
    lsst = [packet for _, packet in LSST_PACKETS]
    for project, topic, survey, payloads in ((PITTGOOGLE_PROJECT, topic_name, "ztf", packets),
                                             (LSST_PROJECT, lsst_topic, "lsst", lsst)):
        consumer = ConsumerStreamRest(topic, survey=survey)
        published = publish_with_times(project, topic, payloads, survey)
        before = datetime.now(UTC)
        alerts = consumer.pull_alerts(max_results=len(payloads) + 3, max_wait=1)
        after = datetime.now(UTC)
        assert len(alerts) == len(payloads)
        assert_legs(payloads, survey, published, before, after)


def test_streaming_pull_route_stores_the_three_legs_of_ztf_and_lsst_alerts(topic_name, lsst_topic, packets):
    lsst = [packet for _, packet in LSST_PACKETS]
    for project, topic, survey, payloads in ((PITTGOOGLE_PROJECT, topic_name, "ztf", packets),
                                             (LSST_PROJECT, lsst_topic, "lsst", lsst)):
        consumer = ConsumerStreamPython(topic, survey=survey)
        published = publish_with_times(project, topic, payloads, survey)
        before = datetime.now(UTC)
        alerts = consumer.stream_alerts(lighten_alerts=True,
                                        parameters={"max_results": len(payloads), "timeout": 30, "survey": survey})
        after = datetime.now(UTC)
        assert len(alerts) == len(payloads)
        assert_legs(payloads, survey, published, before, after)


def test_a_redelivered_alert_keeps_its_first_commit_and_a_query_row_has_no_delivery_leg(packets):
    from tom_pittgoogle.core.pubsub import unpack_message
    from tom_pittgoogle.core.rejected import RawMessage
    from tom_pittgoogle.core.settle import settle, sort_outcomes

    packet = packets[0]
    published = datetime(2026, 12, 4, 3, 0, 0, 250_000, tzinfo=UTC)
    attributes = {"kafka.timestamp": str(kafka_ms(packet, "ztf"))}

    def deliver() -> Alert:
        raw = RawMessage("m1", packet, attributes, published)
        passed, rejected = sort_outcomes([(raw, unpack_message(packet, attributes=attributes))])
        settle(DjangoAlertStore(), passed, rejected, subscription="s")
        return Alert.objects.get()

    first = deliver()
    again = deliver()
    assert again.committed_at == first.committed_at and again.broker_to_tom == first.broker_to_tom
    assert first.broker_to_tom == pytest.approx((first.committed_at - published).total_seconds(), abs=1e-5)

    Alert.objects.all().delete()
    DjangoAlertStore().save_alerts([lighten_alert(decode_alert(packet))], subscription="a query")
    row = Alert.objects.get()
    assert row.published_at is None and row.committed_at is None and row.broker_to_tom is None
    assert row.survey_to_broker is None
