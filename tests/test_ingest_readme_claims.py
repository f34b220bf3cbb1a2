"""What the README promises of ``pittgoogle_stream``, ``readstreams`` and the original's StreamPython methods that
the other tests leave out: ``--targets-for``, ``--reliability-threshold`` and ``--no-metadata`` at command level,
exit status 1 on a database error (acknowledging nothing), ``PITTGOOGLE_STREAMS`` as readstreams' fallback with a
``"*"`` TOPIC_HANDLERS entry, and ``ConsumerStreamPython.callback`` / ``save_alert``. On the Pub/Sub emulator and
PostgreSQL."""

from __future__ import annotations

import signal

import pytest
from django.core.management import CommandError
from django.db import connection
from tom_targets.models import Target

from tom_pittgoogle.core.alerts import decode_alert, lighten_alert
from tom_pittgoogle.core.pubsub import subscriber_client
from tom_pittgoogle.demo.sample_lsst import make_lsst_packets
from tom_pittgoogle.models import Alert, RejectedMessage
from tom_pittgoogle.routes.stream_python import ConsumerStreamPython

from .conftest import USER_PROJECT, create_topic, publisher
from .helpers import wait_until
from .test_alertstream import listen_in_a_thread, received
from .test_stream_ingester import (
    Ingester,
    candid_of,
    ingest_until_stored,
    run_command,
    stored_source_ids,
    subscribe,
)
from .unacknowledged import assert_nothing_left_unacknowledged

pytestmark = pytest.mark.django_db(transaction=True)

LSST_PROJECT = "pitt-alert-broker"


def test_targets_for_gives_that_user_access_to_the_targets_the_stream_creates(topic_name, publish, packets,
                                                                             django_user_model):
    alice = django_user_model.objects.create_user("alice")
    bob = django_user_model.objects.create_user("bob")
    subscribe(topic_name)
    publish(topic_name, packets[:3])
    run_command("--subscription", topic_name, "--timeout", "3", "--create-targets", "--targets-for", "alice")
    targets = Target.objects.all()
    assert targets.count() == len({Alert.objects.get(source_id=candid_of(p)).object_id for p in packets[:3]})
    assert all(alice.has_perm("tom_targets.view_target", target) for target in targets)
    assert not any(bob.has_perm("tom_targets.view_target", target) for target in targets)
    with pytest.raises(CommandError, match="no TOM user 'nobody'"):
        run_command("--subscription", topic_name, "--timeout", "1", "--create-targets", "--targets-for", "nobody")


def test_the_reliability_threshold_option_stores_only_lsst_alerts_that_reach_it(pubsub_emulator):
    name = create_topic(LSST_PROJECT, "lsst-reliability")
    ConsumerStreamPython(name, survey="lsst")
    payloads = [packet for _, packet in make_lsst_packets()]
    publisher(LSST_PROJECT)(name, payloads)
    alerts = [lighten_alert(decode_alert(p)) for p in payloads]
    passing = [a for a in alerts if a.get("reliability") is not None and a["reliability"] >= 0.5]
    assert 0 < len(passing) < len(alerts)
    out = run_command("--survey", "lsst", "--subscription", name, "--timeout", "3", "--reliability-threshold", "0.5")
    assert sorted(stored_source_ids(name)) == sorted(str(a["source_id"]) for a in passing)
    assert f"filtered out {len(alerts) - len(passing)}," in out.splitlines()[-1]


def test_no_metadata_stores_alerts_without_their_message_ids(topic_name, publish, packets):
    from .conftest import PITTGOOGLE_PROJECT

    other = create_topic(PITTGOOGLE_PROJECT, "ztf-metadata")
    subscribe(topic_name)
    subscribe(other)
    ids = publish(topic_name, packets[:2])
    publish(other, packets[2:4])
    run_command("--subscription", topic_name, "--timeout", "3")
    run_command("--subscription", other, "--timeout", "3", "--no-metadata")
    with_ids = Alert.objects.filter(subscription__endswith=f"/{topic_name}")
    without = Alert.objects.filter(subscription__endswith=f"/{other}")
    assert sorted(with_ids.values_list("message_id", flat=True)) == sorted(ids)
    assert without.count() == 2 and set(without.values_list("message_id", flat=True)) == {""}


