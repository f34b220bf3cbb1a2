"""A Target entered by coordinates only receives its objects' alerts from both surveys through the ingester:
one merged light curve, both survey ids as aliases, the classifier results as extras, one signal per alert; once,
however often an alert is delivered and however many ingesters store it at the same moment.

On the Pub/Sub emulator and PostgreSQL, with committed data (the ingesters run as processes too).
"""

from __future__ import annotations

import copy
from collections import Counter

import pytest
from tom_dataproducts.models import PhotometryReducedDatum
from tom_targets.models import Target, TargetName

from tom_pittgoogle.core.alerts import SURVEYS
from tom_pittgoogle.core.attach import alert_attached
from tom_pittgoogle.demo.sample_alerts import make_alerts, serialize_alert
from tom_pittgoogle.demo.sample_lsst import make_lsst_alert, serialize_wire_format
from tom_pittgoogle.models import Alert, AttachedAlert
from tom_pittgoogle.routes.stream_python import ConsumerStreamPython

from .test_stream_ingester import Ingester, run_command

pytestmark = pytest.mark.django_db(transaction=True)

ARCSEC = 1 / 3600
RA, DEC = 150.1, 2.2
LSST_VERSION = (9, 0)


def ztf_night() -> tuple[list[bytes], str, str, list[dict]]:
    """A night of ZTF packets: every alert of one object within 0.6 arcsec of (RA, DEC), and every alert of
    another 2 arcsec away; returns the packets, the near object's id and the far one's."""
    records = make_alerts(16, seed=19)
    counts = Counter(record["objectId"] for record in records)
    near, far = [object_id for object_id, count in counts.most_common(2)]
    assert counts[near] >= 2
    for number, record in enumerate(records):
        if record["objectId"] == near:
            record["candidate"]["ra"] = RA + (0.2 + 0.1 * (number % 3)) * ARCSEC
            record["candidate"]["dec"] = DEC - 0.3 * ARCSEC
        elif record["objectId"] == far:
            record["candidate"]["ra"], record["candidate"]["dec"] = RA, DEC + 2.0 * ARCSEC
    return [serialize_alert(record) for record in records], near, far, [r for r in records if r["objectId"] == near]


def lsst_packet() -> tuple[bytes, str, int]:
    """A Rubin alert 0.7 arcsec from (RA, DEC): the packet, its diaObjectId and its number of photometry points."""
    record = copy.deepcopy(make_lsst_alert(*LSST_VERSION, index=3, seed=19))
    record["diaSource"]["ra"], record["diaSource"]["dec"] = RA, DEC + 0.7 * ARCSEC
    return serialize_wire_format(record, *LSST_VERSION), str(record["diaSource"]["diaObjectId"]), 0


def near_points(packets_near: list[dict]) -> int:
    """Distinct ZTF points of the near object: a detection or a limit per (time, band)."""
    return len({(e["jd"], e["fid"]) for r in packets_near for e in [r["candidate"], *(r["prv_candidates"] or [])]
                if e.get("magpsf") is not None or e.get("diffmaglim") is not None})


@pytest.fixture
def signals():
    received = []

    def on_attached(sender, target, alert, route, **kwargs):
        received.append((target.pk, alert["survey"], alert["source_id"], route))

    alert_attached.connect(on_attached)
    yield received
    alert_attached.disconnect(on_attached)


def ingest(topic: str, expected_stored: int, *extra: str) -> None:
    for _ in range(5):  # the emulator may hold a stopped stream's messages for a while (NOTES-emulators.md)
        if Alert.objects.filter(subscription__endswith=f"/{topic}").count() >= expected_stored:
            return
        run_command("--subscription", topic, "--max-results", str(expected_stored), "--timeout", "20", *extra)
    raise AssertionError(f"the ingester stored {Alert.objects.filter(subscription__endswith=topic).count()} of "
                         f"{expected_stored} alerts from {topic}")


