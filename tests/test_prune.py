"""`manage.py pittgoogle_prune`: stored alerts and rejected messages past their retention go, in batches; the
alerts of Targets' objects stay unless asked; on PostgreSQL."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from tom_targets.models import Target, TargetName

from tom_pittgoogle.core.store import DjangoAlertStore, RawMessage
from tom_pittgoogle.models import Alert, IngesterHeartbeat, RejectedMessage

pytestmark = pytest.mark.django_db


def alert(survey: str, object_id: str, source_id: int) -> dict:
    return {"survey": survey, "object_id": object_id, "source_id": str(source_id), "jd": 2461000.5 + source_id / 1e3,
            "ra": 10.0, "dec": 20.0, "band": "g", "mag": 19.0, "mag_err": 0.1, "photometry": [], "scores": {}}


def store(alerts: list[dict], days_ago: float) -> list[str]:
    DjangoAlertStore().save_alerts(alerts)
    ids = [a["source_id"] for a in alerts]
    Alert.objects.filter(source_id__in=ids).update(stored_at=timezone.now() - timedelta(days=days_ago))
    return ids


def reject(count: int, days_ago: float, prefix: str) -> None:
    DjangoAlertStore().record_rejected(
        [(RawMessage(f"{prefix}-{i}", b"\x00bad", {}), "not an alert") for i in range(count)]
    )
    RejectedMessage.objects.filter(message_id__startswith=prefix).update(
        received_at=timezone.now() - timedelta(days=days_ago)
    )


def prune(*args: str) -> str:
    out = io.StringIO()
    call_command("pittgoogle_prune", *args, stdout=out)
    return out.getvalue()


@pytest.fixture
def night_and_targets() -> dict[str, list[str]]:
    """Old and recent alerts; some old ones are of a Target's object (by name, by alias, an LSST name)."""
    Target.objects.create(name="ZTF25target", type="SIDEREAL", ra=10, dec=20)
    aliased = Target.objects.create(name="my favourite", type="SIDEREAL", ra=10, dec=20)
    TargetName.objects.create(target=aliased, name="ZTF25aliased")
    Target.objects.create(name="LSST-313131", type="SIDEREAL", ra=10, dec=20)
    return {
        "old": store([alert("ztf", f"ZTF25old{i:04d}", i) for i in range(57)], days_ago=40),
        "old_of_targets": store([alert("ztf", "ZTF25target", 1001), alert("ztf", "ZTF25aliased", 1002),
                                 alert("lsst", "313131", 1003)], days_ago=40),
        "recent": store([alert("ztf", f"ZTF25new{i:04d}", 2000 + i) for i in range(9)], days_ago=2),
        "recent_of_targets": store([alert("ztf", "ZTF25target", 3001)], days_ago=1),
    }


def remaining() -> set[str]:
    return set(Alert.objects.values_list("source_id", flat=True))


def test_prune_removes_exactly_the_old_alerts_in_batches_and_keeps_those_of_targets(night_and_targets):
    with CaptureQueriesContext(connection) as queries:
        out = prune("--older-than", "30", "--batch-size", "10")
    rows = night_and_targets
    assert remaining() == set(rows["old_of_targets"] + rows["recent"] + rows["recent_of_targets"])
    assert "deleted 57 stored alerts (3 older ones kept for Targets)" in out
    deletes = [q["sql"] for q in queries.captured_queries if q["sql"].startswith('DELETE FROM "tom_pittgoogle_alert"')]
    assert len(deletes) == 6  # 57 rows, 10 per statement


def test_include_targets_removes_the_old_alerts_of_targets_too(night_and_targets):
    out = prune("--older-than", "30", "--include-targets")
    assert remaining() == set(night_and_targets["recent"] + night_and_targets["recent_of_targets"])
    assert "deleted 60 stored alerts" in out
    assert Target.objects.count() == 3  # Targets and their own data are not touched


def test_a_scheduled_run_needs_no_arguments_the_settings_give_the_retentions(night_and_targets, settings):
    settings.PITTGOOGLE_ALERT_RETENTION_DAYS = 1.5
    settings.PITTGOOGLE_REJECTED_RETENTION_DAYS = 10
    reject(4, days_ago=20, prefix="old")
    reject(2, days_ago=3, prefix="new")
    out = prune()
    rows = night_and_targets
    assert remaining() == set(rows["old_of_targets"] + rows["recent_of_targets"])
    assert set(RejectedMessage.objects.values_list("message_id", flat=True)) == {"new-0", "new-1"}
    assert "deleted 66 stored alerts" in out and "4 rejected messages" in out


def test_rejected_older_than_and_old_heartbeats(settings):
    reject(3, days_ago=8, prefix="week")
    reject(1, days_ago=0.5, prefix="today")
    now = timezone.now()
    for stopped in (now - timedelta(days=9), now - timedelta(hours=1), None):
        IngesterHeartbeat.objects.create(host="h", pid=1, streams=["s"], progress_interval=10,
                                         started_at=now - timedelta(days=10), last_heartbeat=now, stopped_at=stopped)
    out = prune("--rejected-older-than", "7")
    assert list(RejectedMessage.objects.values_list("message_id", flat=True)) == ["today-0"]
    assert IngesterHeartbeat.objects.count() == 2  # the running one and the one stopped an hour ago
    assert "3 rejected messages, 1 heartbeat of stopped ingesters" in out


def test_bad_arguments_are_refused():
    from django.core.management import CommandError

    with pytest.raises(CommandError):
        prune("--older-than", "-1")
    with pytest.raises(CommandError):
        prune("--batch-size", "0")
