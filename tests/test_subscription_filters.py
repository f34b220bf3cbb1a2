"""Server-side filters on the Pub/Sub emulator: subscriptions created with the filter each query asks for (read back
through the API, gRPC and REST), an existing subscription with another filter refused, and published nights
(messages with the attributes Pitt-Google sets) where exactly the alerts the filter keeps are stored.

The emulator accepts a subscription's filter and delivers every message anyway (NOTES-emulators.md), so these
nights prove the app's own evaluation of the filter, which gives the same alerts with or without Google's.
"""

from __future__ import annotations

import io

import pytest
import requests
from django.core.management import CommandError, call_command
from django.urls import reverse
from django.utils.html import escape

from tom_pittgoogle import conf
from tom_pittgoogle.core.filters import server_filter
from tom_pittgoogle.core.heartbeat import ingester_status, status_text
from tom_pittgoogle.core.pubsub import close_client, subscriber_client
from tom_pittgoogle.core.subscription import Subscription
from tom_pittgoogle.demo.pittgoogle_formats import lsst_message, messages
from tom_pittgoogle.demo.sample_lsst import make_lsst_alert
from tom_pittgoogle.exceptions import SubscriptionFilterError
from tom_pittgoogle.models import Alert, IngesterHeartbeat
from tom_pittgoogle.routes.stream_python import ConsumerStreamPython
from tom_pittgoogle.routes.stream_rest import ConsumerStreamRest

from .conftest import PITTGOOGLE_PROJECT, USER_PROJECT, create_topic, publisher
from .lsst_samples import LSST_PROJECT

pytestmark = pytest.mark.django_db(transaction=True)

TRANSPORTS = ["grpc", "rest"]


@pytest.fixture(params=TRANSPORTS)
def transport(request) -> str:
    return request.param


def read_back(path: str) -> tuple[str, str]:
    """The subscription's filter as the emulator holds it, read with Google's gRPC client and over plain REST."""
    client = subscriber_client()
    try:
        grpc_filter = client.get_subscription(subscription=path).filter
    finally:
        close_client(client)
    answer = requests.get(f"http://{conf.pubsub_emulator_host()}/v1/{path}", timeout=10)
    answer.raise_for_status()
    return grpc_filter, answer.json().get("filter", "")


def path_of(name: str) -> str:
    return f"projects/{USER_PROJECT}/subscriptions/{name}"


# --- each kind of query gives its subscription the expected filter -------------------------------------------

QUERIES = [
    pytest.param({}, "", id="no filter"),
    pytest.param({"classtar_threshold": 0.5, "cone_ra": 10, "cone_dec": 5, "cone_radius_arcsec": 60}, "",
                 id="TOM-only filters"),
    pytest.param({"pg_variable": "likely"}, 'attributes.pg_variable = "likely"', id="variability"),
    pytest.param({"pg_supernnova_class": "1", "n_previous_detections": 0, "reliability_threshold": 0.9},
                 'attributes.pg_supernnova_class = "1" AND attributes.n_previous_detections = "0"',
                 id="supernnova and first detections"),
    pytest.param({"pg_upsilon_band": "g", "pg_upsilon_label": "RRL_ab", "pg_upsilon_flag": 0,
                  "pg_has_min_detections": "1"},
                 'attributes.pg_has_min_detections = "1" AND attributes.pg_upsilon_g_label = "RRL_ab" AND '
                 'attributes.pg_upsilon_g_flag = "0"', id="upsilon"),
    pytest.param({"is_pure": True, "is_extragalactic_transient": "yes", "fid": 2, "classtar_threshold": 0.5},
                 'attributes.is_pure = "1" AND attributes.is_extragalactic_transient = "1" AND attributes.fid = "2"',
                 id="ztf-tagged"),
    pytest.param({"pg_variable": "unlikely",
                  "attribute_filter": 'hasPrefix(attributes.schema_version, "v10") OR attributes:ssSource_ssObjectId'},
                 'attributes.pg_variable = "unlikely" AND (hasPrefix(attributes.schema_version, "v10") OR '
                 'attributes:ssSource_ssObjectId)', id="expression of one's own"),
]


@pytest.mark.parametrize(("query", "expected"), QUERIES)
def test_each_kind_of_query_creates_its_subscription_with_the_expected_filter(pubsub_emulator, transport, query,
                                                                              expected):
    name = create_topic(PITTGOOGLE_PROJECT, "ztf-filter")
    subscription = Subscription(name, transport=transport, filter=server_filter(query))
    try:
        subscription.touch()
        assert read_back(subscription.path) == (expected, expected)
        assert subscription.filter_expression == expected
    finally:
        subscription.delete()
        subscription.close()


