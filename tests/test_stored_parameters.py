"""A saved query's parameters are validated again before each run, every form bounds its numbers, and an alert
with an impossible time does not break a results page (issue 11, item 9). Through the TOM's pages on PostgreSQL
(and the Pub/Sub emulator for the alert)."""

from __future__ import annotations

import pytest
from django.urls import reverse
from tom_alerts.models import BrokerQuery
from tom_dataservices.models import DataServiceQuery

from tom_pittgoogle.adapters.broker_base import jd_to_datetime
from tom_pittgoogle.adapters.broker_database_python import BrokerDatabasePython
from tom_pittgoogle.adapters.broker_stream_python import BrokerStreamPython
from tom_pittgoogle.adapters.broker_stream_rest import BrokerStreamRest
from tom_pittgoogle.adapters.dataservices import PittGoogleDataService
from tom_pittgoogle.demo.sample_alerts import make_alerts, serialize_alert
from tom_pittgoogle.models import Alert
from tom_pittgoogle.routes.stream_rest import ConsumerStreamRest

from .test_dataservice import form_fields
from .test_tom_pages import STREAM_FILTER, create_query, run_query

pytestmark = pytest.mark.django_db

HUGE = 10**26
REST = {"subscription_name": "never-pulled", "max_results": 2, "timeout": 1, "classtar_threshold": None,
        "classtar_gt_lt": "lt"}
PYTHON = {**REST, "timeout": 5, "max_backlog": 5, "save_metadata": "yes"}
DATABASE = {"objectId": "", "candid": None, "max_results": 1}

#: (broker, its valid parameters, the field made wrong, the stored value): each must be refused, naming the field.
WRONG = [
    (BrokerStreamRest, REST, "max_results", "ten"),
    (BrokerStreamRest, REST, "max_results", None),
    (BrokerStreamRest, REST, "max_results", [1]),
    (BrokerStreamRest, REST, "max_results", -5),
    (BrokerStreamRest, REST, "max_results", HUGE),
    (BrokerStreamRest, REST, "max_results", 1e308),
    (BrokerStreamRest, REST, "timeout", "soon"),
    (BrokerStreamRest, REST, "timeout", -1),
    (BrokerStreamRest, REST, "timeout", HUGE),
    (BrokerStreamRest, REST, "classtar_threshold", "high"),
    (BrokerStreamRest, REST, "classtar_threshold", 5),
    (BrokerStreamRest, REST, "classtar_gt_lt", ["lt"]),
    (BrokerStreamRest, REST, "classtar_gt_lt", None),
    (BrokerStreamRest, REST, "subscription_name", ["ztf-loop"]),
    (BrokerStreamRest, REST, "survey", "sdss"),
    (BrokerStreamPython, PYTHON, "timeout", HUGE),
    (BrokerStreamPython, PYTHON, "max_backlog", HUGE),
    (BrokerStreamPython, PYTHON, "max_backlog", "many"),
    (BrokerStreamPython, PYTHON, "max_results", -1),
    (BrokerStreamPython, PYTHON, "max_results", True),
    (BrokerStreamPython, PYTHON, "save_metadata", None),
    (BrokerDatabasePython, DATABASE, "candid", "abc"),
    (BrokerDatabasePython, DATABASE, "candid", 10**30),
    (BrokerDatabasePython, DATABASE, "candid", -3),
    (BrokerDatabasePython, DATABASE, "max_results", None),
    (BrokerDatabasePython, DATABASE, "max_results", {"n": 1}),
    (BrokerDatabasePython, DATABASE, "objectId", "Z" * 100),
]


@pytest.mark.parametrize(("broker", "valid", "field", "value"), WRONG,
                         ids=[f"{b.name.split()[-1]}-{f}-{v!r}"[:60] for b, _, f, v in WRONG])
def test_a_saved_broker_query_with_a_wrong_parameter_is_refused_naming_the_field(astronomer, broker, valid, field,
                                                                                value):
    query = BrokerQuery.objects.create(name="edited", broker=broker.name, parameters={**valid, field: value})
    page = run_query(astronomer, query)  # a 200, not a server error
    assert page.context["alerts"] == []
    feedback = page.context["broker_feedback"]
    assert "stored parameters do not pass its form" in feedback
    assert f"{field}: " in feedback