def test_a_target_by_coordinates_receives_its_ztf_and_lsst_alerts(topic_name, publish, lsst_topic, publish_lsst,
                                                                   signals):
    target = Target.objects.create(name="SN 2026tom", type="SIDEREAL", ra=RA, dec=DEC)
    packets, near, far, near_records = ztf_night()
    lsst, dia_object_id, _ = lsst_packet()
    ConsumerStreamPython(topic_name)
    ConsumerStreamPython(lsst_topic, survey="lsst")
    publish(topic_name, packets + packets[:3])  # three alerts delivered twice
    publish_lsst(lsst_topic, [lsst, lsst])
    ingest(topic_name, len(packets))
    ingest(lsst_topic, 1, "--survey", "lsst")

    near_alerts = list(Alert.objects.filter(object_id=near))
    assert set(AttachedAlert.objects.values_list("object_id", flat=True)) == {near, dia_object_id}
    attached = AttachedAlert.objects.filter(target=target)
    assert sorted(attached.values_list("survey", "source_id")) == sorted(
        [("ztf", a.source_id) for a in near_alerts] + [("lsst", Alert.objects.get(survey="lsst").source_id)])
    assert not Alert.objects.filter(object_id=far).filter(
        source_id__in=attached.values("source_id")).exists(), "an alert 2 arcsec away was attached at 1.5"
    assert set(TargetName.objects.filter(target=target).values_list("name", flat=True)) == {near, dia_object_id}

    points = PhotometryReducedDatum.objects.filter(target=target)
    assert set(points.values_list("telescope", flat=True)) == {SURVEYS["ztf"].telescope, SURVEYS["lsst"].telescope}
    ztf_points = points.filter(source_location=f"{SURVEYS['ztf'].name}:{near}")
    lsst_points = points.filter(source_location=f"{SURVEYS['lsst'].name}:{dia_object_id}")
    assert ztf_points.count() + lsst_points.count() == points.count()
    assert ztf_points.count() == near_points(near_records) > 2
    assert ztf_points.filter(brightness__isnull=False, brightness_error__isnull=False).exists()
    assert lsst_points.filter(value__flux_unit="nJy", value__kind="forced").exists()
    assert lsst_points.filter(value__kind="detection", brightness_error__gt=0).exists()

    # one signal per attached alert, none for the redeliveries
    assert sorted(signals) == sorted((target.pk, s, i, r) for s, i, r in attached.values_list(
        "survey", "source_id", "route"))
    assert len(signals) == len(near_alerts) + 1

    # the whole night again: nothing new
    before = (points.count(), attached.count(), TargetName.objects.count(), len(signals))
    publish(topic_name, packets)
    ingest(topic_name, len(packets))
    run_command("--subscription", topic_name, "--max-results", str(len(packets)), "--timeout", "10")
    assert (points.count(), attached.count(), TargetName.objects.count(), len(signals)) == before


def rows(target) -> tuple:
    return (
        sorted(PhotometryReducedDatum.objects.filter(target=target).values_list(
            "timestamp", "bandpass", "brightness", "limit", "source_location")),
        sorted(AttachedAlert.objects.filter(target=target).values_list("survey", "source_id")),
        sorted(TargetName.objects.filter(target=target).values_list("name", flat=True)),
    )


