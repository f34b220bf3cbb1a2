"""The status's settings and its page, on PostgreSQL: the night (``PITTGOOGLE_NIGHT_STARTS_AT`` in
``PITTGOOGLE_NIGHT_TIME_ZONE``) moves the window of the command, the page and the heartbeat alike; the falling-behind
threshold (``PITTGOOGLE_FALLING_BEHIND_SECONDS``) decides and is named in the message; the ingesters' backlog is
sampled, bounded and plotted over the night; the page is small and loads plotly.js once, from this TOM."""

from __future__ import annotations

import io
import re
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
from django.core.management import call_command
from django.urls import reverse

from tom_pittgoogle.core import latency
from tom_pittgoogle.core.heartbeat import BACKLOG_HISTORY, Heartbeat, backlog_history
from tom_pittgoogle.exceptions import ConfigurationError
from tom_pittgoogle.models import BacklogSample, IngesterHeartbeat

from .test_latency_status import STREAM, add_alerts, night_started, status

pytestmark = pytest.mark.django_db


def stats(backlog_of: SimpleNamespace, backlog: int) -> SimpleNamespace:
    backlog_of.backlog = backlog
    return SimpleNamespace(rate=1.0, received=10, stored=10, duplicates=0, filtered_out=0, rejected=0)


# --- the night ----------------------------------------------------------------------------------------------------

def test_the_night_begins_at_the_latest_start_time_in_its_time_zone(settings):
    settings.PITTGOOGLE_NIGHT_STARTS_AT = "18:00"
    settings.PITTGOOGLE_NIGHT_TIME_ZONE = "America/Santiago"  # UTC-3 in December
    evening = latency.night(datetime(2026, 12, 5, 2, 0, tzinfo=UTC))  # 23:00 in Santiago
    assert evening.since == datetime(2026, 12, 4, 21, 0, tzinfo=UTC)
    assert evening.label == "the night since 2026-12-04 18:00 America/Santiago"
    afternoon = latency.night(datetime(2026, 12, 5, 20, 59, tzinfo=UTC))  # 17:59 next day: still that night
    assert afternoon.since == evening.since
    assert latency.night(datetime(2026, 12, 5, 21, 0, tzinfo=UTC)).since == datetime(2026, 12, 5, 21, 0, tzinfo=UTC)
    # Unset: noon in the TOM's TIME_ZONE (the test TOM's is UTC).
    settings.PITTGOOGLE_NIGHT_STARTS_AT = "12:00"
    settings.PITTGOOGLE_NIGHT_TIME_ZONE = None
    assert latency.night(datetime(2026, 12, 5, 0, 50, tzinfo=UTC)).since == datetime(2026, 12, 4, 12, tzinfo=UTC)


@pytest.mark.parametrize(("name", "value"), [("PITTGOOGLE_NIGHT_STARTS_AT", "dusk"),
                                             ("PITTGOOGLE_NIGHT_STARTS_AT", "25:00"),
                                             ("PITTGOOGLE_NIGHT_STARTS_AT", "12:00+02:00"),
                                             ("PITTGOOGLE_NIGHT_TIME_ZONE", "Mars/Olympus_Mons"),
                                             ("PITTGOOGLE_FALLING_BEHIND_SECONDS", "sixty")])
def test_a_wrong_night_or_threshold_setting_is_a_system_check_error(settings, name, value):
    from django.core.management import CommandError

    setattr(settings, name, value)
    with pytest.raises(CommandError, match=re.escape(f"{name} is {value!r}")):
        call_command("check", stdout=io.StringIO(), stderr=io.StringIO())
    with pytest.raises(ConfigurationError, match=name):
        latency.night() if "NIGHT" in name else latency.falling_behind_seconds()