def test_the_routes_and_the_command_create_their_subscriptions_with_the_filter(pubsub_emulator):
    expected = 'attributes.is_pure = "1"'
    names = [create_topic(PITTGOOGLE_PROJECT, "ztf-route") for _ in range(3)]
    ConsumerStreamRest(names[0], server_filter=server_filter({"is_pure": "1"}))
    ConsumerStreamPython(names[1], server_filter=server_filter({"is_pure": "1"})).subscription.close()
    call_command("pittgoogle_stream", "--subscription", names[2], "--is-pure", "1", "--timeout", "1",
                 stdout=io.StringIO(), stderr=io.StringIO())
    for name in names:
        assert read_back(path_of(name)) == (expected, expected)


def test_a_filter_pubsub_would_refuse_is_refused_before_any_subscription_is_made(pubsub_emulator):
    name = create_topic(PITTGOOGLE_PROJECT, "ztf-bad")
    refused = r"Subscription filter, character 18 \(at \"2 AND\"\): the value must be a string in double quotes"
    with pytest.raises(CommandError, match=refused):
        call_command("pittgoogle_stream", "--subscription", name, "--attribute-filter", "attributes.fid = 2 AND",
                     "--timeout", "1", stdout=io.StringIO(), stderr=io.StringIO())
    with pytest.raises(CommandError, match="at most 256 bytes"):
        call_command("pittgoogle_stream", "--subscription", name, "--attribute-filter",
                     f'attributes.fid = "{"1" * 300}"', "--timeout", "1", stdout=io.StringIO(), stderr=io.StringIO())
    with pytest.raises(Exception, match="NotFound|404|not found"):
        read_back(path_of(name))


# --- an existing subscription with another filter --------------------------------------------------------------

@pytest.mark.parametrize("existing", ['attributes.pg_variable = "unlikely"', ""], ids=["another filter", "none"])
def test_an_existing_subscription_with_another_filter_is_refused_saying_what_to_do(pubsub_emulator, transport,
                                                                                   existing):
    name = create_topic(PITTGOOGLE_PROJECT, "ztf-existing")
    first = Subscription(name, transport=transport, filter=existing or None)
    first.touch()
    try:
        asking = Subscription(name, transport=transport, filter='attributes.pg_variable = "likely"')
        with pytest.raises(SubscriptionFilterError) as caught:
            asking.touch()
        message = str(caught.value)
        assert f"Subscription {path_of(name)} already exists with " + (
            f"the filter {existing}" if existing else "no filter") in message
        assert "Pub/Sub cannot change a subscription's filter" in message
        assert 'cannot filter on attributes.pg_variable = "likely"' in message
        assert "Use a subscription name of its own for this filter" in message
        assert f"or delete {name}" in message
        # Nothing changed: the subscription keeps its filter.
        assert read_back(first.path) == (existing, existing)
        asking.close()
    finally:
        first.delete()
        first.close()


def test_the_command_says_so_too_and_stops_before_listening(pubsub_emulator):
    name = create_topic(PITTGOOGLE_PROJECT, "ztf-existing")
    Subscription(name, filter='attributes.fid = "1"').touch()
    with pytest.raises(CommandError, match=r'already exists with the filter attributes.fid = "1".*delete'):
        call_command("pittgoogle_stream", "--subscription", name, "--fid", "2", "--timeout", "1",
                     stdout=io.StringIO(), stderr=io.StringIO())


def test_the_same_filter_written_otherwise_is_the_same_and_no_filter_asked_takes_the_subscriptions(
        pubsub_emulator, transport):
    name = create_topic(PITTGOOGLE_PROJECT, "ztf-same")
    first = Subscription(name, transport=transport, filter='attributes.fid = "1" AND attributes:is_pure')
    first.touch()
    try:
        again = Subscription(name, transport=transport, filter='attributes.fid="1"   AND attributes:"is_pure"')
        again.touch()  # the same filter: accepted
        plain = Subscription(name, transport=transport)
        plain.touch()  # no filter asked: the subscription's own applies (the emulator would not apply it)
        assert plain.filter is not None and plain.filter.matches({"fid": "1", "is_pure": "0"})
        assert not plain.filter.matches({"fid": "2", "is_pure": "1"})
        assert plain.filter_expression == 'attributes.fid = "1" AND attributes:is_pure'
        again.close()
        plain.close()
    finally:
        first.delete()
        first.close()


