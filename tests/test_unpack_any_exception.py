"""README: a message that cannot be decoded or mapped, *whatever the exception*, is recorded as rejected with its
reason and acknowledged; it never stops a route or comes round again.

The decoders turn what they know into ``DecodeError``; here a step of ``unpack_message`` raises something else (a
``RuntimeError``, as a bug in a mapping would) on one real packet, on the Pub/Sub emulator through StreamRest (REST)
and the ingester (gRPC streaming pull). The other alerts are stored, the message is recorded as rejected with the
error named, and after the ack deadline nothing of the subscription comes back.
"""

from __future__ import annotations

import pytest

from tom_pittgoogle.core import pubsub
from tom_pittgoogle.core.engine import Stream, StreamIngester
from tom_pittgoogle.models import Alert, RejectedMessage
from tom_pittgoogle.routes.stream_rest import ConsumerStreamRest

from .conftest import SAMPLE_PACKETS, USER_PROJECT
from .unacknowledged import assert_nothing_left_unacknowledged

pytestmark = pytest.mark.django_db(transaction=True)

PACKETS = [packet for _, packet in SAMPLE_PACKETS]


def source_id_of(packet: bytes) -> str:
    return str(pubsub.lighten_alert(pubsub.decode_alert(packet))["source_id"])


DOOMED = source_id_of(PACKETS[1])


@pytest.fixture
def mapping_bug(monkeypatch):
    """``detect_survey`` (a step of ``unpack_message`` after decoding) raises RuntimeError on one alert's record."""
    detect_survey = pubsub.detect_survey

    def buggy(record, *args, **kwargs):
        if str(record.get("candid")) == DOOMED:
            raise RuntimeError("a bug in a mapping step")
        return detect_survey(record, *args, **kwargs)

    monkeypatch.setattr(pubsub, "detect_survey", buggy)


def run_stream_rest(topic: str) -> None:
    ConsumerStreamRest(topic, touch=False).pull_alerts(max_results=len(PACKETS) + 5, max_wait=2)


def run_ingester(topic: str) -> None:
    StreamIngester([Stream(topic)]).run(timeout=3)


ROUTES = {"StreamRest": run_stream_rest, "ingester": run_ingester}


@pytest.mark.parametrize("route", list(ROUTES))
def test_a_non_decode_error_in_unpacking_is_a_rejection_recorded_and_acknowledged(route, mapping_bug, topic_name,
                                                                                   publish):
    ConsumerStreamRest(topic_name)  # the subscription exists before anything is published
    subscription = f"projects/{USER_PROJECT}/subscriptions/{topic_name}"
    [doomed_id] = publish(topic_name, [PACKETS[1]], origin="doomed")
    publish(topic_name, PACKETS[:1] + PACKETS[2:], origin="good")

    try:
        ROUTES[route](topic_name)
    except Exception as error:  # noqa: BLE001 - the failure this test looks for
        pytest.fail(f"{route}: a RuntimeError while unpacking one message escaped and stopped the route: {error!r}")

    rejected = RejectedMessage.objects.filter(subscription=subscription, message_id=doomed_id).first()
    assert rejected is not None, (
        f"{route}: the message whose unpacking raised RuntimeError (not a DecodeError) was not recorded as rejected")
    assert rejected.reason == "the packet could not be read: RuntimeError: a bug in a mapping step", rejected.reason
    assert bytes(rejected.data) == PACKETS[1] and rejected.attributes == {"origin": "doomed"}
    stored = set(Alert.objects.filter(subscription=subscription).values_list("source_id", flat=True))
    assert stored == {source_id_of(packet) for packet in PACKETS} - {DOOMED}
    assert_nothing_left_unacknowledged(topic_name)