def test_the_night_setting_moves_the_window_of_the_command_the_page_and_the_heartbeat(settings, admin_client):
    add_alerts(STREAM, [2.0] * 40, minutes_ago=50, spread=45)
    add_alerts(STREAM, [9.0] * 10, minutes_ago=150, spread=5, offset=100)
    heartbeat = Heartbeat(["lsst-alerts"], progress_interval=60)
    heartbeat.start()
    # The time zone is applied: read as UTC, either start would put the window 3 hours off.
    settings.PITTGOOGLE_NIGHT_TIME_ZONE = "America/Santiago"
    for hours_ago, alerts in ((100 / 60, 40), (200 / 60, 50)):
        settings.PITTGOOGLE_NIGHT_STARTS_AT = night_started(hours_ago, "America/Santiago")
        label = latency.night().label
        assert re.fullmatch(r"the night since \d{4}-\d\d-\d\d \d\d:\d\d America/Santiago", label)
        _, out, _ = status()
        night_lines = out.split(f"Latency over {label}")[1].splitlines()
        assert f"{STREAM}: {alerts} alerts" in night_lines[1]
        page = admin_client.get(reverse("tom_pittgoogle:status")).content.decode()
        table = page.split(f"<h5>Over {label}</h5>")[1].split("</table>")[0]
        assert f"<td>{STREAM}</td><td>{alerts}</td>" in table
        heartbeat._night_latency = None  # recomputed at once, not within NIGHT_LATENCY_EVERY
        heartbeat.progress(SimpleNamespace(rate=1.0, received=1, stored=1, duplicates=0, filtered_out=0, rejected=0))
        (stream,) = IngesterHeartbeat.objects.get().latency["night"]["streams"]
        assert stream["alerts"] == alerts


def test_the_heartbeat_recomputes_the_night_when_a_new_night_begins(settings):
    add_alerts(STREAM, [2.0] * 5, minutes_ago=30, spread=5)
    settings.PITTGOOGLE_NIGHT_STARTS_AT = night_started(hours_ago=1)
    heartbeat = Heartbeat(["lsst-alerts"], progress_interval=60)
    heartbeat.start()
    heartbeat.progress(SimpleNamespace(rate=1.0, received=5, stored=5, duplicates=0, filtered_out=0, rejected=0))
    assert IngesterHeartbeat.objects.get().latency["night"]["streams"][0]["alerts"] == 5
    settings.PITTGOOGLE_NIGHT_STARTS_AT = night_started(hours_ago=0.25)  # a night that began after those alerts
    heartbeat.progress(SimpleNamespace(rate=1.0, received=5, stored=5, duplicates=0, filtered_out=0, rejected=0))
    night = IngesterHeartbeat.objects.get().latency["night"]
    assert night["streams"] == [] and night["since"] == latency.night().since.isoformat()


# --- falling behind -----------------------------------------------------------------------------------------------

def test_the_falling_behind_threshold_is_a_setting_named_in_the_command_and_on_the_page(settings, admin_client):
    add_alerts(STREAM, [5.0] * 20, minutes_ago=9, spread=4)  # the five minutes before: 5 s
    add_alerts(STREAM, [95.0] * 20, minutes_ago=4, spread=3, offset=100)  # the last five minutes: 95 s
    expected = (f"the ingester of {STREAM} is falling behind: TOM leg p95 95 s over the last 5 minutes "
                "(up from 5 s), above PITTGOOGLE_FALLING_BEHIND_SECONDS={} s")
    for threshold, behind in ((None, True), (120, False), (94.5, True)):
        if threshold is not None:
            settings.PITTGOOGLE_FALLING_BEHIND_SECONDS = threshold
        named = expected.format(60 if threshold is None else f"{threshold:g}")
        code, out, err = status()
        page = admin_client.get(reverse("tom_pittgoogle:status")).content.decode()
        if behind:
            assert code == 1 and "1 stream(s) falling behind" in err
            assert f"FALLING BEHIND: {named}" in out
            assert named in page and "Falling behind:" in page
        else:
            assert code == 0 and "FALLING BEHIND" not in out and "Falling behind" not in page


# --- the backlog over the night -----------------------------------------------------------------------------------

def test_the_backlog_is_sampled_when_it_changes_or_each_minute_and_plotted_over_the_night(settings, admin_client):
    settings.PITTGOOGLE_NIGHT_STARTS_AT = night_started(hours_ago=3)
    start = (datetime.now(UTC) - timedelta(hours=2)).replace(second=0, microsecond=0)
    clock = SimpleNamespace(now=start)
    ingester = SimpleNamespace(backlog=0)
    heartbeat = Heartbeat(["lsst-alerts"], progress_interval=10, clock=lambda: clock.now)
    heartbeat.start(ingester)
    for seconds, backlog in ((10, 5), (20, 5), (30, 7), (40, 3), (99, 3), (100, 3), (150, 2), (160, 2)):
        clock.now = start + timedelta(seconds=seconds)
        heartbeat.progress(stats(ingester, backlog))
    row = IngesterHeartbeat.objects.get()
    # Unchanged within a minute of the last sample (20 s, 99 s, 160 s): no sample.
    assert [(int((at - start).total_seconds()), backlog) for at, backlog in
            BacklogSample.objects.filter(heartbeat=row).values_list("at", "backlog")] == [
        (10, 5), (30, 7), (40, 3), (100, 3), (150, 2)]
    (history,) = backlog_history(latency.night().since)
    assert history.label == f"{row.host} pid {row.pid}"
    assert history.minutes == [start + timedelta(minutes=m) for m in range(3)]
    assert history.backlog == [7, 3, 2]  # each minute's most
    page = admin_client.get(reverse("tom_pittgoogle:status")).content.decode()
    plot = page.split('id="pittgoogle-plot-backlog"')[1].split("</script>")[0]
    assert f'"name":"{history.label}"' in plot and '"y":[7,3,2]' in plot
    # A night that began after these samples plots none of them.
    settings.PITTGOOGLE_NIGHT_STARTS_AT = night_started(hours_ago=1)
    assert backlog_history(latency.night().since) == []


