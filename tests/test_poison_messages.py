"""One bad packet never stops a night (issue 11): poison messages between good alerts, on every Pub/Sub route.

Each poison packet is a real one with one field changed (ZTF Avro rewritten with the packet's own schema, LSST
JSON as ``lsst-alerts-json`` carries it). On every route every good alert is stored, every poison message is
recorded as a ``RejectedMessage`` with a reason that says what was wrong, everything is acknowledged (a
listener that waits past the ack deadline gets nothing), and each run ends on its own.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
from collections.abc import Callable
from typing import Any

import fastavro
import pytest
from django.core.management import call_command
from django.db import connection

from tom_pittgoogle.core.engine import Stream, StreamIngester
from tom_pittgoogle.core.store import DjangoAlertStore, RawMessage, prune_rejected
from tom_pittgoogle.demo.sample_lsst import make_lsst_alert, to_json_packet
from tom_pittgoogle.models import Alert, RejectedMessage
from tom_pittgoogle.routes.stream_python import ConsumerStreamPython
from tom_pittgoogle.routes.stream_rest import ConsumerStreamRest

from .conftest import PITTGOOGLE_PROJECT, SAMPLE_PACKETS, USER_PROJECT, create_topic
from .test_dataservice import run_query
from .test_stream_ingester import Ingester, wait_until
from .unacknowledged import assert_nothing_left_unacknowledged

pytestmark = pytest.mark.django_db

GOOD_ZTF = [packet for _, packet in SAMPLE_PACKETS]
GOOD_LSST = [to_json_packet(make_lsst_alert(10, 0, index=index)) for index in range(3)]
GOOD = GOOD_ZTF + GOOD_LSST


# --- poison packets, each a real one with one field changed -------------------------------------------------


def ztf_record_and_schema(packet: bytes) -> tuple[dict, dict, str]:
    reader = fastavro.reader(io.BytesIO(packet))
    return next(reader), reader.writer_schema, reader.codec


def ztf_changed(packet: bytes, new_candid: int, path: str, value: Any, avro_type: Any = None) -> bytes:
    """``packet`` with ``path`` ("objectId", "candidate.jd") set to ``value`` (retyped to ``avro_type`` in the
    packet's own schema) and a candid of its own, written as ZTF writes it."""
    record, schema, codec = ztf_record_and_schema(packet)
    record["candid"] = record["candidate"]["candid"] = new_candid
    *parents, name = path.split(".")
    target, fields = record, schema["fields"]
    for parent in parents:
        target = target[parent]
        fields = next(f for f in fields if f["name"] == parent)["type"]["fields"]
    target[name] = value
    if avro_type is not None:
        next(f for f in fields if f["name"] == name)["type"] = avro_type
    out = io.BytesIO()
    fastavro.writer(out, fastavro.parse_schema(schema), [record], codec=codec)
    return out.getvalue()


def lsst_changed(index: int, change: Callable[[dict], Any]) -> bytes:
    """An ``lsst-alerts-json`` packet (alert ``index``) after ``change(record)``."""
    record = make_lsst_alert(10, 0, index=index)
    change(record)
    return to_json_packet(record)


def set_source(**values: Any) -> Callable[[dict], None]:
    return lambda record: record["diaSource"].update(values)


def poison_packets() -> dict[str, tuple[bytes, str]]:
    """name -> (packet, a pattern its rejection's reason matches)."""
    base = GOOD_ZTF[0]
    candid = ztf_record_and_schema(base)[0]["candid"]
    deep = to_json_packet(make_lsst_alert(10, 0, index=20))
    pre_lightened = json.loads(to_json_packet(make_lsst_alert(10, 0, index=21)))
    pre_lightened.update(survey="lsst", source_id=[1, 2])
    return {
        # issue 11 item 1: decodes, but cannot be stored
        "id over 64 characters": (ztf_changed(base, candid + 1, "objectId", "ZTF" + "x" * 70), r"(?i)object|long"),
        "NUL in the object id": (ztf_changed(base, candid + 2, "objectId", "ZTF21\x00abcd"), r"NUL|\\x00|0x00"),
        "time as text": (ztf_changed(base, candid + 3, "candidate.jd", "yesterday", "string"), r"jd|time"),
        "position as text": (ztf_changed(base, candid + 4, "candidate.ra", "12h30m", "string"), r"'ra'|\bra\b|RA"),
        "magnitude as text": (ztf_changed(base, candid + 5, "candidate.magpsf", "bright", ["null", "string"]),
                              r"mag"),
        "band over 16 characters": (lsst_changed(10, set_source(band="x" * 20)), r"(?i)band|long"),
        "lone surrogate": (lsst_changed(11, set_source(band="\ud800")), r"(?i)surrogate|encode|utf|band"),
        "record already lightened, wrongly": (json.dumps(pre_lightened).encode(), r"object_id|source_id|survey"),
        # issue 11 item 2: a decode or mapping error that is not a DecodeError
        "JSON nested 1000 deep": (b'{"deep": ' + b"[" * 1000 + b"]" * 1000 + b", " + deep[1:],
                                  r"(?i)recursion|deep|nest"),
        "band as a list": (lsst_changed(12, set_source(band=["g"])), r"TypeError|band"),
        "previous detections not records": (lsst_changed(13, lambda r: r.update(prvDiaSources=[1, 2])),
                                            r"AttributeError|prvDiaSources|previous"),
        "LSST time as text": (lsst_changed(14, set_source(midpointMjdTai="yesterday")),
                              r"(?i)midpointMjdTai|time|ValueError|TypeError"),
        "LSST time 1e300": (lsst_changed(15, set_source(midpointMjdTai=1e300)),
                            r"(?i)midpointMjdTai|time|erfa|overflow"),
    }


POISON = poison_packets()


def source_id_of(packet: bytes) -> str:
    from tom_pittgoogle.core.alerts import decode_alert, lighten_alert

    return lighten_alert(decode_alert(packet))["source_id"]


#: The good alert the raising filter raises on: its message is a rejection too.
DOOMED = source_id_of(GOOD_ZTF[1])


def raising_filter(alert, **_kwargs):
    if alert["source_id"] == DOOMED:
        raise ZeroDivisionError("a bug in the user's filter")
    return alert


def conflicting(packet: bytes) -> bytes:
    """The same alert id as ``packet`` (ZTF candid), with a different magnitude."""
    record, _, _ = ztf_record_and_schema(packet)
    return ztf_changed(packet, record["candid"], "candidate.magpsf", record["candidate"]["magpsf"] + 1.0)


# --- the routes ---------------------------------------------------------------------------------------------


def run_ingester(topic: str, callback) -> None:
    StreamIngester([Stream(topic, callback=callback)]).run(timeout=3)


def run_command(topic: str, callback) -> None:
    out = io.StringIO()
    call_command("pittgoogle_stream", "--subscription", topic, "--timeout", "3", stdout=out, stderr=io.StringIO())
    assert "done in" in out.getvalue()


def run_stream_rest(topic: str, callback) -> list[dict]:
    return ConsumerStreamRest(topic).pull_alerts(max_results=len(GOOD) + len(POISON) + 5, max_wait=2,
                                                callback=callback)


def run_stream_python(topic: str, callback) -> list[dict]:
    return ConsumerStreamPython(topic).stream_alerts(lighten_alerts=True, user_filter=callback,
                                                     parameters={"timeout": 3})


def dataservice_runner(client) -> Callable[[str, Any], list[dict]]:
    def run(topic: str, callback) -> list[dict]:
        page = run_query(client, route="pubsub", subscription_name=topic, max_results=len(GOOD) + 5, timeout=2)
        return [row["alert"] for row in page.context["results"]]

    return run


ROUTES = {
    "ingester": (run_ingester, raising_filter),
    "pittgoogle_stream": (run_command, None),
    "StreamRest": (run_stream_rest, raising_filter),
    "StreamPython": (run_stream_python, raising_filter),
    "DataService": (None, None),
}


def publish_interleaved(publish, topic: str, good: list[bytes], poison: dict[str, tuple[bytes, str]]) -> tuple:
    """Publish good and poison packets in turn; return the good ones' message ids and the poisons' by name."""
    good_ids, poison_ids = [], {}
    names = list(poison)
    for index in range(max(len(good), len(names))):
        if index < len(good):
            good_ids += publish(topic, [good[index]], origin="good")
        if index < len(names):
            poison_ids[names[index]] = publish(topic, [poison[names[index]][0]], origin="poison")[0]
    return good_ids, poison_ids


def assert_nothing_comes_back(*topics: str) -> None:
    """After the ack deadline only a marker published then comes from each subscription: all were acknowledged."""
    assert_nothing_left_unacknowledged(*topics)


@pytest.mark.parametrize("route", list(ROUTES))
def test_poison_between_good_alerts_every_good_one_stored_every_poison_recorded_all_acknowledged(
    route, topic_name, publish, client, django_user_model
):
    run, callback = ROUTES[route]
    if run is None:
        user = django_user_model.objects.create_user("astronomer", password="not-used")
        client.force_login(user)
        run = dataservice_runner(client)
    ConsumerStreamRest(topic_name)  # the subscription exists before anything is published
    subscription = f"projects/{USER_PROJECT}/subscriptions/{topic_name}"
    good_ids, poison_ids = publish_interleaved(publish, topic_name, GOOD, POISON)

    returned = run(topic_name, callback)

    expected = {source_id_of(p) for p in GOOD} - ({DOOMED} if callback else set())
    stored = Alert.objects.filter(subscription=subscription)
    assert set(stored.values_list("source_id", flat=True)) == expected
    assert all(row.attributes == {"origin": "good"} for row in stored)  # the message's attributes, kept
    if returned is not None:  # the good alerts come back even though the batches held poison
        assert {alert["source_id"] for alert in returned} == expected
    rejected = {row.message_id: row for row in RejectedMessage.objects.filter(subscription=subscription)}
    for name, message_id in poison_ids.items():
        assert message_id in rejected, f"{name} was not recorded"
        row = rejected.pop(message_id)
        assert row.attributes == {"origin": "poison"} and bytes(row.data) == POISON[name][0]
        assert row.size == len(POISON[name][0]) and row.sha256 == hashlib.sha256(POISON[name][0]).hexdigest()
        assert re.search(POISON[name][1], row.reason), f"{name}: {row.reason}"
    if callback is not None:
        [row] = rejected.values()
        assert row.reason.startswith("the filter raised ZeroDivisionError: a bug in the user's filter")
    else:
        assert rejected == {}

    # A second alert with a stored alert's id but other content is recorded; a true redelivery is not. (On
    # another subscription: the emulator keeps routing a subscription's new messages to a streaming pull that
    # ended, for a while.)
    second = create_topic(PITTGOOGLE_PROJECT, "ztf-test")
    ConsumerStreamRest(second)
    original = GOOD_ZTF[0]
    before = Alert.objects.get(source_id=source_id_of(original)).alert
    [conflict_id] = publish(second, [conflicting(original)], origin="conflict")
    publish(second, [original], origin="good")
    run(second, callback)
    assert Alert.objects.get(source_id=source_id_of(original)).alert == before
    [conflict] = RejectedMessage.objects.filter(subscription=f"projects/{USER_PROJECT}/subscriptions/{second}")
    assert conflict.message_id == conflict_id
    assert conflict.reason.startswith(f"conflicts with the stored alert ztf {source_id_of(original)}")
    assert "magpsf" in conflict.reason
    assert not Alert.objects.filter(subscription=f"projects/{USER_PROJECT}/subscriptions/{second}").exists()

    assert_nothing_comes_back(topic_name, second)


# --- a database that is down ------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_database_that_goes_down_stops_the_ingester_with_exit_1_and_acknowledges_nothing_unstored(
    topic_name, publish
):
    ConsumerStreamRest(topic_name)
    first, second = GOOD_ZTF[:2], GOOD_ZTF[2:5]
    ingester = Ingester("--subscription", topic_name)
    try:
        publish(topic_name, first)
        assert wait_until(lambda: Alert.objects.count() == len(first), timeout=60)
        with connection.cursor() as cursor:  # the ingester's connection is cut, as a server restart would
            cursor.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                           "WHERE datname = current_database() AND pid <> pg_backend_pid()")
        publish(topic_name, second + [POISON["band as a list"][0]])
        code, out, err = ingester.finish(timeout=120)
    finally:
        if ingester.process.poll() is None:
            ingester.process.kill()
    assert code == 1, (out, err)
    assert "database is unavailable" in err
    assert Alert.objects.count() == len(first) and RejectedMessage.objects.count() == 0
    # Nothing of the second batch was acknowledged: it all comes to the next listener.
    stats = StreamIngester([Stream(topic_name)]).run(max_results=len(second), timeout=240)
    assert stats.accepted == len(second)
    assert Alert.objects.count() == len(first) + len(second)