# --- published nights: exactly the alerts the filter keeps are stored --------------------------------------


def variable_lsst_record(index: int) -> dict:
    """An LSST alert of a strongly variable object with 100 previous g-band detections: Pitt-Google's variability
    module calls it likely variable, and UPSILoN has enough points for it."""
    record = make_lsst_alert(10, 0, index=index, seed=77, n_previous=100)
    for i, source in enumerate(record["prvDiaSources"]):
        source.update(band="g", psfFlux=1e5 if i % 2 else 1e3, psfFluxErr=10.0)
    return record


def night(topic: str, n: int = 24) -> list[tuple[bytes, dict]]:
    """A night of ``topic``'s messages as Pitt-Google publishes them (plus four variable objects on LSST topics)."""
    night = messages(topic, n, seed=5)
    if topic.startswith("lsst"):
        night += [lsst_message(topic, variable_lsst_record(i), 10, 0, offset=1000 + i) for i in range(4)]
    return night


def source_id(attributes: dict) -> str:
    return attributes.get("candid") or attributes["diaSource_diaSourceId"]


NIGHTS = [
    pytest.param("ztf-tagged", {"is_pure": "1"}, lambda a: a["is_pure"] == "1", id="ztf is_pure"),
    pytest.param("ztf-tagged", {"fid": "2", "is_extragalactic_transient": "1"},
                 lambda a: a["fid"] == "2" and a["is_extragalactic_transient"] == "1", id="ztf fid and extragalactic"),
    pytest.param("lsst-variability", {"pg_variable": "likely"}, lambda a: a["pg_variable"] == "likely",
                 id="lsst pg_variable"),
    pytest.param("lsst-supernnova", {"pg_supernnova_class": "1"}, lambda a: a["pg_supernnova_class"] == "1",
                 id="lsst pg_supernnova_class"),
    pytest.param("lsst-upsilon", {"pg_has_min_detections": "1"}, lambda a: a["pg_has_min_detections"] == "1",
                 id="lsst pg_has_min_detections"),
    pytest.param("lsst-upsilon", {"pg_upsilon_band": "g", "pg_upsilon_flag": "1"},
                 lambda a: a["pg_upsilon_g_flag"] == "1", id="lsst upsilon g flag"),
    pytest.param("lsst-alerts", {"n_previous_detections": "100"}, lambda a: a["n_previous_detections"] == "100",
                 id="lsst n_previous_detections"),
    pytest.param("lsst-alerts",
                 {"attribute_filter": 'hasPrefix(attributes.schema_version, "v7_") OR attributes:ssSource_ssObjectId'},
                 lambda a: a["schema_version"].startswith("v7_") or "ssSource_ssObjectId" in a,
                 id="lsst expression of one's own"),
]


def publish_night(topic_kind: str, query: dict) -> tuple[str, str, set[str], int]:
    """A fresh topic of that kind, its subscription created with the query's filter, then a night published on it.

    Returns the subscription's name, the survey, the source ids the filter keeps, and how many it drops."""
    survey, project = ("lsst", LSST_PROJECT) if topic_kind.startswith("lsst") else ("ztf", PITTGOOGLE_PROJECT)
    name = create_topic(project, topic_kind)
    subscription = Subscription(name, survey=survey, filter=server_filter(query))
    subscription.touch()
    subscription.close()
    sent = night(topic_kind)
    publish = publisher(project)
    for data, attributes in sent:
        publish(name, [data], **attributes)
    return name, survey, sent


@pytest.mark.parametrize(("topic_kind", "query", "keeps"), NIGHTS)
def test_a_night_through_the_ingester_stores_exactly_the_alerts_the_filter_keeps(pubsub_emulator, topic_kind, query,
                                                                                  keeps):
    name, survey, sent = publish_night(topic_kind, query)
    expected = {source_id(attributes) for _, attributes in sent if keeps(attributes)}
    assert 0 < len(expected) < len(sent), "the night must hold alerts the filter keeps and alerts it drops"
    options = []
    for key, value in query.items():
        options += [f"--{key.replace('_', '-')}", str(value)]
    out = io.StringIO()
    call_command("pittgoogle_stream", "--survey", survey, "--subscription", name, *options, "--timeout", "5",
                 stdout=out, stderr=io.StringIO())
    stored = set(Alert.objects.filter(subscription=path_of(name)).values_list("source_id", flat=True))
    assert stored == expected
    last = out.getvalue().strip().splitlines()[-1]
    assert f"received {len(sent)}," in last
    assert f"stored {len(expected)}," in last and "filtered out 0," in last
    assert f"filtered out (server) {len(sent) - len(expected)}" in last