def test_saved_broker_parameters_that_are_not_named_values_are_refused(astronomer):
    query = BrokerQuery.objects.create(name="edited", broker=BrokerStreamRest.name, parameters=["max_results", 2])
    assert "not named values" in run_query(astronomer, query).context["broker_feedback"]


DATASERVICE_WRONG = [
    {"max_results": "lots"},
    {"max_results": HUGE},
    {"candid": "abc"},
    {"candid": 10**30},
    {"objectId": "Z" * 100},
    {"route": ["bigquery"]},
    {"route": "pubsub", "timeout": HUGE},
    {"route": "pubsub", "survey": "sdss"},
    {"route": "pubsub", "survey": "lsst", "reliability_threshold": 3},
    {"route": "pubsub", "classtar_gt_lt": None},
]


@pytest.mark.parametrize("wrong", DATASERVICE_WRONG, ids=[repr(w)[:50] for w in DATASERVICE_WRONG])
def test_a_saved_dataservice_query_with_a_wrong_parameter_is_refused_naming_the_field(astronomer, wrong):
    query = DataServiceQuery.objects.create(name="edited", data_service=PittGoogleDataService.name,
                                            parameters=form_fields(**wrong))
    page = astronomer.get(reverse("dataservices:run_saved", kwargs={"pk": query.pk}))
    assert page.status_code == 200
    assert page.context["results"] == []
    text = page.content.decode()
    assert "stored parameters do not pass its form" in text
    assert any(f"{field}: " in text for field in wrong if field != "survey" or wrong[field] == "sdss")


def test_saved_dataservice_parameters_that_are_not_named_values_are_refused(astronomer):
    query = DataServiceQuery.objects.create(name="edited", data_service=PittGoogleDataService.name,
                                            parameters="route=bigquery")
    page = astronomer.get(reverse("dataservices:run_saved", kwargs={"pk": query.pk}))
    assert page.status_code == 200 and "not named values" in page.content.decode()


@pytest.mark.parametrize("field", ["max_results", "timeout", "max_backlog"])
def test_the_stream_python_form_bounds_its_numbers(astronomer, field):
    response = astronomer.post(reverse("alerts:create"), {
        "query_name": "huge", "broker": BrokerStreamPython.name, "subscription_name": "ztf-loop",
        "max_results": 10, "timeout": 30, "max_backlog": 100, "save_metadata": "yes", **STREAM_FILTER,
        field: HUGE})
    assert response.status_code == 200
    assert field in response.context["form"].errors
    assert not BrokerQuery.objects.filter(name="huge").exists()


def test_the_forms_bound_candid_to_a_64_bit_id(astronomer):
    response = astronomer.post(reverse("alerts:create"), {
        "query_name": "huge", "broker": BrokerDatabasePython.name, "objectId": "", "candid": 2**63,
        "max_results": 1})
    assert "candid" in response.context["form"].errors
    response = astronomer.post(reverse("dataservices:create"), form_fields(candid=2**63))
    assert "candid" in response.context["form"].errors


@pytest.mark.parametrize("jd", [1e308, -1e308, 1e10, -1.0, float("nan"), float("inf"), [1]])
def test_an_impossible_julian_date_is_no_time(jd):
    assert jd_to_datetime(jd) is None


def test_julian_dates_a_datetime_can_hold_are_converted():
    assert jd_to_datetime(2451545.0).isoformat() == "2000-01-01T12:00:00+00:00"
    assert jd_to_datetime(None) is None


def test_an_alert_dated_1e308_is_recorded_as_rejected_naming_the_time_not_a_server_error(
    astronomer, topic_name, publish
):
    from tom_pittgoogle.models import RejectedMessage

    record = make_alerts(1, seed=11)[0]
    record["candidate"]["jd"] = 1e308
    ConsumerStreamRest(topic_name)
    publish(topic_name, [serialize_alert(record)])
    query = create_query(astronomer, BrokerStreamRest.name, subscription_name=topic_name, max_results=1, timeout=2,
                         **STREAM_FILTER)
    page = run_query(astronomer, query)  # asserts a 200
    assert list(page.context["alerts"]) == []
    assert not Alert.objects.filter(source_id=str(record["candid"])).exists()
    assert "jd" in RejectedMessage.objects.get().reason