@pytest.mark.timeout(480)
def test_a_database_that_cannot_store_alerts_ends_the_stream_with_exit_1_and_acknowledges_nothing(
    topic_name, publish, packets
):
    # Not one row's fault (that would be a rejection, recorded): the table itself cannot be written, as when a
    # migration was not applied. Rejecting every message for it would lose the night's alerts.
    subscribe(topic_name)
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE tom_pittgoogle_alert RENAME TO tom_pittgoogle_alert_away")
    try:
        ingester = Ingester("--subscription", topic_name)
        publish(topic_name, packets)
        code, _, err = ingester.finish(timeout=120)
    finally:
        with connection.cursor() as cursor:
            cursor.execute("ALTER TABLE tom_pittgoogle_alert_away RENAME TO tom_pittgoogle_alert")
    assert code == 1, err
    assert "stopped:" in err and "cannot store alerts" in err and "tom_pittgoogle_alert" in err
    assert "Traceback" not in err
    assert Alert.objects.count() == 0
    # Nothing was acknowledged: a new ingester gets every alert.
    ingest_until_stored(topic_name, len(packets))
    assert sorted(stored_source_ids(topic_name)) == sorted(map(candid_of, packets))


def test_readstreams_without_streams_runs_pittgoogle_streams_and_a_star_handler_sees_every_stored_alert(
    settings, topic_name, publish, packets
):
    received.clear()
    settings.PITTGOOGLE_STREAMS = [{"subscription": topic_name, "filter": {"classtar_threshold": 0.9,
                                                                          "classtar_gt_lt": "gt"}}]
    subscribe(topic_name)
    publish(topic_name, packets)
    expected = sorted(candid_of(p) for p in packets if (classtar_of(p) or 0) >= 0.9)
    assert 0 < len(expected) < len(packets)
    stream = listen_in_a_thread(TOPIC_HANDLERS={"*": "tests.test_alertstream.record_alert"}, TIMEOUT=5)
    assert [s.subscription for s in stream.stream_specs] == [topic_name]
    assert sorted(stored_source_ids(topic_name)) == expected
    assert sorted(str(alert["source_id"]) for alert in received) == expected


def classtar_of(packet: bytes):
    from .test_stream_ingester import classtar_of as of

    return of(packet)


# --- the original's StreamPython methods ----------------------------------------------------------------------


def test_callback_as_a_subscribers_own_callback_stores_records_rejects_and_acknowledges(topic_name, publish,
                                                                                        packets):
    consumer = ConsumerStreamPython(topic_name)
    publish(topic_name, packets[:3] + [b"not an alert"])
    from google.cloud import pubsub_v1

    client = subscriber_client()
    # The product's lease (10 s), so that an unacknowledged message would come back within the check below.
    flow_control = pubsub_v1.types.FlowControl(max_duration_per_lease_extension=10)
    future = client.subscribe(consumer.subscription_path, consumer.callback, flow_control=flow_control)
    try:
        assert wait_until(lambda: Alert.objects.count() == 3 and RejectedMessage.objects.count() == 1, 60)
    finally:
        future.cancel()
        future.result(timeout=60)
        client.close()
    assert sorted(stored_source_ids(topic_name)) == sorted(map(candid_of, packets[:3]))
    assert bytes(RejectedMessage.objects.get().data) == b"not an alert"
    assert all(message_id for message_id in Alert.objects.values_list("message_id", flat=True))
    assert_nothing_left_unacknowledged(topic_name)  # each message was acknowledged


def test_save_alert_stores_one_alert_lightened_once(topic_name, packets):
    consumer = ConsumerStreamPython(topic_name)
    consumer.save_alert(decode_alert(packets[0]))  # a full record, as the original's callback had
    consumer.save_alert(lighten_alert(decode_alert(packets[0])))  # the same alert again, lightened
    stored = Alert.objects.get()
    assert stored.source_id == candid_of(packets[0])
    assert stored.subscription == f"projects/{USER_PROJECT}/subscriptions/{topic_name}"
    assert stored.alert["object_id"] == decode_alert(packets[0])["objectId"]


def test_a_sigterm_before_any_alert_ends_the_command_with_exit_0(topic_name):
    """The signal handler works before a message ever arrived (a quiet night stopped by the operator)."""
    ingester = Ingester("--subscription", topic_name)
    ingester.send(signal.SIGTERM)
    code, out, err = ingester.finish()
    assert code == 0, err
    assert "received 0," in out.splitlines()[-1]
