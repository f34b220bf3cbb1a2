"""Server-side filters from the stream routes' forms: the Alerts pages (StreamRest, StreamPython) and the
DataService's Pub/Sub pull, on the Pub/Sub emulator and PostgreSQL. The subscription is created with the filter
its query's fields ask for; the results are exactly the alerts it keeps; the results page shows the filter."""

from __future__ import annotations

import pytest
from django.urls import reverse
from django.utils.html import escape

from tom_pittgoogle.adapters.broker_base import BrokerQueryError
from tom_pittgoogle.adapters.broker_stream_python import BrokerStreamPython
from tom_pittgoogle.adapters.broker_stream_rest import BrokerStreamRest
from tom_pittgoogle.core.subscription import Subscription

from .conftest import PITTGOOGLE_PROJECT, create_topic, publisher
from .lsst_samples import LSST_PROJECT
from .test_dataservice import form_fields
from .test_dataservice import run_query as run_dataservice_query
from .test_subscription_filters import night, path_of, read_back, source_id
from .test_tom_pages import create_query, run_query

pytestmark = pytest.mark.django_db


LIKELY = 'attributes.pg_variable = "likely"'


def variability_night() -> tuple[str, str, list]:
    """An lsst-variability topic, a subscription of its own on it (not yet created), and the night to publish."""
    topic = create_topic(LSST_PROJECT, "lsst-variability")
    return topic, f"{topic}-likely", night("lsst-variability")


def publish_to(topic: str, sent: list, project: str = LSST_PROJECT) -> None:
    publish = publisher(project)
    for data, attributes in sent:
        publish(topic, [data], **attributes)


@pytest.mark.parametrize("broker", [BrokerStreamRest, BrokerStreamPython], ids=["StreamRest", "StreamPython"])
def test_a_broker_query_with_an_attribute_field_stores_what_its_subscription_filter_keeps(astronomer, pubsub_emulator,
                                                                                          broker):
    topic, own, sent = variability_night()
    fields = {"survey": "lsst", "subscription_name": own, "topic_name": topic, "pg_variable": "likely",
              "max_results": len(sent), "timeout": 3, "classtar_gt_lt": "lt", "classtar_threshold": ""}
    if broker is BrokerStreamPython:
        fields.update(max_backlog=100, save_metadata="yes")
    query = create_query(astronomer, broker.name, **fields)
    Subscription(own, survey="lsst", topic=topic, filter=LIKELY).touch()  # as the first run would make it
    publish_to(topic, sent)
    page = run_query(astronomer, query)
    expected = {source_id(a) for _, a in sent if a["pg_variable"] == "likely"}
    assert 0 < len(expected) < len(sent)
    assert {str(alert.id) for alert in page.context["alerts"]} == expected
    assert read_back(path_of(own)) == (LIKELY, LIKELY)
    assert f'<code>{escape(LIKELY)}</code>' in page.content.decode()


def test_a_new_subscription_is_created_with_the_filter_by_the_query_itself(pubsub_emulator):
    topic, own, _ = variability_night()
    alerts = list(BrokerStreamRest().fetch_alerts({"survey": "lsst", "subscription_name": own, "topic_name": topic,
                                                  "pg_variable": "likely", "max_results": 1, "timeout": 1}))
    assert alerts == []
    assert read_back(path_of(own)) == (LIKELY, LIKELY)


def test_a_query_on_a_subscription_with_another_filter_is_a_message_saying_what_to_do(pubsub_emulator):
    name = create_topic(PITTGOOGLE_PROJECT, "ztf-tagged")
    Subscription(name).touch()  # no filter
    with pytest.raises(BrokerQueryError) as caught:
        list(BrokerStreamRest().fetch_alerts({"subscription_name": name, "is_pure": "1", "max_results": 1,
                                              "timeout": 1}))
    message = caught.value.message
    assert "already exists with no filter" in message and "a subscription name of its own" in message
    assert f"delete {name}" in message