# --- the store on its own: rows refused, size cap, retention ------------------------------------------------


def test_a_batch_with_bad_rows_stores_the_others_and_records_the_bad_ones_with_the_databases_reason():
    from tom_pittgoogle.core.alerts import decode_alert, lighten_alert

    good = [lighten_alert(decode_alert(p)) for p in GOOD]
    bad = [
        {**good[0], "source_id": "1" * 70},  # too long for the column
        {**good[1], "source_id": "123", "jd": "not a number"},
        {**good[2], "source_id": "124", "mag": float("nan"), "note": float("nan")},  # NaN is not JSON
        {**good[3], "source_id": "125", "object_id": "ZTF\x00"},
        {"survey": "ztf", "source_id": "126"},  # no object id
    ]
    alerts = good[4:] + bad
    messages = [RawMessage(f"m{i}", json.dumps(a, default=str).encode(), {"i": str(i)}) for i, a in enumerate(alerts)]
    saved = DjangoAlertStore().save_messages(alerts, messages, subscription="s")
    assert saved.new == len(good) - 4
    assert sorted(saved.rejected) == list(range(len(good) - 4, len(alerts)))
    assert Alert.objects.filter(subscription="s").count() == len(good) - 4
    reasons = {r.message_id: r.reason for r in RejectedMessage.objects.all()}
    assert len(reasons) == len(bad)
    assert "value too long" in reasons[f"m{len(good) - 4}"]
    assert "jd" in reasons[f"m{len(good) - 3}"]
    assert all("INSERT" not in reason and "SELECT" not in reason for reason in reasons.values())
    # The same batch again: the good ones are silent duplicates, the bad ones rejected again.
    again = DjangoAlertStore().save_messages(alerts, messages, subscription="s")
    assert again.new == 0 and sorted(again.rejected) == sorted(saved.rejected)


