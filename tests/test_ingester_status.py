"""Is the ingester alive? Its heartbeat while it runs, late after kill -9, the status page and
`manage.py pittgoogle_status` (exit 1 when one is late); the ingester runs as a process on the test database."""

from __future__ import annotations

import io
import os
import re
import signal
import socket
import subprocess
import sys

import pytest
from django.core.management import call_command
from django.db import connection
from django.urls import reverse
from django.utils.html import escape

from tom_pittgoogle.core.pubsub import subscriber_client
from tom_pittgoogle.models import Alert, IngesterHeartbeat, RejectedMessage

from .conftest import USER_PROJECT
from .test_stream_ingester import MALFORMED, ROOT, Ingester, subscribe, wait_until

pytestmark = pytest.mark.django_db(transaction=True)

LATE_SECONDS = 3  # tests/settings_night.py says the same to the status command run as a process


@pytest.fixture(autouse=True)
def _short_late_limit(settings):
    settings.PITTGOOGLE_HEARTBEAT_LATE_SECONDS = LATE_SECONDS


def status() -> tuple[int, str]:
    """``pittgoogle_status`` in this process: its exit status and output."""
    out = io.StringIO()
    try:
        call_command("pittgoogle_status", stdout=out, stderr=io.StringIO())
    except SystemExit as exit_:
        return int(exit_.code), out.getvalue()
    return 0, out.getvalue()


def status_process() -> subprocess.CompletedProcess:
    """``manage.py pittgoogle_status`` as a monitoring system runs it."""
    env = dict(os.environ, DJANGO_SETTINGS_MODULE="tests.settings_night", PGDATABASE=connection.settings_dict["NAME"])
    return subprocess.run([sys.executable, "-m", "django", "pittgoogle_status"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)


def ingester_rows(page: str) -> list[str]:
    """The text of each row of the page's ingesters table (not the rejected messages' table)."""
    table = re.search(r'<table[^>]*id="pittgoogle-ingesters".*?</table>', page, re.S)
    assert table, "the status page has its ingesters table"
    body = re.search(r"<tbody>(.*?)</tbody>", table.group(0), re.S).group(1)
    return [" ".join(re.sub(r"<[^>]+>", " ", row).split()) for row in re.findall(r"<tr.*?</tr>", body, re.S)]


def heartbeat_of(ingester: Ingester) -> IngesterHeartbeat | None:
    return IngesterHeartbeat.objects.filter(pid=ingester.process.pid).first()


def test_a_running_ingester_beats_and_turns_late_after_kill_9(topic_name, publish, packets, client,
                                                             django_user_model):
    subscribe(topic_name)
    ingester = Ingester("--subscription", topic_name)
    publish(topic_name, packets)
    for data, _ in MALFORMED:
        publish(topic_name, [data], origin="test")  # an empty message needs an attribute

    def counted() -> bool:
        row = heartbeat_of(ingester)
        return row is not None and row.stored == len(packets) and row.rejected == len(MALFORMED)

    assert wait_until(counted)
    row = heartbeat_of(ingester)
    assert row.stopped_at is None and row.streams == [topic_name] and row.received == len(packets) + len(MALFORMED)
    assert row.last_received_at is not None and row.last_stored_at is not None and row.backlog >= 0
    assert row.started_at <= row.last_stored_at <= row.last_heartbeat
    # Alive: heartbeats keep coming, so the status is good.
    previous = row.last_heartbeat
    assert wait_until(lambda: heartbeat_of(ingester).last_heartbeat > previous)
    code, out = status()
    assert code == 0, out
    assert f"RUNNING: pittgoogle_stream pid {ingester.process.pid} on {socket.gethostname()}, streams {topic_name}" \
        in out.splitlines(), f"pittgoogle_status names the running ingester and its stream:\n{out}"
    assert f"stored {len(packets)}, duplicates 0, filtered out 0, rejected {len(MALFORMED)}" in out

    # The page, for a logged-in user only; rejected messages with their reasons, never their bytes.
    page_url = reverse("tom_pittgoogle:status")
    assert client.get(page_url).status_code == 302
    client.force_login(django_user_model.objects.create_user("operator", password="not-used"))
    page = client.get(page_url).content.decode()
    [row_text] = ingester_rows(page)
    assert f", {ingester.process.pid} " in row_text and topic_name in row_text, (
        f"the ingester's row on the status page names its stream: {row_text}")
    assert "LATE" not in page
    reasons = list(RejectedMessage.objects.values_list("reason", flat=True))
    assert len(reasons) == len(MALFORMED) and all(escape(reason) in page for reason in reasons)
    assert "JSON garbage" not in page and "{not json" not in page

    ingester.send(signal.SIGKILL)
    assert ingester.finish()[0] == -signal.SIGKILL
    # No heartbeat for longer than the limit: late, and the check fails.
    assert wait_until(lambda: status()[0] == 1, timeout=LATE_SECONDS * 10)
    code, out = status()
    assert f"LATE: pittgoogle_stream pid {ingester.process.pid}" in out
    checked = status_process()
    assert checked.returncode == 1 and "LATE" in checked.stdout
    assert "LATE" in client.get(page_url).content.decode()

    # Its replacement on this host takes over: the dead run is marked stopped, the check passes again.
    restarted = Ingester("--subscription", topic_name)
    assert wait_until(lambda: status()[0] == 0)
    dead = IngesterHeartbeat.objects.get(pid=ingester.process.pid)
    assert dead.stopped_at is not None and f"replaced by pid {restarted.process.pid}" in dead.last_error
    restarted.send(signal.SIGTERM)
    assert restarted.finish()[0] == 0
    final = heartbeat_of(restarted)
    assert final.stopped_at is not None and final.last_error == ""
    assert status_process().returncode == 0
    assert Alert.objects.count() == len(packets)


def test_an_ingester_that_stops_on_an_error_leaves_it_on_its_heartbeat(topic_name, publish, packets):
    ingester = Ingester("--subscription", topic_name)
    publish(topic_name, packets)
    assert wait_until(lambda: Alert.objects.count() == len(packets))
    subscriber_client().delete_subscription(subscription=f"projects/{USER_PROJECT}/subscriptions/{topic_name}")
    assert ingester.finish(timeout=120)[0] == 1
    row = heartbeat_of(ingester)
    assert row.stopped_at is not None and row.stored == len(packets)
    assert f"Subscription projects/{USER_PROJECT}/subscriptions/{topic_name} does not exist" in row.last_error
    code, out = status()
    assert code == 0 and "STOPPED" in out and "last error: stopped:" in out


def test_status_with_no_ingester_says_so_and_passes():
    code, out = status()
    assert code == 0
    assert "No ingester has run yet" in out and "Rejected messages: 0 kept." in out


def test_the_alert_stream_writes_its_heartbeat_too(topic_name, publish, packets):
    from .test_alertstream import listen_in_a_thread

    subscribe(topic_name)
    publish(topic_name, packets)
    stream = listen_in_a_thread(STREAMS=[{"subscription": topic_name}], MAX_RESULTS=len(packets), TIMEOUT=20,
                                PROGRESS_INTERVAL=0.5)
    row = IngesterHeartbeat.objects.get(kind="alert stream")
    assert row.streams == [topic_name] and row.stopped_at is not None and row.last_error == ""
    assert (row.received, row.stored, row.rejected) == (stream.stats.received, len(packets), 0)
    assert row.last_stored_at is not None