@pytest.mark.parametrize(("topic_kind", "query", "keeps"), [NIGHTS[0], NIGHTS[2], NIGHTS[7]])
def test_a_night_through_the_rest_route_stores_exactly_the_alerts_the_filter_keeps(pubsub_emulator, topic_kind,
                                                                                   query, keeps):
    name, survey, sent = publish_night(topic_kind, query)
    expected = {source_id(attributes) for _, attributes in sent if keeps(attributes)}
    consumer = ConsumerStreamRest(name, survey=survey, server_filter=server_filter(query))
    alerts = consumer.pull_alerts(len(sent), max_wait=3)
    assert {alert["source_id"] for alert in alerts} == expected
    stored = set(Alert.objects.filter(subscription=path_of(name)).values_list("source_id", flat=True))
    assert stored == expected
    # Every message was acknowledged, kept or dropped: nothing comes back after the ack deadline.
    assert consumer.pull_alerts(1, max_wait=12) == []


def test_a_pittgoogle_streams_entry_with_a_subscription_of_its_own_on_a_topic(pubsub_emulator, settings):
    topic = create_topic(LSST_PROJECT, "lsst-supernnova")
    own = f"{topic}-class1"
    settings.PITTGOOGLE_STREAMS = [{"subscription": own, "topic": topic, "survey": "lsst",
                                    "filter": {"pg_supernnova_class": "1"}}]
    Subscription(own, survey="lsst", topic=topic, filter='attributes.pg_supernnova_class = "1"').touch()
    sent = night("lsst-supernnova")
    publish = publisher(LSST_PROJECT)
    for data, attributes in sent:
        publish(topic, [data], **attributes)
    call_command("pittgoogle_stream", "--timeout", "5", stdout=io.StringIO(), stderr=io.StringIO())
    assert read_back(path_of(own)) == ('attributes.pg_supernnova_class = "1"',) * 2
    stored = set(Alert.objects.filter(subscription=path_of(own)).values_list("source_id", flat=True))
    assert stored == {source_id(a) for _, a in sent if a["pg_supernnova_class"] == "1"}


def test_a_night_through_the_alert_stream_stores_exactly_the_alerts_the_filter_keeps(pubsub_emulator, client,
                                                                                     django_user_model):
    pytest.importorskip("tom_alertstreams")
    from tom_pittgoogle.adapters.alertstream import PittGoogleAlertStream

    name, _, sent = publish_night("ztf-tagged", {"is_pure": "1"})
    stream = PittGoogleAlertStream(STREAMS=[{"subscription": name, "filter": {"is_pure": "1"}}], TIMEOUT=5,
                                   PROGRESS_INTERVAL=1)
    stats = stream.listen()
    expected = {source_id(a) for _, a in sent if a["is_pure"] == "1"}
    assert set(Alert.objects.filter(subscription=path_of(name)).values_list("source_id", flat=True)) == expected
    assert (stats.stored, stats.filtered_out_server) == (len(expected), len(sent) - len(expected))
    heartbeat = IngesterHeartbeat.objects.get(streams=[name])
    assert heartbeat.subscription_filters == {name: 'attributes.is_pure = "1"'}
    assert heartbeat.filtered_out_server == len(sent) - len(expected) and heartbeat.filtered_out == 0
    # pittgoogle_status and the status page show the subscription's filter and the count.
    text = status_text(ingester_status())
    assert f'  {name}: subscription filter attributes.is_pure = "1"' in text
    assert f"filtered out 0, rejected 0, filtered out (server) {len(sent) - len(expected)}" in text
    client.force_login(django_user_model.objects.create_user("operator", password="not-used"))
    page = client.get(reverse("tom_pittgoogle:status")).content.decode()
    shown = escape('attributes.is_pure = "1"')
    assert f'subscription filter: <code class="pittgoogle-subscription-filter">{shown}</code>' in page
    assert f"<td>{len(sent) - len(expected)}</td>" in page