def test_rejected_messages_keep_the_first_bytes_with_size_and_checksum_and_a_bounded_reason(settings):
    settings.PITTGOOGLE_REJECTED_MAX_BYTES = 1024
    data = bytes(range(256)) * 1600  # 400 KiB
    DjangoAlertStore().record_rejected([(RawMessage("big", data, {}), "why " * 5000 + "\x00\ud800")])
    row = RejectedMessage.objects.get(message_id="big")
    assert bytes(row.data) == data[:1024] and row.size == len(data) and row.truncated
    assert row.sha256 == hashlib.sha256(data).hexdigest()
    assert len(row.reason) <= 2000 and "\x00" not in row.reason


def test_prune_rejected_deletes_only_messages_older_than_the_retention_in_batches(settings):
    from datetime import timedelta

    from django.utils import timezone

    store = DjangoAlertStore()
    store.record_rejected([(RawMessage(f"old{i}", b"x", {}), "old") for i in range(5)])
    store.record_rejected([(RawMessage("new", b"x", {}), "new")])
    RejectedMessage.objects.filter(reason="old").update(received_at=timezone.now() - timedelta(days=31))
    assert prune_rejected(batch_size=2) == 5  # the default retention: 30 days
    assert list(RejectedMessage.objects.values_list("message_id", flat=True)) == ["new"]
    settings.PITTGOOGLE_REJECTED_RETENTION_DAYS = 0
    assert prune_rejected() == 1


@pytest.mark.django_db(transaction=True)
def test_the_originals_per_message_callback_records_poison_and_acknowledges_it(topic_name, publish):
    from tom_pittgoogle.core.pubsub import close_client, subscriber_client

    consumer = ConsumerStreamPython(topic_name)
    poison = [POISON[name][0] for name in ("id over 64 characters", "band as a list", "JSON nested 1000 deep")]
    publish(topic_name, GOOD_LSST + poison)
    client = subscriber_client()
    future = client.subscribe(consumer.subscription_path, consumer.callback)  # the original's own subscriber
    try:
        assert wait_until(lambda: Alert.objects.count() == len(GOOD_LSST)
                          and RejectedMessage.objects.count() == len(poison), timeout=60)
    finally:
        future.cancel()
        future.result(timeout=60)
        close_client(client)
    assert sorted(bytes(row.data) for row in RejectedMessage.objects.all()) == sorted(poison)  # each once
