"""Permission denied (Google's 403 / PERMISSION_DENIED) on each route: a clear error naming what was refused, a
message on the results page, and for the night-long ingester exit status 1 having acknowledged nothing unstored.
The emulators enforce no IAM, so a proxy in front of each (``refusing_proxies.py``) refuses on cue."""

from __future__ import annotations

import pytest
from django.urls import reverse

from tom_pittgoogle.adapters.broker_database_python import BrokerDatabasePython
from tom_pittgoogle.adapters.broker_stream_python import BrokerStreamPython
from tom_pittgoogle.adapters.broker_stream_rest import BrokerStreamRest
from tom_pittgoogle.exceptions import PermissionDeniedError
from tom_pittgoogle.models import Alert
from tom_pittgoogle.routes.database_python import ConsumerDatabasePython
from tom_pittgoogle.routes.stream_python import ConsumerStreamPython
from tom_pittgoogle.routes.stream_rest import ConsumerStreamRest

from .conftest import USER_PROJECT
from .helpers import wait_until
from .refusing_proxies import RefusingGrpcProxy, RefusingHTTPProxy
from .test_stream_ingester import Ingester, candid_of, run_command, stored_source_ids, summary_counts
from .test_tom_pages import STREAM_FILTER, create_query, run_query

pytestmark = pytest.mark.django_db


@pytest.fixture
def rest_proxy(pubsub_emulator, topic_name, publish, monkeypatch):
    """Pub/Sub's REST API behind the proxy (``topic_name`` and ``publish`` go to the emulator directly)."""
    proxy = RefusingHTTPProxy(f"http://{pubsub_emulator.host}")
    monkeypatch.setenv("PUBSUB_EMULATOR_HOST", proxy.host)
    yield proxy
    proxy.stop()


@pytest.fixture
def grpc_proxy(pubsub_emulator, topic_name, publish, monkeypatch):
    proxy = RefusingGrpcProxy(pubsub_emulator.host)
    monkeypatch.setenv("PUBSUB_EMULATOR_HOST", proxy.host)
    yield proxy
    proxy.stop()


@pytest.fixture
def bigquery_proxy(bigquery_emulator, ztf_table, monkeypatch):
    proxy = RefusingHTTPProxy(bigquery_emulator.endpoint)
    monkeypatch.setenv("BIGQUERY_EMULATOR_HOST", proxy.host)
    yield proxy
    proxy.stop()


def subscription(topic_name: str) -> str:
    return f"projects/{USER_PROJECT}/subscriptions/{topic_name}"


# --- StreamRest ----------------------------------------------------------------------------------------------


def test_stream_rest_refused_is_a_permission_error_naming_the_subscription(rest_proxy, topic_name, publish, packets):
    consumer = ConsumerStreamRest(topic_name)  # through the proxy, allowed
    publish(topic_name, packets[:2])
    rest_proxy.refusing = True
    with pytest.raises(PermissionDeniedError, match=f"Pub/Sub refused access to {subscription(topic_name)}:"):
        consumer.pull_alerts(max_results=2, max_wait=1)
    assert rest_proxy.refused and Alert.objects.count() == 0
    rest_proxy.refusing = False  # nothing was acknowledged: both alerts are still there
    assert len(consumer.pull_alerts(max_results=2, max_wait=5)) == 2


def test_stream_rest_refused_is_a_message_on_the_results_page(astronomer, rest_proxy, topic_name):
    rest_proxy.refusing = True
    query = create_query(astronomer, BrokerStreamRest.name, subscription_name=topic_name, max_results=1, timeout=1,
                         **STREAM_FILTER)
    page = run_query(astronomer, query)
    assert page.context["alerts"] == []
    assert "Pub/Sub refused access to" in page.context["broker_feedback"]
    assert subscription(topic_name) in page.content.decode()


# --- StreamPython ----------------------------------------------------------------------------------------------


def test_stream_python_refused_is_a_permission_error_naming_the_subscription(grpc_proxy, topic_name):
    grpc_proxy.refusing = True
    with pytest.raises(PermissionDeniedError, match=f"Pub/Sub refused access to {subscription(topic_name)}"):
        ConsumerStreamPython(topic_name)
    assert grpc_proxy.refused


def test_stream_python_refused_mid_stream_is_a_permission_error_and_the_page_says_so(astronomer, grpc_proxy,
                                                                                     topic_name, publish, packets):
    consumer = ConsumerStreamPython(topic_name)  # allowed
    publish(topic_name, packets[:1])
    grpc_proxy.refusing = True
    with pytest.raises(PermissionDeniedError, match="refused access"):
        consumer.stream_alerts(lighten_alerts=True, parameters={"max_results": 1, "timeout": 30})
    query = create_query(astronomer, BrokerStreamPython.name, subscription_name=topic_name, max_results=1,
                         timeout=2, max_backlog=10, save_metadata="yes", **STREAM_FILTER)
    page = run_query(astronomer, query)
    assert "refused access" in page.context["broker_feedback"]


@pytest.mark.django_db(transaction=True)
@pytest.mark.timeout(300)
def test_the_ingester_refused_mid_stream_exits_1_with_one_line_and_acknowledges_nothing_unstored(
    grpc_proxy, topic_name, publish, packets
):
    ingester = Ingester("--subscription", topic_name)  # the subprocess inherits PUBSUB_EMULATOR_HOST: the proxy
    publish(topic_name, packets)
    assert wait_until(lambda: Alert.objects.count() == len(packets))
    grpc_proxy.refuse()  # the open streaming pull ends with PERMISSION_DENIED; so does every call after
    code, _, err = ingester.finish(timeout=120)
    assert code == 1, err
    assert f"stopped: Pub/Sub refused access to {subscription(topic_name)}" in err
    assert "Traceback" not in err
    # Access restored, a new ingester finds nothing new: every alert was stored once, none lost.
    grpc_proxy.refusing = False
    out = run_command("--subscription", topic_name, "--timeout", "12")
    assert summary_counts(out)["stored"] == 0, out.splitlines()[-1]
    assert sorted(stored_source_ids(topic_name)) == sorted(map(candid_of, packets))


# --- DatabasePython --------------------------------------------------------------------------------------------


def test_bigquery_refused_is_a_permission_error_naming_the_table(bigquery_proxy, ztf_table):
    bigquery_proxy.refusing = True
    with pytest.raises(PermissionDeniedError, match="BigQuery refused access to (dataset )?ardent-cycling-243415.ztf"):
        consumer = ConsumerDatabasePython()  # it checks the table first
        sql, config = consumer.create_sql_stmnt({"objectId": ztf_table[0]["objectId"], "max_results": 1})
        consumer.unpack_query(consumer.client.query(sql, job_config=config))
    assert bigquery_proxy.refused


def test_bigquery_refused_is_a_message_on_the_results_page(astronomer, bigquery_proxy, ztf_table):
    query = create_query(astronomer, BrokerDatabasePython.name, objectId=ztf_table[0]["objectId"], candid="",
                         max_results=5)
    bigquery_proxy.refusing = True
    page = run_query(astronomer, query)
    assert page.context["alerts"] == []
    assert "BigQuery refused access" in page.context["broker_feedback"]


def test_the_dataservice_shows_a_refusal_as_a_message(astronomer, bigquery_proxy, ztf_table):
    from .test_dataservice import form_fields

    bigquery_proxy.refusing = True
    response = astronomer.post(reverse("dataservices:create"), form_fields(objectId=ztf_table[0]["objectId"]))
    page = astronomer.get(response.url)
    assert page.status_code == 200 and page.context["results"] == []
    assert "BigQuery refused access" in page.content.decode()
