"""tom-alertstreams' ``readstreams`` running a Pitt-Google stream from ``settings.ALERT_STREAMS``, on the Pub/Sub
emulator and PostgreSQL: the command in its own process (committed data, so ``transaction=True``), and the
stream class in a thread as readstreams runs it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.db import connection
from tom_dataproducts.models import PhotometryReducedDatum
from tom_targets.models import Target

from tom_pittgoogle.adapters.alertstream import PittGoogleAlertStream
from tom_pittgoogle.models import Alert, RejectedMessage

from .conftest import USER_PROJECT
from .helpers import alerts_table_locked, wait_until
from .processes import finish
from .test_stream_ingester import (
    ROOT,
    SECOND_SIGNAL_EXIT,
    candid_of,
    classtar_of,
    ingest_until_stored,
    stored_source_ids,
    subscribe,
)
from .unacknowledged import assert_nothing_left_unacknowledged

pytestmark = pytest.mark.django_db(transaction=True)

STREAM_CLASS = "tom_pittgoogle.adapters.alertstream.PittGoogleAlertStream"


class ReadStreams:
    """``manage.py readstreams`` in its own process, with ``ALERT_STREAMS`` = one Pitt-Google stream."""

    def __init__(self, **options) -> None:
        env = dict(
            os.environ,
            DJANGO_SETTINGS_MODULE="tests.settings_alertstreams",
            PITTGOOGLE_TEST_ALERT_STREAMS=json.dumps([{"ACTIVE": True, "NAME": STREAM_CLASS, "OPTIONS": options}]),
            PGDATABASE=connection.settings_dict["NAME"],
            GOOGLE_CLOUD_PROJECT=USER_PROJECT,
            PYTHONUNBUFFERED="1",
        )
        self.process = subprocess.Popen([sys.executable, "-m", "django", "readstreams"], cwd=ROOT, env=env,
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def wait_for_line(self, text: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = self.process.stderr.readline()  # the TOM logs to stderr
            if text in line:
                return
            if not line and self.process.poll() is not None:
                break
        raise AssertionError(f"no {text!r} from readstreams: {self.process.stderr.read()}")

    def finish(self, timeout: float = 120, expectation: str = "readstreams should have ended") -> tuple[int, str, str]:
        return finish(self.process, timeout, expectation)


def test_readstreams_stores_each_alert_once_records_malformed_and_creates_targets(topic_name, publish, packets):
    subscribe(topic_name)
    publish(topic_name, packets + [b"{not json"])
    publish(topic_name, packets[:2])  # a redelivery of the same alerts: stored once
    readstreams = ReadStreams(STREAMS=[{"subscription": topic_name, "create_targets": True}],
                              MAX_RESULTS=len(packets) + 2, TIMEOUT=20)
    code, out, err = readstreams.finish()
    assert code == 0, err
    assert f"listening to {topic_name}" in err
    assert sorted(stored_source_ids(topic_name)) == sorted(map(candid_of, packets)), err
    assert RejectedMessage.objects.count() == 1
    objects = set(Alert.objects.values_list("object_id", flat=True))
    assert set(Target.objects.values_list("name", flat=True)) == objects
    assert all(PhotometryReducedDatum.objects.filter(target=target).exists() for target in Target.objects.all())
    # Everything stored was acknowledged: after the ack deadline only a marker published then comes.
    assert_nothing_left_unacknowledged(topic_name)


@pytest.mark.timeout(480)
def test_sigterm_stores_every_alert_in_flight_then_acknowledges_it(topic_name, publish, in_flight_packets,
                                                                   monkeypatch):
    """As readstreams runs it: the stream made in the main thread (which installs the SIGTERM handler), listening
    in a thread of its own. The alerts table is locked so that every alert is received and none stored when
    SIGTERM lands: all must be stored, none handed back."""
    from tom_pittgoogle.adapters import readstreams_process

    n = len(in_flight_packets)
    subscribe(topic_name)
    publish(topic_name, in_flight_packets)
    previous = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)}
    monkeypatch.setattr(readstreams_process, "_hooks_installed", False)
    try:
        with alerts_table_locked() as lock:
            stream = PittGoogleAlertStream(STREAMS=[{"subscription": topic_name}], BATCH_SIZE=1)
            assert signal.getsignal(signal.SIGTERM) is readstreams_process._on_signal
            listener = threading.Thread(target=lambda: (stream.listen(), connection.close()))
            listener.start()
            # The first batch (one alert) waits on the lock; every other alert is queued behind it.
            assert wait_until(lambda: stream._ingester is not None and lock.inserts_waiting() == 1
                              and stream._ingester.backlog == n - 1, 120)
            os.kill(os.getpid(), signal.SIGTERM)
            assert wait_until(lambda: stream.stopping, 30)
            lock.release()
            listener.join(timeout=120)
            assert not listener.is_alive()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    assert stream.stats.stored == n and stream.stats.handed_back == 0, stream.stats.line()
    assert sorted(stored_source_ids(topic_name)) == sorted(map(candid_of, in_flight_packets))
    assert_nothing_left_unacknowledged(topic_name)  # acknowledged once stored


@pytest.mark.timeout(480)
def test_sigterm_stops_readstreams_with_exit_0_storing_what_it_received_and_losing_nothing(topic_name, publish,
                                                                                           in_flight_packets):
    subscribe(topic_name)
    publish(topic_name, in_flight_packets)
    with alerts_table_locked() as lock:  # nothing is stored before the signal: what is stored was in flight
        readstreams = ReadStreams(STREAMS=[{"subscription": topic_name}], PROGRESS_INTERVAL=0.5)
        assert wait_until(lambda: lock.inserts_waiting() == 1, 120)
        readstreams.process.send_signal(signal.SIGTERM)
        readstreams.wait_for_line("storing what is in flight")
    code, out, err = readstreams.finish(60, "after SIGTERM readstreams should store what is in flight and exit")
    assert code == 0, err
    stored = Alert.objects.count()
    assert stored > 0
    # What it did not store it did not acknowledge: the next listener gets exactly the rest.
    ingest_until_stored(topic_name, len(in_flight_packets))
    assert sorted(stored_source_ids(topic_name)) == sorted(map(candid_of, in_flight_packets))


@pytest.mark.timeout(480)
def test_a_second_signal_exits_readstreams_at_once_with_143_acknowledging_nothing_unstored(topic_name, publish,
                                                                                            in_flight_packets):
    subscribe(topic_name)
    publish(topic_name, in_flight_packets)
    with alerts_table_locked() as lock:  # the first stop cannot finish: its alerts wait on the lock
        readstreams = ReadStreams(STREAMS=[{"subscription": topic_name}])
        assert wait_until(lambda: lock.inserts_waiting() == 1, 120)
        readstreams.process.send_signal(signal.SIGTERM)
        readstreams.wait_for_line("storing what is in flight")  # the first signal was handled
        readstreams.process.send_signal(signal.SIGTERM)
        code, _, err = readstreams.finish(SECOND_SIGNAL_EXIT, "a second SIGTERM should make readstreams exit at once")
        assert Alert.objects.count() == 0
    assert code == 128 + signal.SIGTERM, err
    assert "SIGTERM again: exiting without storing what is in flight" in err
    ingest_until_stored(topic_name, len(in_flight_packets))
    assert sorted(stored_source_ids(topic_name)) == sorted(map(candid_of, in_flight_packets))


received: list[dict] = []


def record_alert(alert: dict) -> None:
    """A TOPIC_HANDLERS handler of the tests."""
    received.append(alert)


def listen_in_a_thread(**options) -> PittGoogleAlertStream:
    """Make and run the stream in a thread, as readstreams does (not the main thread: no signal handlers)."""
    outcome: dict = {}

    def run() -> None:
        try:
            stream = outcome["stream"] = PittGoogleAlertStream(**options)
            stream.listen()
        except BaseException as error:  # handed to the test
            outcome["error"] = error
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(timeout=120)
    assert not thread.is_alive()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["stream"]


def test_the_filter_keeps_what_passes_and_topic_handlers_see_each_stored_alert(topic_name, publish, packets):
    received.clear()
    subscribe(topic_name)
    publish(topic_name, packets)
    expected = [p for p in packets if (classtar_of(p) or 0) >= 0.9]
    stream = listen_in_a_thread(
        STREAMS=[{"subscription": topic_name, "filter": {"classtar_threshold": 0.9, "classtar_gt_lt": "gt"}}],
        TOPIC_HANDLERS={topic_name: "tests.test_alertstream.record_alert"},
        TIMEOUT=5,
    )
    assert sorted(stored_source_ids(topic_name)) == sorted(map(candid_of, expected))
    assert sorted(str(alert["source_id"]) for alert in received) == sorted(map(candid_of, expected))
    assert stream.stats.filtered_out == len(packets) - len(expected)


def test_a_subscription_named_only_in_topic_handlers_is_streamed(topic_name, publish, packets):
    received.clear()
    subscribe(topic_name)
    publish(topic_name, packets[:3])
    listen_in_a_thread(TOPIC_HANDLERS={topic_name: "tests.test_alertstream.record_alert"}, MAX_RESULTS=3,
                       TIMEOUT=20)
    assert len(received) == 3


@pytest.mark.parametrize("options, says", [
    ({"STREAMS": [{"subscription": "ztf-loop", "colour": "red"}]}, "unknown keys"),
    ({"STREAMS": [{"subscription": "ztf-loop"}], "SPEED": 3}, "unknown OPTIONS"),
    ({"STREAMS": [{"subscription": "x y"}]}, "x y"),
])
def test_bad_options_are_refused_when_readstreams_reads_the_settings(options, says, pubsub_emulator):
    with pytest.raises(ImproperlyConfigured, match=says):
        PittGoogleAlertStream(**options)
