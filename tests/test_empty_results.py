"""An empty result says that nothing matched and what was searched, on the Alerts pages, the Data Services pages
and (for runbrokerquery) in the log; for a pull, why a subscription may be empty."""

from __future__ import annotations

import html
import logging

import pytest
from django.core.management import call_command
from django.urls import reverse
from tom_alerts.models import BrokerQuery

from tom_pittgoogle.adapters.broker_database_python import BrokerDatabasePython
from tom_pittgoogle.adapters.broker_stream_python import BrokerStreamPython
from tom_pittgoogle.adapters.broker_stream_rest import BrokerStreamRest

from . import test_dataservice

pytestmark = pytest.mark.django_db

WHY_A_PULL_MAY_BE_EMPTY = "receives only the alerts published after it was created"


EMPTY_SEARCH = ("Nothing matched: every alerts table of BigQuery dataset ardent-cycling-243415.ztf (ZTF) has no "
                "alerts of object ZTF00aaaaaaa.")


def stream_query(topic_name: str, **fields) -> dict:
    return {"subscription_name": topic_name, "survey": "ztf", "classtar_threshold": None, "classtar_gt_lt": "lt",
            "max_results": 5, "timeout": 1, "max_backlog": 10, **fields}


def results_page(client, django_user_model, broker, parameters: dict) -> str:
    client.force_login(django_user_model.objects.create_user("astronomer", password="not-used"))
    query = BrokerQuery.objects.create(name="empty", broker=broker.name, parameters=parameters)
    page = client.get(reverse("alerts:run", kwargs={"pk": query.pk}))
    assert page.status_code == 200
    assert page.context["alerts"] == []
    return html.unescape(page.content.decode())


@pytest.mark.parametrize("broker", [BrokerStreamRest, BrokerStreamPython], ids=["StreamRest", "StreamPython"])
def test_an_empty_pull_names_the_subscription_the_wait_and_why_it_may_be_empty(broker, topic_name, client,
                                                                                django_user_model):
    page = results_page(client, django_user_model, broker,
                        stream_query(topic_name, classtar_threshold=0.5, classtar_gt_lt="gt"))
    assert (f"Nothing matched: no alert with classtar greater than or equal 0.5 came from subscription {topic_name} "
            "(ZTF); the query stops after 1 s without a new message.") in page
    assert WHY_A_PULL_MAY_BE_EMPTY in page


def test_an_empty_search_names_the_table_and_the_object(ztf_table, client, django_user_model):
    page = results_page(client, django_user_model, BrokerDatabasePython,
                        {"survey": "ztf", "objectId": "ZTF00aaaaaaa", "candid": None, "max_results": 5})
    assert EMPTY_SEARCH in page


def test_a_failed_query_shows_its_failure_not_nothing_matched(pubsub_emulator, client, django_user_model):
    page = results_page(client, django_user_model, BrokerStreamRest, stream_query("no-such-stream"))
    assert "publishes no topic" in page
    assert "Nothing matched" not in page


def test_runbrokerquery_logs_why_its_pull_was_empty(topic_name, caplog):
    BrokerQuery.objects.create(name="empty", broker=BrokerStreamRest.name, parameters=stream_query(topic_name))
    with caplog.at_level(logging.INFO, logger="tom_pittgoogle"):
        call_command("runbrokerquery", "empty")
    assert any(f"subscription {topic_name}" in line and WHY_A_PULL_MAY_BE_EMPTY in line for line in caplog.messages)


def test_an_empty_dataservice_search_says_what_it_searched(ztf_table, client, django_user_model):
    client.force_login(django_user_model.objects.create_user("astronomer", password="not-used"))
    page = html.unescape(test_dataservice.run_query(client, objectId="ZTF00aaaaaaa").content.decode())
    assert EMPTY_SEARCH in page


def test_an_empty_dataservice_pull_says_why_it_may_be_empty(topic_name, client, django_user_model):
    client.force_login(django_user_model.objects.create_user("astronomer", password="not-used"))
    page = test_dataservice.run_query(client, route="pubsub", subscription_name=topic_name, timeout=1)
    page = html.unescape(page.content.decode())
    assert f"came from subscription {topic_name} (ZTF); the query stops after 1 s without a new message." in page
    assert WHY_A_PULL_MAY_BE_EMPTY in page