@pytest.mark.timeout(300)
def test_two_processes_settling_one_night_at_the_same_moment_leave_the_same_rows_as_one(tmp_path, signals):
    """Two OS processes settle the same night of alerts of one Target, released at one moment by a barrier (an
    advisory lock the test holds until both wait for it): one of them, inside its transaction, sees the other
    wait for its locks (``pg_blocking_pids``), so their transactions overlapped; they leave one of each point,
    alias and AttachedAlert and one signal per alert, the same rows as one process does (tests/concurrent_attach.py).
    """
    import json
    import os
    import random
    import subprocess
    import sys

    from django.db import connection

    from .helpers import wait_until
    from .processes import finish
    from .test_stream_ingester import ROOT

    target = Target.objects.create(name="SN 2026two", type="SIDEREAL", ra=RA, dec=DEC)
    packets, near, _, near_records = ztf_night()
    key = random.getrandbits(62)
    env = dict(os.environ, DJANGO_SETTINGS_MODULE="tests.settings", PGDATABASE=connection.settings_dict["NAME"],
               PYTHONUNBUFFERED="1")
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_lock(%s)", [key])
        try:
            children = [subprocess.Popen([sys.executable, "-m", "tests.concurrent_attach", str(tmp_path), name, other,
                                          str(key)], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                                         stderr=subprocess.PIPE, text=True)
                        for name, other in (("a", "b"), ("b", "a"))]
            # Both wait at the barrier before it opens: their backends queue for the advisory lock.
            waiting: set[int] = set()

            def both_wait_or_one_ended() -> bool:
                pids = [int(p.read_text()) for p in tmp_path.glob("*.pid") if p.read_text().strip()]
                cursor.execute("SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND NOT granted "
                               "AND pid = ANY(%s)", [pids])
                waiting.update(row[0] for row in cursor.fetchall())
                return len(waiting) == 2 or any(child.poll() is not None for child in children)

            wait_until(both_wait_or_one_ended, timeout=120, interval=0.05)
        finally:
            cursor.execute("SELECT pg_advisory_unlock(%s)", [key])
    outcomes = [finish(child, 120, "each process should settle the night and exit") for child in children]
    assert len(waiting) == 2, f"not both processes reached the barrier: {outcomes}"
    for code, _, err in outcomes:
        assert code == 0, err[-3000:]
    reports = {name: json.loads((tmp_path / f"{name}.json").read_text()) for name in "ab"}

    # The overlap: one process, inside its transaction, saw the other blocked by it; the other then found it done.
    first = next((r for r in reports.values() if r["blocked_the_other"]), None)
    assert first is not None, f"neither transaction waited for the other: {reports}"
    second = reports["b" if first["name"] == "a" else "a"]
    assert second["other_done_first"] and not second["blocked_the_other"]
    assert second["released_at"] < first["committed_at"]  # the second had left the barrier before the first committed

    # One of each: attachments, alias, points, and one signal per alert across both processes.
    attached = sorted(AttachedAlert.objects.filter(target=target).values_list("source_id", flat=True))
    assert attached == sorted(str(r["candid"]) for r in near_records)
    assert sorted(first["signals"] + second["signals"]) == attached and not second["signals"]
    together = rows(target)
    assert together[2] == [near]
    assert len(together[0]) == near_points(near_records) == len(set(together[0]))
    assert Alert.objects.count() == len(packets)

    # The same night settled by one process into a fresh Target: the same rows.
    AttachedAlert.objects.all().delete()
    Target.objects.filter(pk=target.pk).delete()
    Alert.objects.all().delete()
    alone = Target.objects.create(name="SN 2026one", type="SIDEREAL", ra=RA, dec=DEC)
    settle_night(packets)
    assert rows(alone) == together
    assert len(signals) == len(attached)  # this process's own signals: the single run's


def test_two_ingesters_at_once_leave_the_same_rows_as_one(topic_name, publish):
    """The whole route twice: two ``pittgoogle_stream`` processes, each on its own subscription of the night's
    topic (so each receives every alert), store and attach at the same time; the Target ends with the rows one
    ingester gives. (That their transactions overlap is proven by the settle test above.)"""
    target = Target.objects.create(name="SN 2026two", type="SIDEREAL", ra=RA, dec=DEC)
    packets, near, _, _ = ztf_night()
    subscriptions = [f"{topic_name}-a", f"{topic_name}-b"]
    for name in subscriptions:
        _subscribe(name, topic_name)
    publish(topic_name, packets)
    ingesters = [Ingester("--subscription", name, "--max-results", str(len(packets)), "--timeout", "30",
                          "--batch-size", "4") for name in subscriptions]
    for ingester in ingesters:
        code, out, err = ingester.finish(120, "each ingester should store the night and stop")
        assert code == 0, err[-3000:]
    together = rows(target)
    assert together[1], "nothing was attached"
    assert len(together[1]) == len(set(together[1]))

    # The same night through one ingester into a fresh Target: the same rows.
    AttachedAlert.objects.all().delete()
    Target.objects.filter(pk=target.pk).delete()
    Alert.objects.all().delete()
    alone = Target.objects.create(name="SN 2026one", type="SIDEREAL", ra=RA, dec=DEC)
    _subscribe(f"{topic_name}-c", topic_name)
    publish(topic_name, packets)
    ingest(f"{topic_name}-c", len(packets))
    alone_rows = rows(alone)
    assert [len(part) for part in alone_rows] == [len(part) for part in together]
    assert alone_rows == together


def _subscribe(name: str, topic: str) -> None:
    from google.api_core.exceptions import AlreadyExists

    from tom_pittgoogle.core.pubsub import subscriber_client

    from .conftest import PITTGOOGLE_PROJECT, USER_PROJECT

    try:
        subscriber_client().create_subscription(
            name=f"projects/{USER_PROJECT}/subscriptions/{name}",
            topic=f"projects/{PITTGOOGLE_PROJECT}/topics/{topic}",
        )
    except AlreadyExists:
        pass


