"""Every route is declared once (tom_pittgoogle.adapters.route_table) and taken from there by the brokers, the
DataService (its choices, fields, validation, run), the page that explains an empty result and the stored
route's pager: a route added to the table appears in all of them, with nothing else changed."""

from __future__ import annotations

import dataclasses
import io

import fastavro
import pytest
from django.conf import settings
from django.urls import reverse
from django.utils.module_loading import import_string

from tom_pittgoogle.adapters import route_table
from tom_pittgoogle.adapters.dataservices import PittGoogleDataService, PittGoogleQueryForm
from tom_pittgoogle.adapters.route_table import ROUTES, Route
from tom_pittgoogle.core.alerts import decode_alert, lighten_alert
from tom_pittgoogle.templatetags.pittgoogle import dataservice_nothing_matched

pytestmark = pytest.mark.django_db

SERVICE = PittGoogleDataService.name


def test_every_route_is_taken_by_its_broker_and_the_dataservice_offers_its_own():
    brokers = [route.broker for route in ROUTES.values() if route.broker]
    assert len(brokers) == 3 and all(broker in settings.TOM_ALERT_CLASSES for broker in brokers)
    for route in ROUTES.values():
        if route.broker:
            assert import_string(route.broker).route is route, route.name
    choices = [name for name, _ in PittGoogleQueryForm().fields["route"].choices]
    assert choices == [name for name, route in ROUTES.items() if route.in_dataservice]
    assert set(choices) == {"bigquery", "pubsub", "stored"}


@pytest.mark.parametrize("name", sorted(ROUTES))
def test_the_empty_result_of_every_route_is_explained_by_the_route(name, rf):
    parameters = {"route": name, "survey": "ztf", "subscription_name": "ztf-loop"}
    request = rf.get("/")
    request.session = {"query_parameters": parameters}
    text = dataservice_nothing_matched({"request": request})
    assert text == ROUTES[name].nothing_matched(parameters) and text.startswith("Nothing matched")


@pytest.fixture
def new_route(monkeypatch, packets):
    """A route added to the table, and nothing else: what each part of it was asked."""
    calls: dict = {"clean": [], "run": [], "results": [lighten_alert(decode_alert(packets[0]))]}

    def clean(form, cleaned_data):
        calls["clean"].append(dict(cleaned_data))
        if cleaned_data.get("objectId") == "refused":
            form.add_error("objectId", "The new route refuses this object.")
        return cleaned_data

    def run(parameters, alert_filter):
        calls["run"].append(dict(parameters))
        return list(calls["results"])

    route = Route(name="new", label="New route: alerts from elsewhere", fields=("objectId", "max_results"),
                  clean=clean, run=run, nothing_matched=lambda parameters: "Nothing matched on the new route.",
                  fresh_each_run=True)
    monkeypatch.setitem(route_table.ROUTES, "new", route)
    return route, calls


def post_query(client, **fields):
    data = {"data_service": SERVICE, "survey": "ztf", "route": "new", "objectId": "ZTF18abc", "candid": "",
            "subscription_name": "", "max_results": 10, "timeout": 2, "classtar_threshold": "",
            "classtar_gt_lt": "lt", "reliability_threshold": "", "query_name": "", **fields}
    return client.post(reverse("dataservices:create"), data)


def test_a_route_added_to_the_table_is_offered_checked_run_and_explained_by_the_dataservice(astronomer, new_route):
    route, calls = new_route
    page = astronomer.get(reverse("dataservices:create") + f"?data_service={SERVICE}").content.decode()
    assert 'value="new"' in page and "New route: alerts from elsewhere" in page

    refused = post_query(astronomer, objectId="refused")
    assert refused.status_code == 200 and "The new route refuses this object." in refused.content.decode()

    response = post_query(astronomer)
    assert response.status_code == 302, response.content.decode()[:2000]
    results = astronomer.get(response.url).content.decode()
    assert calls["run"], "the route's run was not called"
    query = calls["run"][-1]
    # Only its own fields, plus the survey, the route, the user and (fresh each run) a run id.
    assert {key for key in query} == {"survey", "route", "objectId", "max_results", "for_user", "run"}
    assert query["objectId"] == "ZTF18abc"
    assert calls["results"][0]["object_id"] in results

    calls["results"] = []
    response = post_query(astronomer, objectId="ZTF18nothing")
    assert "Nothing matched on the new route." in astronomer.get(response.url).content.decode()


