"""The night-long ingester (`manage.py pittgoogle_stream`) against the Pub/Sub emulator and PostgreSQL.

Signals, kill -9 and two ingesters at once need real processes: those tests run the command as a subprocess
on the test database (committed data, so `transaction=True`).
"""

from __future__ import annotations

import io
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import fastavro
import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from tom_pittgoogle.core.pubsub import subscriber_client
from tom_pittgoogle.demo.sample_alerts import make_packets
from tom_pittgoogle.models import Alert, RejectedMessage
from tom_pittgoogle.routes.stream_python import ConsumerStreamPython

from .conftest import USER_PROJECT
from .helpers import alerts_table_locked, wait_until
from .processes import finish
from .unacknowledged import assert_nothing_left_unacknowledged

pytestmark = pytest.mark.django_db(transaction=True)

ROOT = Path(__file__).resolve().parents[1]
#: How long a process may take to exit on a second signal ("at once": no storing, no waiting on the database).
SECOND_SIGNAL_EXIT = 20


def candid_of(packet: bytes) -> str:
    return str(next(iter(fastavro.reader(io.BytesIO(packet))))["candid"])


def classtar_of(packet: bytes):
    return next(iter(fastavro.reader(io.BytesIO(packet))))["candidate"]["classtar"]


def run_command(*args: str) -> str:
    out = io.StringIO()
    call_command("pittgoogle_stream", *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def ingest_until_stored(topic_name: str, expected: int, bound: float = 240) -> None:
    """Run the ingester on ``topic_name`` until ``expected`` alerts of it are stored, for at most ``bound`` seconds.

    The Pub/Sub emulator may keep routing a killed or cancelled stream's messages to it for up to a few minutes
    before it redelivers them (NOTES-emulators.md; real Pub/Sub redelivers after the lease), so one run that
    stops after some seconds without a message may come too early. The assertion after it says what was lost.
    """
    deadline = time.monotonic() + bound
    while (missing := expected - len(stored_source_ids(topic_name))) > 0 and time.monotonic() < deadline:
        run_command("--subscription", topic_name, "--max-results", str(missing), "--timeout", "30")


def stored_source_ids(subscription: str | None = None) -> list[str]:
    rows = Alert.objects.all()
    if subscription:
        rows = rows.filter(subscription=f"projects/{USER_PROJECT}/subscriptions/{subscription}")
    return list(rows.values_list("source_id", flat=True))


def subscribe(name: str) -> None:
    """Create the subscription without streaming from it.

    (The emulator keeps routing new messages to a streaming pull for a while after it ended, whence they
    come back only after the lease; real Pub/Sub does not.)
    """
    ConsumerStreamPython(name)


#: A progress line of pittgoogle_stream: the counts so far, the rate since the last one and the backlog.
PROGRESS_LINE = re.compile(r"received \d+, stored \d+, duplicates \d+, filtered out \d+, rejected \d+, "
                           r"\d+\.\d alerts/s, backlog \d+")

MALFORMED = [
    (b"Obj\x01" + b"\x00" * 40, "truncated Avro"),
    (b"\x00\x00\x00\x02\xbd" + b"\x01" * 30, "Confluent wire format"),
    (b"{not json", "JSON garbage"),
    (b"", "empty"),
    (b"\x89PNG\r\n\x1a\n" + b"\x00" * 20, "a foreign format"),
]


def test_a_mixed_stream_stores_each_alert_once_and_records_every_malformed_message(topic_name, publish, packets):
    subscribe(topic_name)
    publish(topic_name, packets + packets)  # every alert delivered twice
    for data, _ in MALFORMED:
        publish(topic_name, [data], origin="test")
    out = run_command("--subscription", topic_name, "--timeout", "3", "--progress-interval", "0.5")

    assert sorted(stored_source_ids(topic_name)) == sorted(map(candid_of, packets))
    rejected = RejectedMessage.objects.filter(subscription__endswith=f"/{topic_name}")
    assert sorted(bytes(r.data) for r in rejected) == sorted(data for data, _ in MALFORMED)
    assert all(r.reason and r.message_id and r.attributes == {"origin": "test"} for r in rejected)
    summary = out.strip().splitlines()[-1]
    assert f"received {2 * len(packets) + len(MALFORMED)}," in summary
    assert f"stored {len(packets)}, duplicates {len(packets)}," in summary
    assert f"rejected {len(MALFORMED)}," in summary
    progress = [line for line in out.splitlines()[:-1] if PROGRESS_LINE.fullmatch(line)]
    assert progress, f"no progress line (counts, alerts/s, backlog) before the summary:\n{out}"
    # Everything was acknowledged: after the ack deadline only a marker published then comes.
    assert_nothing_left_unacknowledged(topic_name)


def test_the_filter_options_store_only_alerts_that_pass(topic_name, publish, packets):
    subscribe(topic_name)
    publish(topic_name, packets)
    out = run_command(
        "--subscription", topic_name, "--timeout", "3", "--classtar-threshold", "0.9", "--classtar-gt-lt", "gt"
    )
    passing = [p for p in packets if classtar_of(p) is not None and classtar_of(p) >= 0.9]
    assert 0 < len(passing) < len(packets)
    assert sorted(stored_source_ids(topic_name)) == sorted(map(candid_of, passing))
    assert f"filtered out {len(packets) - len(passing)}," in out.splitlines()[-1]


def test_bad_option_values_are_refused_before_listening(pubsub_emulator):
    with pytest.raises(CommandError, match="classtar_threshold|classtar-threshold"):
        run_command("--subscription", "ztf-loop", "--classtar-threshold", "2")
    with pytest.raises(CommandError, match="max_results|max-results"):
        run_command("--subscription", "ztf-loop", "--max-results", "0")
    with pytest.raises(CommandError, match="not a valid Pub/Sub subscription name"):
        run_command("--subscription", "no spaces allowed")


def test_a_missing_topic_is_a_clear_error(pubsub_emulator):
    with pytest.raises(CommandError, match="Pitt-Google publishes no topic"):
        run_command("--subscription", "no-such-stream", "--timeout", "1")


def test_streams_declared_in_settings_run_together_each_with_its_filter(settings, pubsub_emulator, publish, packets):
    from tom_pittgoogle.core.pubsub import publisher_client

    from .conftest import PITTGOOGLE_PROJECT

    names = [f"ztf-settings-{i}-{os.getpid()}-{time.monotonic_ns() % 10**6}" for i in range(2)]
    for name in names:
        publisher_client().create_topic(name=f"projects/{PITTGOOGLE_PROJECT}/topics/{name}")
    settings.PITTGOOGLE_STREAMS = [
        {"subscription": names[0]},
        {"subscription": names[1], "filter": {"classtar_threshold": 0.95, "classtar_gt_lt": "lt"},
         "create_targets": True},
    ]
    for name in names:
        subscribe(name)
    others = make_packets(12, seed=99)  # an alert is stored once whatever carried it: other alerts here
    publish(names[0], packets)
    publish(names[1], others)
    run_command("--timeout", "3")
    below = [p for p in others if classtar_of(p) is not None and classtar_of(p) < 0.95]
    assert 0 < len(below) < len(others)
    assert sorted(stored_source_ids(names[0])) == sorted(map(candid_of, packets))
    assert sorted(stored_source_ids(names[1])) == sorted(map(candid_of, below))
    from tom_targets.models import Target

    object_ids = {next(iter(fastavro.reader(io.BytesIO(p))))["objectId"] for p in below}
    assert set(Target.objects.values_list("name", flat=True)) == object_ids


def test_a_bad_stream_in_settings_is_a_clear_error(settings, pubsub_emulator):
    settings.PITTGOOGLE_STREAMS = [{"subscription": "ztf-loop", "filtre": {}}]
    with pytest.raises(CommandError, match="unknown keys \\['filtre'\\]"):
        run_command("--timeout", "1")


# --- as a process: signals, kill -9, several ingesters ------------------------------------------------------


class Ingester:
    """``manage.py pittgoogle_stream`` in its own process, on the test database."""

    def __init__(self, *args: str) -> None:
        env = dict(
            os.environ,
            DJANGO_SETTINGS_MODULE="tests.settings",
            PGDATABASE=connection.settings_dict["NAME"],
            GOOGLE_CLOUD_PROJECT=USER_PROJECT,
            PYTHONUNBUFFERED="1",
        )
        self.process = subprocess.Popen(
            [sys.executable, "-m", "django", "pittgoogle_stream", "--progress-interval", "0.5", *args],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        self.wait_for_line("listening to")

    def wait_for_line(self, text: str, timeout: float = 60, stream: str = "stdout") -> None:
        pipe = getattr(self.process, stream)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = pipe.readline()
            if text in line:
                return
            if not line and self.process.poll() is not None:
                break
        raise AssertionError(f"no {text!r} from the ingester: {self.process.stderr.read()}")

    def send(self, signum: int) -> None:
        self.process.send_signal(signum)

    def finish(self, timeout: float = 90, expectation: str = "the ingester should have ended") -> tuple[int, str, str]:
        return finish(self.process, timeout, expectation)


def summary_counts(output: str) -> dict[str, int]:
    """The counts of the ingester's last line: received, stored, duplicates, filtered out, rejected, handed back."""
    line = output.strip().splitlines()[-1]
    counts = {}
    for name in ("received", "stored", "duplicates", "filtered out", "rejected", "handed back"):
        found = re.search(rf"{name} (\d+)", line)
        counts[name] = int(found.group(1)) if found else 0
    return counts


@pytest.fixture
def many_packets() -> list[bytes]:
    """Enough real-size alerts that an ingester is mid-stream when it is stopped."""
    return make_packets(1500, seed=int(time.monotonic_ns() % 10**6))


@pytest.mark.timeout(300)
def test_sigterm_stores_every_alert_in_flight_and_acknowledges_it(topic_name, publish, in_flight_packets,
                                                                   monkeypatch):
    """The command in this process (its own signal handler, in the main thread); the alerts table is locked so
    that every alert is received and none stored when SIGTERM lands: all of them must be stored, none handed back."""
    import threading

    from tom_pittgoogle.core import runner

    made: list = []

    class Recorded(runner.StreamIngester):  # the product's own class; the test only keeps a handle
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            made.append(self)

    # The command runs its ingester through the runner it shares with the alert stream.
    monkeypatch.setattr(runner, "StreamIngester", Recorded)
    n = len(in_flight_packets)
    subscribe(topic_name)
    publish(topic_name, in_flight_packets)
    failures: list[str] = []

    with alerts_table_locked() as lock:
        def signal_when_all_are_in_flight() -> None:
            # The first batch (one alert) waits on the lock; every other alert is queued behind it.
            if not wait_until(lambda: made and lock.inserts_waiting() == 1 and made[0].backlog == n - 1, 120):
                failures.append(f"not all in flight: {made and made[0].stats.line(backlog=made[0].backlog)}")
            os.kill(os.getpid(), signal.SIGTERM)
            if not wait_until(lambda: made[0].stopping, 30):
                failures.append("SIGTERM did not reach the ingester")
            lock.release()

        helper = threading.Thread(target=signal_when_all_are_in_flight)
        helper.start()
        out = run_command("--subscription", topic_name, "--batch-size", "1", "--max-backlog", "1000")
        helper.join()
    assert failures == []
    counts = summary_counts(out)
    assert counts["stored"] == n and counts["handed back"] == 0, out.splitlines()[-1]
    assert sorted(stored_source_ids(topic_name)) == sorted(map(candid_of, in_flight_packets))
    # Acknowledged once stored: nothing comes back after the ack deadline.
    assert_nothing_left_unacknowledged(topic_name)


def test_kill_9_mid_stream_then_restart_stores_every_alert_exactly_once(topic_name, publish, many_packets):
    ingester = Ingester("--subscription", topic_name, "--batch-size", "50")
    publish(topic_name, many_packets)
    assert wait_until(lambda: Alert.objects.count() >= 100)
    ingester.send(signal.SIGKILL)
    code, _, _ = ingester.finish()
    assert code == -signal.SIGKILL
    stored_before_kill = Alert.objects.count()
    assert stored_before_kill < len(many_packets)
    restarted = Ingester("--subscription", topic_name)
    assert wait_until(lambda: Alert.objects.count() == len(many_packets), timeout=120)
    restarted.send(signal.SIGINT)
    code, out, err = restarted.finish()
    assert code == 0, err
    assert sorted(stored_source_ids(topic_name)) == sorted(map(candid_of, many_packets))
    counts = summary_counts(out)
    # The restarted ingester stored exactly what the killed one had not; each redelivery of an alert the killed
    # one had stored (but not acknowledged) is counted as a duplicate, not stored twice.
    assert counts["stored"] == len(many_packets) - stored_before_kill, out.splitlines()[-1]
    assert counts["duplicates"] == counts["received"] - counts["stored"] - counts["handed back"], out.splitlines()[-1]


@pytest.mark.timeout(480)
def test_a_second_signal_exits_at_once_with_143_and_the_next_ingester_gets_every_alert(topic_name, publish,
                                                                                        in_flight_packets):
    subscribe(topic_name)
    publish(topic_name, in_flight_packets)
    with alerts_table_locked() as lock:  # the first stop cannot finish: its alerts wait on the lock
        ingester = Ingester("--subscription", topic_name)
        assert wait_until(lambda: lock.inserts_waiting() == 1, 120)
        ingester.send(signal.SIGTERM)
        ingester.wait_for_line("storing what is in flight", stream="stderr")  # the first signal was handled
        ingester.send(signal.SIGTERM)
        code, _, err = ingester.finish(SECOND_SIGNAL_EXIT, "a second SIGTERM should make the ingester exit at once")
    assert code == 128 + signal.SIGTERM, err
    assert "SIGTERM again: exiting without storing what is in flight" in err
    assert Alert.objects.count() == 0  # its transaction never committed
    # It acknowledged nothing it had not stored: a new ingester gets every alert.
    ingest_until_stored(topic_name, len(in_flight_packets))
    assert sorted(stored_source_ids(topic_name)) == sorted(map(candid_of, in_flight_packets))


def test_two_ingesters_on_one_subscription_share_it_and_store_each_alert_once(topic_name, publish, many_packets):
    first = Ingester("--subscription", topic_name, "--max-backlog", "200")
    second = Ingester("--subscription", topic_name, "--max-backlog", "200")
    publish(topic_name, many_packets)
    assert wait_until(lambda: Alert.objects.count() == len(many_packets), timeout=120)
    first.send(signal.SIGTERM)  # a clean stop acknowledges what it stored before it exits
    second.send(signal.SIGTERM)
    results = [first.finish(), second.finish()]
    assert [code for code, _, _ in results] == [0, 0], [err for _, _, err in results]
    counts = [summary_counts(out) for _, out, _ in results]
    assert all(c["received"] > 0 and c["stored"] > 0 for c in counts), counts  # Pub/Sub shared the stream out
    assert sum(c["stored"] for c in counts) == len(many_packets)
    assert sorted(stored_source_ids(topic_name)) == sorted(map(candid_of, many_packets))


def test_the_subscription_deleted_under_a_running_ingester_ends_it_with_a_clear_error(topic_name, publish, packets):
    ingester = Ingester("--subscription", topic_name)
    publish(topic_name, packets)
    assert wait_until(lambda: Alert.objects.count() == len(packets))
    subscriber_client().delete_subscription(subscription=f"projects/{USER_PROJECT}/subscriptions/{topic_name}")
    code, out, err = ingester.finish(timeout=120)
    assert code == 1
    assert f"Subscription projects/{USER_PROJECT}/subscriptions/{topic_name} does not exist" in err
    assert "Traceback" not in err


def test_an_lsst_stream_creates_targets_whose_light_curves_hold_each_alerts_points(pubsub_emulator, publish):
    """`--survey lsst --create-targets`: the same Target path as the brokers (extras, aliases, photometry)."""
    from tom_dataproducts.models import PhotometryReducedDatum
    from tom_targets.models import Target

    from tom_pittgoogle.core.alerts import decode_alert, lighten_alert
    from tom_pittgoogle.core.targets import target_name
    from tom_pittgoogle.demo.sample_lsst import make_lsst_packets

    from .conftest import create_topic, publisher

    name = create_topic("pitt-alert-broker", "lsst-ingest")
    ConsumerStreamPython(name, survey="lsst")
    packets = [packet for _, packet in make_lsst_packets([(10, 0), (11, 1)], per_version=2)]
    publisher("pitt-alert-broker")(name, packets)

    out = run_command("--survey", "lsst", "--subscription", name, "--timeout", "3", "--create-targets")
    alerts = [lighten_alert(decode_alert(p)) for p in packets]
    assert f"stored {len(packets)}," in out.splitlines()[-1]
    assert Alert.objects.filter(survey="lsst").count() == len(packets)
    assert Target.objects.count() == len({target_name(alert) for alert in alerts})
    for alert in alerts:
        target = Target.objects.get(name=target_name(alert))
        assert target.aliases.filter(name=alert["object_id"]).exists()
        assert target.targetextra_set.filter(key="survey", value="lsst").exists()
        # Each alert's points are on its object's light curve (several alerts of one object share a curve).
        assert PhotometryReducedDatum.objects.filter(target=target).count() >= len(alert["photometry"]) > 0


#: What google-cloud-pubsub's own threads raise when the endpoint is gone: its lease maintainer re-raises the
#: RetryError of a lease extension it could not send (after shutting the streaming pull down), by design.
GONE_ENDPOINT_ERRORS = ("RetryError", "ServiceUnavailable")


@contextmanager
def client_threads_failing_on_a_gone_endpoint() -> Iterator[list[tuple[str, BaseException]]]:
    """Collect the exceptions that end the Pub/Sub client's threads while Pub/Sub is gone on purpose, and wait
    (bounded) for those threads to end, so that none outlives the test or reports into a later one."""
    caught: list[tuple[str, BaseException]] = []
    previous = threading.excepthook
    threading.excepthook = lambda args: caught.append((args.thread.name if args.thread else "", args.exc_value))
    try:
        yield caught
        assert wait_until(lambda: not [t for t in threading.enumerate() if t.name == "Thread-LeaseMaintainer"], 90), \
            "the Pub/Sub client's lease maintainer outlived its streaming pull"
    finally:
        threading.excepthook = previous
    unexpected = [(name, error) for name, error in caught
                  if name != "Thread-LeaseMaintainer" or type(error).__name__ not in GONE_ENDPOINT_ERRORS]
    assert not unexpected, f"a thread failed otherwise than on the gone endpoint: {unexpected}"


@pytest.mark.timeout(150)
def test_pubsub_gone_under_a_running_ingester_ends_it_with_a_clear_error(settings, tmp_path, monkeypatch, packets):
    """The client library retries an unreachable endpoint forever; the ingester's health check does not."""
    from tom_pittgoogle.core.engine import Stream, StreamIngester
    from tom_pittgoogle.core.pubsub import publisher_client
    from tom_pittgoogle.demo.emulators import PubSubEmulator
    from tom_pittgoogle.exceptions import EndpointError

    from .conftest import PITTGOOGLE_PROJECT

    settings.PITTGOOGLE_REQUEST_TIMEOUT = 3
    own = PubSubEmulator(log_dir=tmp_path)  # an emulator of this test's own, to stop
    own.start()
    try:
        monkeypatch.setenv("PUBSUB_EMULATOR_HOST", own.host)
        publisher_client().create_topic(name=f"projects/{PITTGOOGLE_PROJECT}/topics/ztf-doomed")
        stored: list = []

        def stop_pubsub_once_both_are_stored(stream, alerts) -> None:
            stored.extend(alerts)
            if len(stored) == 2:
                own.stop()  # Pub/Sub goes away under the running ingester, after its two alerts were stored

        ingester = StreamIngester([Stream("ztf-doomed")], health_check_interval=1,
                                  on_stored=stop_pubsub_once_both_are_stored)
        for future in [publisher_client().publish(f"projects/{PITTGOOGLE_PROJECT}/topics/ztf-doomed", p)
                       for p in packets[:2]]:
            future.result(timeout=30)
        # No stopping condition but the fatal error: if the health check missed it, run() would never return
        # (pytest-timeout fails the test then). A lease extension in flight when Pub/Sub went away ends the
        # client's lease maintainer with a RetryError; it is waited for here, not left to end a later test.
        with client_threads_failing_on_a_gone_endpoint(), pytest.raises(EndpointError, match="Pub/Sub is unreachable"):
            ingester.run()
        assert Alert.objects.count() == 2  # what arrived before was stored
    finally:
        own.stop()