def test_the_broker_form_refuses_a_filter_pubsub_would_refuse_saying_where(astronomer):
    response = astronomer.post(reverse("alerts:create"), {
        "query_name": "bad", "broker": BrokerStreamRest.name, "subscription_name": "ztf-tagged", "max_results": 5,
        "timeout": 2, "classtar_gt_lt": "lt", "attribute_filter": 'attributes.fid = "1" OR'})
    assert response.status_code == 200
    errors = response.context["form"].errors
    assert "character 24 (at the end): the filter ends where a condition is expected" in " ".join(
        errors["attribute_filter"])
    response = astronomer.post(reverse("alerts:create"), {
        "query_name": "bad", "broker": BrokerStreamRest.name, "subscription_name": "lsst-upsilon", "survey": "lsst",
        "max_results": 5, "timeout": 2, "classtar_gt_lt": "lt", "pg_upsilon_label": "RRL_ab"})
    assert "pg_upsilon_label and pg_upsilon_flag need pg_upsilon_band" in response.content.decode()


def test_a_dataservice_pull_with_an_attribute_field_shows_what_its_subscription_filter_keeps(astronomer,
                                                                                              pubsub_emulator):
    topic, own, sent = variability_night()
    Subscription(own, survey="lsst", topic=topic, filter=LIKELY).touch()
    publish_to(topic, sent)
    page = run_dataservice_query(astronomer, survey="lsst", route="pubsub", subscription_name=own, topic_name=topic,
                                 pg_variable="likely", max_results=len(sent), timeout=2)
    expected = {source_id(a) for _, a in sent if a["pg_variable"] == "likely"}
    assert {row["source_id"] for row in page.context["results"]} == expected
    assert f"<code>{escape(LIKELY)}</code>" in page.content.decode(), "the results page shows the subscription's filter"


@pytest.mark.parametrize(("survey", "field", "value", "carried_by"), [
    ("lsst", "is_pure", "1", "ZTF"), ("lsst", "fid", "2", "ZTF"),
    ("ztf", "pg_variable", "likely", "Rubin/LSST"), ("ztf", "n_previous_detections", 0, "Rubin/LSST"),
])
def test_an_attribute_field_of_the_other_survey_is_a_field_error(astronomer, survey, field, value, carried_by):
    """A filter on an attribute the chosen survey's messages never carry would keep nothing: refused, on the
    DataService's pull and on the brokers' forms alike."""
    response = astronomer.post(reverse("dataservices:create"),
                               form_fields(route="pubsub", survey=survey, **{field: value}))
    assert response.status_code == 200
    assert response.context["form"].errors[field] == [
        f"Only {carried_by} messages carry {field}: a {'ZTF' if survey == 'ztf' else 'Rubin/LSST'} stream's "
        "messages never have it, so this filter would keep nothing."]
    response = astronomer.post(reverse("alerts:create"), {
        "query_name": "other survey", "broker": BrokerStreamRest.name, "subscription_name": "some-stream",
        "survey": survey, "max_results": 5, "timeout": 2, "classtar_gt_lt": "lt", field: value})
    assert f"Only {carried_by} messages carry {field}" in response.content.decode()


def test_the_dataservice_form_keeps_attribute_fields_to_the_pubsub_pull(astronomer):
    response = astronomer.post(reverse("dataservices:create"), form_fields(objectId="ZTF18abfkwnk", is_pure="1"))
    assert response.status_code == 200
    assert response.context["form"].errors["is_pure"] == [
        "The BigQuery search route does not read this field: clear it, or choose a route that does (Pub/Sub pull)."]
    response = astronomer.post(reverse("dataservices:create"),
                               form_fields(route="pubsub", attribute_filter="attributes:kafka.topic"))
    assert response.status_code == 200
    assert 'attributes."kafka.topic"' in " ".join(response.context["form"].errors["attribute_filter"])