def settle_night(packets: list[bytes]) -> None:
    from tom_pittgoogle.core.pubsub import unpack_message
    from tom_pittgoogle.core.rejected import RawMessage
    from tom_pittgoogle.core.settle import settle, sort_outcomes
    from tom_pittgoogle.core.store import DjangoAlertStore

    passed, rejected = sort_outcomes([(RawMessage(f"m{i}", p, {}), unpack_message(p)) for i, p in enumerate(packets)])
    settle(DjangoAlertStore(), passed, rejected, subscription="night-alone")


def test_two_attachers_in_flight_at_once_attach_each_alert_once():
    """Two transactions attach the same alerts of one Target, the second starting before the first commits (as
    two ingesters on one stream do): one AttachedAlert, one alias and one set of points, one signal. The first
    commits only once it sees the second wait for its locks (``pg_blocking_pids``)."""
    import threading

    from django.db import connection, transaction

    from tom_pittgoogle.core.alerts import lighten_alert
    from tom_pittgoogle.core.attach import attach_alerts

    from .helpers import wait_until

    target = Target.objects.create(name="SN 2026race", type="SIDEREAL", ra=RA, dec=DEC)
    records = [r for r in ztf_night()[3]]
    alerts = [lighten_alert(r) for r in records]
    first_attached, second_done = threading.Event(), threading.Event()
    errors, counts, backends, seen = [], {}, {}, {}

    def backend_pid() -> int:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            return cursor.fetchone()[0]

    def first():
        try:
            backends["first"] = backend_pid()
            with transaction.atomic():
                counts["first"] = attach_alerts(alerts, route="first")
                first_attached.set()
                # Hold the transaction open until the second waits for its locks (or ends: then the check fails).
                with connection.cursor() as cursor:

                    def second_waits_or_ended() -> bool:
                        if second_done.is_set():
                            return True
                        if "second" not in backends:
                            return False
                        cursor.execute("SELECT %s = ANY(pg_blocking_pids(%s))",
                                       [backends["first"], backends["second"]])
                        if cursor.fetchone()[0]:
                            seen["second blocked"] = True
                        return bool(seen)

                    wait_until(second_waits_or_ended, timeout=60, interval=0.01)
        except Exception as error:  # noqa: BLE001 - reported by the assertion below
            errors.append(error)
        finally:
            first_attached.set()
            connection.close()

    def second():
        try:
            backends["second"] = backend_pid()
            assert first_attached.wait(60), "the first attacher never attached"
            with transaction.atomic():
                counts["second"] = attach_alerts(alerts, route="second")
        except Exception as error:  # noqa: BLE001
            errors.append(error)
        finally:
            second_done.set()
            connection.close()

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
        assert not thread.is_alive(), "an attacher hangs"
    assert not errors, errors
    assert seen == {"second blocked": True}, "the second attacher did not wait for the first's transaction"
    assert counts == {"first": len(alerts), "second": 0}
    assert AttachedAlert.objects.filter(target=target).count() == len(alerts)
    assert list(TargetName.objects.filter(target=target).values_list("name", flat=True)) == [records[0]["objectId"]]
    assert PhotometryReducedDatum.objects.filter(target=target).count() == near_points(records)


def test_follow_list_attaches_only_to_its_targets(topic_name, publish):
    from django.core.management import CommandError
    from tom_targets.models import TargetList

    followed = Target.objects.create(name="followed", type="SIDEREAL", ra=RA, dec=DEC)
    other = Target.objects.create(name="other", type="SIDEREAL", ra=RA, dec=DEC)
    TargetList.objects.create(name="Tonight").targets.add(followed)
    with pytest.raises(CommandError, match="no TargetList named 'Nope'"):
        run_command("--subscription", topic_name, "--follow-list", "Nope", "--timeout", "1")
    packets, near, _, _ = ztf_night()
    ConsumerStreamPython(topic_name)
    publish(topic_name, packets)
    ingest(topic_name, len(packets), "--follow-list", "Tonight")
    assert AttachedAlert.objects.filter(target=followed).count() == Alert.objects.filter(object_id=near).count() > 1
    assert not AttachedAlert.objects.filter(target=other).exists()