def test_the_backlog_history_is_bounded_by_the_ingester_and_by_pittgoogle_prune():
    now = datetime.now(UTC)
    clock = SimpleNamespace(now=now - timedelta(hours=3))
    ingester = SimpleNamespace(backlog=0)
    heartbeat = Heartbeat(["lsst-alerts"], progress_interval=10, clock=lambda: clock.now)
    heartbeat.start(ingester)
    other = IngesterHeartbeat.objects.create(host="h", pid=1, streams=["s"], progress_interval=10,
                                             started_at=now - timedelta(days=5), last_heartbeat=now)
    old = now - BACKLOG_HISTORY - timedelta(hours=3)
    for row in (heartbeat.row, other):
        BacklogSample.objects.create(heartbeat=row, at=old, backlog=3)
        BacklogSample.objects.create(heartbeat=row, at=now - timedelta(hours=4), backlog=4)
    heartbeat.progress(stats(ingester, 1))  # within an hour of its start: no trimming yet
    assert BacklogSample.objects.filter(heartbeat=heartbeat.row).count() == 3
    clock.now += timedelta(hours=1)
    heartbeat.progress(stats(ingester, 2))  # an hour on: the run deletes its own samples older than two days
    assert list(BacklogSample.objects.filter(heartbeat=heartbeat.row).values_list("backlog", flat=True)) == [4, 1, 2]
    assert BacklogSample.objects.filter(heartbeat=other).count() == 2
    out = io.StringIO()
    call_command("pittgoogle_prune", stdout=out)
    assert "1 backlog sample older than 2 days" in out.getvalue()
    assert list(BacklogSample.objects.filter(heartbeat=other).values_list("backlog", flat=True)) == [4]
    # A stopped ingester's samples go with its heartbeat row, counted as one heartbeat.
    IngesterHeartbeat.objects.filter(pk=other.pk).update(stopped_at=now - timedelta(days=40))
    out = io.StringIO()
    call_command("pittgoogle_prune", stdout=out)
    assert "1 heartbeat of stopped ingesters, 0 backlog samples" in out.getvalue()
    assert not BacklogSample.objects.filter(heartbeat_id=other.pk).exists()


# --- the page and plotly.js ---------------------------------------------------------------------------------------

def test_the_page_is_small_and_loads_plotly_js_once_from_a_cacheable_url(admin_client, client):
    from plotly.offline import get_plotlyjs_version

    add_alerts(STREAM, [2.0] * 40, minutes_ago=50, spread=45)
    page = admin_client.get(reverse("tom_pittgoogle:status")).content.decode()
    version = get_plotlyjs_version()
    url = reverse("tom_pittgoogle:plotly-js", args=[version])
    assert page.count("<script src=") - page.count('<script src="/static/') == 1 and f'src="{url}"' in page
    assert "plotly.js v" not in page and len(page) < 100_000  # plotly.js itself is 4.5 MB
    # The script answers anyone (no login), as JavaScript a browser keeps for a year.
    response = client.get(url)
    body = b"".join(response.streaming_content)
    assert response.status_code == 200 and response["Content-Type"].startswith("text/javascript")
    assert f"plotly.js v{version}".encode() in body[:200] and len(body) > 1_000_000
    assert "max-age=31536000" in response["Cache-Control"] and "immutable" in response["Cache-Control"]
    assert client.get(url, HTTP_IF_NONE_MATCH=response["ETag"]).status_code == 304
    # A page from before an upgrade asks for another version: it is sent to the installed one.
    old = client.get(reverse("tom_pittgoogle:plotly-js", args=["1.0.0"]))
    assert old.status_code == 302 and old["Location"] == url
    assert client.post(url).status_code == 405