def test_the_pager_pages_a_paged_route_and_no_other(astronomer, new_route, monkeypatch):
    route, _ = new_route
    session = astronomer.session
    session["query_parameters"] = {"route": "new", "page": 1, "data_service": SERVICE}
    session.save()
    astronomer.get(reverse("tom_pittgoogle:stored-page", args=[3]))
    assert astronomer.session["query_parameters"]["page"] == 1  # not a paged route

    monkeypatch.setitem(route_table.ROUTES, "new", dataclasses.replace(route, paged=True))
    astronomer.get(reverse("tom_pittgoogle:stored-page", args=[3]))
    assert astronomer.session["query_parameters"]["page"] == 3


@pytest.mark.timeout(120)
@pytest.mark.django_db(transaction=True)
def test_a_pull_builds_its_filter_once_whatever_the_number_of_alerts(topic_name, publish, packets, settings,
                                                                     monkeypatch):
    from tom_pittgoogle.adapters.broker_stream_rest import BrokerStreamRest
    from tom_pittgoogle.core.filters import AlertFilter
    from tom_pittgoogle.routes.stream_rest import ConsumerStreamRest

    settings.PITTGOOGLE_REST_MAX_WAIT = 0.5
    built = []
    original = AlertFilter.from_parameters.__func__

    def counted(cls, parameters):
        built.append(1)
        return original(cls, parameters)

    monkeypatch.setattr(AlertFilter, "from_parameters", classmethod(counted))
    ConsumerStreamRest(topic_name)
    query = {"subscription_name": topic_name, "max_results": 50, "classtar_threshold": 1.0, "classtar_gt_lt": "lt"}
    publish(topic_name, packets[:1])
    assert len(list(BrokerStreamRest().fetch_alerts(query))) == 1
    for_one = len(built)
    publish(topic_name, packets[1:4])
    # classtar < 1.0 keeps those that are not point sources (a generated sample alert may have classtar 1.0).
    kept = sum(next(iter(fastavro.reader(io.BytesIO(packet))))["candidate"]["classtar"] < 1.0
               for packet in packets[1:4])
    assert kept >= 2
    assert len(list(BrokerStreamRest().fetch_alerts(query))) == kept
    assert len(built) - for_one == for_one, "the filter was built again for each alert"


def test_a_brokers_own_user_filter_is_still_used():
    from tom_pittgoogle.adapters.broker_stream_rest import BrokerStreamRest

    class Picky(BrokerStreamRest):
        @staticmethod
        def user_filter(alert, parameters):
            return alert if alert.get("object_id") == parameters["wanted"] else None

    assert BrokerStreamRest()._own_filter({"wanted": "a"}) is None  # the form's filter, built by the route
    keep = Picky()._own_filter({"wanted": "a"})
    assert keep({"object_id": "a"}) == {"object_id": "a"} and keep({"object_id": "b"}) is None


def test_every_route_stores_and_acknowledges_its_messages_through_the_one_path():
    """Messages are stored or recorded as rejected only by tom_pittgoogle.core.settle (and the store it calls):
    no route has a store-then-acknowledge of its own. The behaviour of that path is tested on every route
    (test_route_stream_rest, test_route_stream_python, test_stream_ingester, test_poison_messages)."""
    import ast
    from pathlib import Path

    package = Path(__file__).resolve().parents[1] / "tom_pittgoogle"
    allowed = {package / "core" / name for name in ("settle.py", "store.py", "rejected.py")}
    storing = {"save_batch", "save_messages", "record_rejected"}
    found = []
    for path in package.rglob("*.py"):
        if path in allowed:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call):
                name = getattr(node.func, "attr", None) or getattr(node.func, "id", None)
                if name in storing:
                    found.append(f"{path.relative_to(package)}:{node.lineno} {name}")
    assert found == [], f"messages stored outside core.settle: {found}"
    from tom_pittgoogle.core import settle

    for module in ("routes/stream_rest.py", "routes/stream_python.py", "core/engine.py"):
        assert "settle(" in (package / module).read_text(), module
    assert callable(settle.settle)
