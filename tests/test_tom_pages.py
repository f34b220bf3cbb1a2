"""Each route end to end in a real TOM: the Alerts pages (create a query, run it, create Targets) and
TOM Toolkit's runbrokerquery command, on the emulators and PostgreSQL."""

from __future__ import annotations

import re

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse
from tom_alerts.models import BrokerQuery
from tom_targets.models import Target

from tom_pittgoogle.adapters.broker_database_python import BrokerDatabasePython
from tom_pittgoogle.adapters.broker_stream_python import BrokerStreamPython
from tom_pittgoogle.adapters.broker_stream_rest import BrokerStreamRest
from tom_pittgoogle.routes.stream_rest import ConsumerStreamRest

pytestmark = pytest.mark.django_db


def create_query(client, broker_name: str, **fields) -> BrokerQuery:
    page = client.get(reverse("alerts:create") + f"?broker={broker_name}")
    assert page.status_code == 200
    for name in fields:
        assert f'name="{name}"' in page.content.decode()
    response = client.post(reverse("alerts:create"), {"query_name": f"{broker_name} query", "broker": broker_name,
                                                      **fields})
    assert response.status_code == 302, response.content.decode()[:2000]
    return BrokerQuery.objects.get(name=f"{broker_name} query")


def run_query(client, query: BrokerQuery):
    response = client.get(reverse("alerts:run", kwargs={"pk": query.pk}))
    assert response.status_code == 200
    return response


def create_targets(client, query: BrokerQuery, alert_ids) -> None:
    response = client.post(reverse("alerts:create-target"),
                           {"query_id": query.pk, "broker": query.broker, "alerts": [str(i) for i in alert_ids]})
    assert response.status_code == 302
    assert response.url == reverse("targets:list")


STREAM_FILTER = {"classtar_gt_lt": "lt", "classtar_threshold": ""}


def test_stream_rest_query_from_the_alerts_pages_to_targets(astronomer, topic_name, publish, packets):
    """Every sample packet (the real ZTF ones included) becomes a Target through the TOM's own views."""
    ConsumerStreamRest(topic_name)  # the subscription exists before the alerts are published
    publish(topic_name, packets)
    query = create_query(astronomer, BrokerStreamRest.name, subscription_name=topic_name,
                         max_results=len(packets), timeout=2, **STREAM_FILTER)
    alerts = run_query(astronomer, query).context["alerts"]
    assert len(alerts) == len(packets)
    create_targets(astronomer, query, [alert.id for alert in alerts])
    assert set(Target.objects.values_list("name", flat=True)) == {alert.name for alert in alerts}
    target = Target.objects.get(name=alerts[0].name)
    assert target.ra == pytest.approx(alerts[0].ra) and target.dec == pytest.approx(alerts[0].dec)


def test_stream_python_query_from_the_alerts_pages_to_targets(astronomer, topic_name, publish, packets):
    ConsumerStreamRest(topic_name)
    publish(topic_name, packets)
    query = create_query(astronomer, BrokerStreamPython.name, subscription_name=topic_name, max_results=4,
                         timeout=5, max_backlog=10, save_metadata="yes", **STREAM_FILTER)
    page = run_query(astronomer, query)
    alerts = page.context["alerts"]
    assert len(alerts) == 4
    assert alerts[0].name in page.content.decode()
    create_targets(astronomer, query, [alerts[0].id])
    assert Target.objects.filter(name=alerts[0].name).exists()


def test_database_query_from_the_alerts_pages_to_targets(astronomer, ztf_table):
    record = ztf_table[0]
    query = create_query(astronomer, BrokerDatabasePython.name, objectId=record["objectId"], candid="",
                         max_results=5)
    alerts = run_query(astronomer, query).context["alerts"]
    assert {alert.name for alert in alerts} == {record["objectId"]}
    create_targets(astronomer, query, [alerts[0].id])
    assert Target.objects.get(name=record["objectId"]).ra == pytest.approx(record["candidate"]["ra"])


def test_a_missing_topic_is_a_message_on_the_results_page_not_a_server_error(astronomer, pubsub_emulator):
    query = create_query(astronomer, BrokerStreamRest.name, subscription_name="no-such-stream", max_results=3,
                         timeout=1, **STREAM_FILTER)
    page = run_query(astronomer, query)
    assert page.context["alerts"] == []
    assert "Pitt-Google publishes no topic" in page.context["broker_feedback"]
    assert "Pitt-Google publishes no topic" in page.content.decode()


def test_a_missing_table_is_a_message_on_the_results_page(astronomer, ztf_table, settings):
    query = create_query(astronomer, BrokerDatabasePython.name, objectId="ZTF18abfkwnk", candid="", max_results=5)
    settings.PITTGOOGLE_BIGQUERY_TABLE = "ardent-cycling-243415.ztf.retired_table"
    page = run_query(astronomer, query)
    assert "retired_table does not exist" in page.context["broker_feedback"]


def test_a_bad_form_value_is_shown_on_the_form(astronomer):
    response = astronomer.post(reverse("alerts:create"), {
        "query_name": "bad", "broker": BrokerStreamRest.name, "subscription_name": "x y", "max_results": 3,
        "classtar_gt_lt": "lt", "classtar_threshold": "2"})
    assert response.status_code == 200
    errors = response.context["form"].errors
    assert "subscription_name" in errors and "classtar_threshold" in errors
    assert not BrokerQuery.objects.filter(name="bad").exists()


def test_runbrokerquery_runs_a_saved_query_of_each_route(topic_name, publish, packets, ztf_table, capsys):
    ConsumerStreamRest(topic_name)
    publish(topic_name, packets)
    BrokerQuery.objects.create(name="rest", broker=BrokerStreamRest.name, parameters={
        "subscription_name": topic_name, "max_results": 2, "timeout": 2, "classtar_threshold": None,
        "classtar_gt_lt": "lt"})
    BrokerQuery.objects.create(name="python", broker=BrokerStreamPython.name, parameters={
        "subscription_name": topic_name, "max_results": 2, "timeout": 5, "max_backlog": 5,
        "classtar_threshold": None, "classtar_gt_lt": "lt", "save_metadata": "yes"})
    BrokerQuery.objects.create(name="bigquery", broker=BrokerDatabasePython.name, parameters={
        "objectId": ztf_table[-1]["objectId"], "candid": None, "max_results": 1})
    for name in ("rest", "python", "bigquery"):
        call_command("runbrokerquery", name)
    output = capsys.readouterr().out
    created = re.findall(r"^Created target: (\S+)$", output, re.MULTILINE)
    # runbrokerquery says WARNING when an alert's object already has a Target (TOM Toolkit's unique-name check):
    # only an object created earlier in this run may be warned about, and only for that reason.
    warned = re.findall(r"^WARNING for (\S+): (.*)$", output, re.MULTILINE)
    assert len(created) + len(warned) == 5, output
    assert len(created) == len(set(created)) == Target.objects.count()
    assert set(created) == set(Target.objects.values_list("name", flat=True))
    assert all(name in created and "already exists" in reason for name, reason in warned), warned
    assert ztf_table[-1]["objectId"] in created + [name for name, _ in warned]


def test_runbrokerquery_reports_a_failure_as_a_command_error(pubsub_emulator):
    BrokerQuery.objects.create(name="broken", broker=BrokerStreamRest.name, parameters={
        "subscription_name": "no-such-stream", "max_results": 2, "timeout": 1, "classtar_threshold": None,
        "classtar_gt_lt": "lt"})
    with pytest.raises(CommandError, match="publishes no topic"):
        call_command("runbrokerquery", "broken")
