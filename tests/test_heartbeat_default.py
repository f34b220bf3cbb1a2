"""When is an ingester late with the README's default (no ``PITTGOOGLE_HEARTBEAT_LATE_SECONDS``): three progress
intervals, at least 120 s; and the status command and page name each ingester's streams on its own line / row.

The heartbeat rows are written with chosen times, as a running ingester writes them (the same model, the same
fields), so that both sides of the bound are tested without waiting minutes.
"""

from __future__ import annotations

import os
import re
import socket
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from tom_pittgoogle.models import IngesterHeartbeat, RejectedMessage

from .test_ingester_status import ingester_rows, status

pytestmark = pytest.mark.django_db

#: Seconds a test's row is kept from its bound, far more than the time between writing it and reading the status.
MARGIN = 10


@pytest.fixture(autouse=True)
def _default_late_limit(settings, monkeypatch):
    """The setting as a TOM that never set it has it (tests/settings_night.py sets 3 s for other tests)."""
    if hasattr(settings, "PITTGOOGLE_HEARTBEAT_LATE_SECONDS"):
        del settings.PITTGOOGLE_HEARTBEAT_LATE_SECONDS
    monkeypatch.delenv("PITTGOOGLE_HEARTBEAT_LATE_SECONDS", raising=False)


def running_since(seconds_ago: float, progress_interval: float, streams: list[str], pid: int) -> IngesterHeartbeat:
    """The row of an ingester that has not stopped and whose last heartbeat was ``seconds_ago``."""
    now = timezone.now()
    return IngesterHeartbeat.objects.create(
        host=socket.gethostname(), pid=pid, kind="pittgoogle_stream", streams=streams,
        progress_interval=progress_interval, started_at=now - timedelta(hours=1),
        last_heartbeat=now - timedelta(seconds=seconds_ago),
    )


def state_line(out: str, pid: int) -> str:
    lines = [line for line in out.splitlines() if re.match(rf"^[A-Z]+: pittgoogle_stream pid {pid} on ", line)]
    assert len(lines) == 1, out
    return lines[0]


# interval -> the default bound: three intervals, or 120 s when that is longer.
BOUNDS = {10.0: 120, 30.0: 120, 60.0: 180, 100.0: 300}


@pytest.mark.parametrize("interval", list(BOUNDS))
def test_with_no_setting_an_ingester_is_late_after_three_intervals_and_never_before_120_s(interval):
    bound = BOUNDS[interval]
    on_time = running_since(bound - MARGIN, interval, ["ztf-on-time"], pid=os.getpid())
    code, out = status()
    assert code == 0, (f"an ingester whose last heartbeat is {bound - MARGIN} s old with a {interval:g} s interval "
                       f"is not late by the default (3 intervals, at least 120 s = {bound} s):\n{out}")
    assert state_line(out, on_time.pid).startswith("RUNNING:")
    on_time.delete()

    late = running_since(bound + MARGIN, interval, ["ztf-late"], pid=os.getpid())
    code, out = status()
    assert code == 1, (f"an ingester whose last heartbeat is {bound + MARGIN} s old with a {interval:g} s interval "
                       f"is late by the default (3 intervals, at least 120 s = {bound} s):\n{out}")
    assert state_line(out, late.pid).startswith("LATE:")
    assert f"(late after {bound:g} s)" in out, out


def test_the_status_line_and_page_row_of_an_ingester_name_its_streams(client, django_user_model):
    host = socket.gethostname()
    running = running_since(1, 30.0, ["ztf-lite", "lsst-alerts"], pid=os.getpid())
    stopped = running_since(500, 30.0, ["ztf-loop"], pid=os.getpid() + 1)
    stopped.stopped_at = timezone.now()
    stopped.save()
    # A rejected message of another subscription naming the same streams: a page check must look in the right table.
    for stream in ["ztf-lite", "lsst-alerts", "ztf-loop"]:
        RejectedMessage.objects.create(subscription=f"projects/p/subscriptions/{stream}", message_id="1", data=b"x",
                                       reason="test", attributes={})

    code, out = status()
    assert code == 0, out
    lines = out.splitlines()
    assert f"RUNNING: pittgoogle_stream pid {running.pid} on {host}, streams ztf-lite, lsst-alerts" in lines, (
        f"pittgoogle_status names the running ingester's streams:\n{out}")
    assert f"STOPPED: pittgoogle_stream pid {stopped.pid} on {host}, streams ztf-loop" in lines, (
        f"pittgoogle_status names the stopped ingester's stream:\n{out}")

    client.force_login(django_user_model.objects.create_user("operator", password="not-used"))
    page = client.get(reverse("tom_pittgoogle:status")).content.decode()
    rows = ingester_rows(page)
    assert len(rows) == 2, page
    by_pid = {pid: row for row in rows for pid in (running.pid, stopped.pid) if f", {pid} " in row}
    assert "ztf-lite, lsst-alerts" in by_pid[running.pid], f"the running ingester's row names its streams: {rows}"
    assert "ztf-loop" in by_pid[stopped.pid], f"the stopped ingester's row names its stream: {rows}"
    assert "ztf-loop" not in by_pid[running.pid] and "ztf-lite" not in by_pid[stopped.pid]
