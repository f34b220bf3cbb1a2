"""On PostgreSQL the store copies a batch into a temporary table and inserts it from there (issue 13): it stores
exactly what the portable path stores, says exactly which rows are new, stays idempotent and still records
conflicts and refused rows."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tom_pittgoogle.core.alerts import decode_alert, lighten_alert
from tom_pittgoogle.core.store import DjangoAlertStore, RawMessage
from tom_pittgoogle.demo.sample_lsst import make_lsst_alert, to_json_packet
from tom_pittgoogle.models import Alert, RejectedMessage

from .conftest import SAMPLE_PACKETS

pytestmark = pytest.mark.django_db

PACKETS = [packet for _, packet in SAMPLE_PACKETS] + [
    to_json_packet(make_lsst_alert(10, 0, index=index)) for index in range(3)
]
COLUMNS = [f.name for f in Alert._meta.concrete_fields if f.name not in ("id", "stored_at")]


def alerts_and_messages() -> tuple[list[dict], list[RawMessage]]:
    alerts = [lighten_alert(decode_alert(packet)) for packet in PACKETS]
    messages = [RawMessage(f"m{i}", packet, {"n": str(i), "origin": "test"}) for i, packet in enumerate(PACKETS)]
    return alerts, messages


def stored_rows() -> dict[tuple[str, str], dict]:
    return {(row["survey"], row["source_id"]): row for row in Alert.objects.values(*COLUMNS)}


def copy_used(queries) -> bool:
    return any("ON CONFLICT" in q["sql"] and "tom_pittgoogle_alert_in_" in q["sql"] for q in queries)


def test_the_copy_path_stores_exactly_what_the_portable_path_stores():
    assert connection.vendor == "postgresql"
    alerts, messages = alerts_and_messages()
    portable = DjangoAlertStore()
    portable.use_copy = False
    assert portable.save_messages(alerts, messages, subscription="s").new == len(alerts)
    by_portable = stored_rows()
    Alert.objects.all().delete()
    with CaptureQueriesContext(connection) as queries:
        saved = DjangoAlertStore().save_messages(alerts, messages, subscription="s")
    assert copy_used(queries.captured_queries)
    assert saved.new == len(alerts) and not saved.rejected
    assert stored_rows() == by_portable
    assert len(by_portable) == len(alerts)


def test_copy_reports_new_rows_exactly_and_is_idempotent_with_copies_in_the_batch():
    alerts, messages = alerts_and_messages()
    store = DjangoAlertStore()
    first = store.save_messages(alerts[:3], messages[:3], subscription="s")
    assert first.new == 3
    # The first three again, each twice, and the rest once: only the rest are new, nothing is rejected.
    batch = alerts[:3] + alerts + alerts[:3]
    batch_messages = messages[:3] + messages + messages[:3]
    with CaptureQueriesContext(connection) as queries:
        again = store.save_messages(batch, batch_messages, subscription="s")
    assert copy_used(queries.captured_queries)
    assert again.new == len(alerts) - 3 and not again.rejected
    assert Alert.objects.count() == len(alerts) and RejectedMessage.objects.count() == 0


def test_copy_records_a_conflicting_redelivery_and_keeps_the_stored_alert():
    alerts, messages = alerts_and_messages()
    store = DjangoAlertStore()
    store.save_messages(alerts, messages, subscription="s")
    changed = dict(alerts[0], mag=(alerts[0]["mag"] or 0) + 1.0)
    saved = store.save_messages([changed, alerts[1]], [RawMessage("c", PACKETS[0], {}), messages[1]])
    assert saved.new == 0 and list(saved.rejected) == [0]
    assert saved.rejected[0].startswith(f"conflicts with the stored alert {alerts[0]['survey']}")
    assert RejectedMessage.objects.get().message_id == "c"
    row = Alert.objects.get(survey=alerts[0]["survey"], source_id=alerts[0]["source_id"])
    assert row.alert["mag"] == alerts[0]["mag"]


def test_a_row_the_database_refuses_in_a_copied_batch_is_rejected_and_the_others_stored():
    alerts, messages = alerts_and_messages()
    bad = dict(alerts[0], source_id="9" * 70)  # too long for its column: COPY refuses the batch
    saved = DjangoAlertStore().save_messages([bad, *alerts[1:]], [messages[0], *messages[1:]], subscription="s")
    assert list(saved.rejected) == [0] and "value too long" in saved.rejected[0]
    assert saved.new == len(alerts) - 1
    assert Alert.objects.count() == len(alerts) - 1


@pytest.mark.parametrize("path", ["COPY", "portable"])
def test_a_new_alert_twice_in_one_batch_with_different_content_stores_the_first_and_records_the_second(path):
    alerts, messages = alerts_and_messages()
    store = DjangoAlertStore()
    store.use_copy = path == "COPY"
    first, other = alerts[0], alerts[1]
    second = dict(first, mag=(first["mag"] or 0) + 1.0)  # same id, never stored before, different content
    batch_messages = [messages[0], messages[1], RawMessage("second", PACKETS[0], {"copy": "2"})]
    with CaptureQueriesContext(connection) as queries:
        saved = store.save_messages([first, other, second], batch_messages, subscription="s")
    assert copy_used(queries.captured_queries) == (path == "COPY")
    assert list(saved.rejected) == [2], (
        f"{path}: the second copy of a new alert in one batch, with different content, was not recorded as a "
        f"conflict (rejected: {saved.rejected})"
    )
    assert saved.rejected[2].startswith(f"conflicts with the stored alert {first['survey']} {first['source_id']}")
    assert "different mag" in saved.rejected[2]
    assert saved.new == 2, f"{path}: the new alert's first copy and the other alert are new"
    recorded = RejectedMessage.objects.get()
    assert (recorded.message_id, bytes(recorded.data), recorded.attributes) == ("second", PACKETS[0], {"copy": "2"})
    row = Alert.objects.get(survey=first["survey"], source_id=first["source_id"])
    assert row.alert["mag"] == first["mag"] and row.message_id == "m0", "the first copy in the batch is kept"
    assert Alert.objects.count() == 2
