"""Migration 0005 fills the stored route's columns of the alerts stored before it (on PostgreSQL)."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from tom_pittgoogle.models import Alert

pytestmark = pytest.mark.django_db(transaction=True)

MIGRATION = ("tom_pittgoogle", "0005_stored_route_and_heartbeat")


def test_alerts_stored_before_the_migration_get_their_best_score_and_classes():
    executor = MigrationExecutor(connection)
    (before,) = [parent.key for parent in executor.loader.graph.node_map[MIGRATION].parents
                 if parent.key[0] == "tom_pittgoogle"]
    executor.migrate([before])
    old_alert = executor.loader.project_state(before).apps.get_model("tom_pittgoogle", "Alert")
    alerts = [
        {"survey": "ztf", "object_id": "ZTF25a", "source_id": "1", "scores": {"drb": 0.75}},
        {"survey": "lsst", "object_id": "9", "source_id": "2", "scores": {"reliability": 0.2},
         "classifiers": {"supernnova": {"class": "SN Ia", "probability": 0.9}}},
        {"survey": "ztf", "object_id": "ZTF25b", "source_id": "3", "scores": {}},
    ]
    for alert in alerts:
        old_alert.objects.create(survey=alert["survey"], object_id=alert["object_id"], source_id=alert["source_id"],
                                 alert=alert)
    executor = MigrationExecutor(connection)
    executor.migrate([MIGRATION])
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())
    columns = {row.source_id: (row.best_score, row.classes) for row in Alert.objects.all()}
    assert columns == {"1": (0.75, ""), "2": (0.9, "|sn ia|"), "3": (None, "")}
