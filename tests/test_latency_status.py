"""Each stream's latency at a glance: the percentiles (PostgreSQL's percentile_cont, and the portable fallback the
demo's SQLite takes) in ``pittgoogle_status``, on the status page and in the ingester's heartbeat; a stream whose
TOM leg grows is said to fall behind."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import numpy as np
import pytest
from django.core.management import call_command
from django.urls import reverse

from tom_pittgoogle.core import latency
from tom_pittgoogle.core.heartbeat import Heartbeat
from tom_pittgoogle.models import Alert, IngesterHeartbeat

pytestmark = pytest.mark.django_db

STREAM = "projects/my-tom/subscriptions/lsst-alerts"
#: Known legs of 40 alerts committed over the last 50 minutes, none growing.
TOM_LEGS = [1.0 + (index * 7 % 40) * 0.5 for index in range(40)]
SURVEY_LEGS = [30.0 + index for index in range(40)]
BROKER_LEGS = [2.0 + (index % 5) for index in range(40)]


def add_alerts(stream: str, tom_legs: list[float], minutes_ago: float, spread: float, offset: int = 0) -> None:
    now = datetime.now(UTC)
    Alert.objects.bulk_create(
        Alert(survey="lsst", source_id=str(offset + index), object_id="o", subscription=stream, alert={},
              published_at=now - timedelta(minutes=minutes_ago), exposure_to_survey=SURVEY_LEGS[index % 40],
              survey_to_broker=BROKER_LEGS[index % 40], broker_to_tom=leg,
              committed_at=now - timedelta(minutes=minutes_ago - spread * index / max(len(tom_legs), 1)))
        for index, leg in enumerate(tom_legs)
    )


def expected(values: list[float]) -> list[float]:
    return [float(np.percentile(values, 100 * q)) for q in latency.PERCENTILES]  # linear: percentile_cont


def status() -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command("pittgoogle_status", stdout=out, stderr=err)
    except SystemExit as exit_:
        return int(exit_.code), out.getvalue(), err.getvalue()
    return 0, out.getvalue(), err.getvalue()


def test_percentiles_in_sql_and_in_the_portable_fallback_match_the_known_legs():
    add_alerts(STREAM, TOM_LEGS, minutes_ago=50, spread=45)
    Alert.objects.create(survey="lsst", source_id="bq", object_id="o", alert={})  # a query's row: not counted
    now = datetime.now(UTC)
    since = now - timedelta(hours=1)
    (by_sql,) = latency.latency_by_stream(since, now)
    assert by_sql.subscription == STREAM and by_sql.alerts == 40
    assert by_sql.per_minute == pytest.approx(40 / 60, abs=0.01)
    for leg, values in (("broker_to_tom", TOM_LEGS), ("exposure_to_survey", SURVEY_LEGS),
                        ("survey_to_broker", BROKER_LEGS)):
        assert list(by_sql.legs[leg]) == pytest.approx(expected(values))
    portable = latency._percentiles_portable(since, now, None)
    assert portable[0][0] == STREAM and portable[0][1] == 40
    assert [list(values) for values in portable[0][2:]] == [pytest.approx(list(by_sql.legs[leg]))
                                                            for leg in latency.LEGS]


def test_the_command_and_the_page_show_each_streams_percentiles(admin_client):
    add_alerts(STREAM, TOM_LEGS, minutes_ago=50, spread=45)
    p50, p95, p99 = expected(TOM_LEGS)
    code, out, _ = status()
    assert code == 0 and "FALLING BEHIND" not in out
    line = next(line for line in out.splitlines() if line.strip().startswith(STREAM))
    assert "40 alerts" in line and f"Pitt-Google → TOM {p50:.1f}/{p95:.1f}/{p99:.1f}" in line
    assert "Latency over the last hour" in out and "Latency over the night" in out
    page = admin_client.get(reverse("tom_pittgoogle:status")).content.decode()
    assert f"{p50:.1f} / {p95:.1f} / {p99:.1f}" in page
    for plot in ("pittgoogle-plot-alerts", "pittgoogle-plot-tom-p95", "pittgoogle-plot-backlog"):
        assert f'id="{plot}"' in page
    assert "Falling behind" not in page


def test_a_stream_whose_tom_leg_grows_is_said_to_fall_behind(admin_client):
    add_alerts(STREAM, [5.0] * 20, minutes_ago=9, spread=4)  # the five minutes before: 5 s
    add_alerts(STREAM, [90.0 + i for i in range(20)], minutes_ago=4, spread=3, offset=100)  # now: over 90 s
    code, out, err = status()
    assert code == 1 and "1 stream(s) falling behind" in err
    assert f"FALLING BEHIND: the ingester of {STREAM} is falling behind" in out and "up from 5 s" in out
    page = admin_client.get(reverse("tom_pittgoogle:status")).content.decode()
    assert "Falling behind:" in page and f"the ingester of {STREAM} is falling behind" in page


def test_the_heartbeat_carries_its_streams_latency_over_the_last_hour_and_the_night(settings):
    settings.PITTGOOGLE_NIGHT_STARTS_AT = night_started(hours_ago=3)
    add_alerts(STREAM, TOM_LEGS, minutes_ago=50, spread=45)
    add_alerts(STREAM, [100.0] * 10, minutes_ago=150, spread=5, offset=200)  # in the night, not the last hour
    add_alerts("projects/my-tom/subscriptions/another", [3.0], minutes_ago=10, spread=1, offset=500)
    heartbeat = Heartbeat(["lsst-alerts"], progress_interval=60)
    heartbeat.start()
    heartbeat.progress(SimpleNamespace(rate=1.0, received=40, stored=40, duplicates=0, filtered_out=0, rejected=0))
    latency_ = IngesterHeartbeat.objects.get().latency
    (hour,) = latency_["last_hour"]["streams"]
    assert hour["subscription"] == STREAM and hour["alerts"] == 40
    assert hour["legs"]["broker_to_tom"] == pytest.approx(expected(TOM_LEGS))
    (night,) = latency_["night"]["streams"]
    assert night["subscription"] == STREAM and night["alerts"] == 50
    assert night["legs"]["broker_to_tom"] == pytest.approx(expected(TOM_LEGS + [100.0] * 10))
    assert latency_["night"]["since"] == latency.night().since.isoformat()


def night_started(hours_ago: float, zone: str = "UTC") -> str:
    """``PITTGOOGLE_NIGHT_STARTS_AT`` for a night that began about ``hours_ago`` (to the minute before) in ``zone``."""
    from zoneinfo import ZoneInfo

    return (datetime.now(UTC) - timedelta(hours=hours_ago)).astimezone(ZoneInfo(zone)).strftime("%H:%M")
