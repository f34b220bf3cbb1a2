"""Web queries end, leave the ingester's alerts alone, and answer every bad value with a message (issue 25, items
4-6, 8-10; issue 23, items 2 and 7): through the TOM's own pages, its commands, the Pub/Sub and BigQuery emulators
and PostgreSQL.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import reverse
from django.utils import timezone
from tom_alerts.models import BrokerQuery
from tom_dataservices.models import DataServiceQuery

from tom_pittgoogle.adapters.broker_database_python import BrokerDatabasePython
from tom_pittgoogle.adapters.broker_stream_python import BrokerStreamPython
from tom_pittgoogle.adapters.broker_stream_rest import BrokerStreamRest
from tom_pittgoogle.adapters.dataservices import PittGoogleDataService, PittGoogleQueryForm
from tom_pittgoogle.core.store import DjangoAlertStore
from tom_pittgoogle.demo.sample_alerts import make_alerts, make_packets
from tom_pittgoogle.demo.sample_lsst import make_lsst_packets, to_json_packet
from tom_pittgoogle.models import Alert, IngesterHeartbeat
from tom_pittgoogle.routes.stream_rest import ConsumerStreamRest

from .test_dataservice import form_fields
from .test_dataservice import run_query as run_dataservice_query
from .test_tom_pages import STREAM_FILTER, create_query, run_query

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[1]
SERVICE = PittGoogleDataService.name
#: A filter no alert passes: classtar below 0.
DROPS_EVERYTHING = {"classtar_threshold": 0, "classtar_gt_lt": "lt"}
#: The deadline these tests give pages (seconds); the pytest timeout is the guard against a query that never ends.
DEADLINE = 3


@pytest.fixture
def astronomer(client, django_user_model):
    client.user = django_user_model.objects.create_user("bounded-astronomer", password="not-used")
    client.force_login(client.user)
    return client


def feedback_of(page) -> str:
    return page.context.get("query_feedback") or page.context.get("broker_feedback") or ""


class ContinuousPublisher:
    """Publishes a new alert to a topic every 50 ms until stopped: a stream that never goes quiet."""

    def __init__(self, topic: str, publish) -> None:
        self._stop = threading.Event()
        self.published = 0
        self._thread = threading.Thread(target=self._run, args=(topic, publish), daemon=True)

    def _run(self, topic: str, publish) -> None:
        seed = 1000
        while not self._stop.is_set():
            publish(topic, make_packets(1, seed=seed))
            self.published += 1
            seed += 1
            self._stop.wait(0.05)

    def __enter__(self) -> ContinuousPublisher:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=30)


# --- issue 25, item 4: an overall deadline ------------------------------------------------------------------------


@pytest.mark.timeout(90)
def test_a_dataservice_pull_whose_filter_drops_everything_ends_at_the_deadline_on_a_busy_stream(
    astronomer, settings, topic_name, publish
):
    """The stream never goes idle (an alert every 50 ms) and the filter keeps none: without an overall deadline
    the pull runs as long as alerts come. The page answers, empty, saying when a page's query stops."""
    settings.PITTGOOGLE_WEB_QUERY_DEADLINE = DEADLINE
    ConsumerStreamRest(topic_name)
    with ContinuousPublisher(topic_name, publish) as stream:
        page = run_dataservice_query(astronomer, route="pubsub", subscription_name=topic_name, max_results=5,
                                     timeout=5, **DROPS_EVERYTHING)
        assert stream.published > 0
    assert page.context["results"] == []
    assert f"query also stops after {DEADLINE} s in all" in page.content.decode()
    assert not Alert.objects.exists()


@pytest.mark.timeout(90)
def test_a_stream_rest_page_ends_at_the_deadline_on_a_busy_stream(astronomer, settings, topic_name, publish):
    settings.PITTGOOGLE_WEB_QUERY_DEADLINE = DEADLINE
    ConsumerStreamRest(topic_name)
    query = create_query(astronomer, BrokerStreamRest.name, subscription_name=topic_name, max_results=5,
                         timeout=5, **DROPS_EVERYTHING)
    with ContinuousPublisher(topic_name, publish):
        page = run_query(astronomer, query)
    assert list(page.context["alerts"]) == []
    assert f"query also stops after {DEADLINE} s in all" in page.content.decode()


@pytest.mark.timeout(90)
@pytest.mark.parametrize("busy", [True, False], ids=["busy-stream", "quiet-stream"])
def test_a_stream_python_page_without_a_timeout_ends_at_the_deadline(astronomer, settings, topic_name, publish,
                                                                   busy):
    """Max results only, no timeout: on a quiet subscription, or a busy one whose alerts the filter drops, the
    streaming pull would never end; at the deadline it stores what is in flight, acknowledges it, and answers."""
    from tom_pittgoogle.routes.stream_python import ConsumerStreamPython

    settings.PITTGOOGLE_WEB_QUERY_DEADLINE = DEADLINE
    ConsumerStreamPython(topic_name)
    query = create_query(astronomer, BrokerStreamPython.name, subscription_name=topic_name, max_results=5,
                         timeout="", max_backlog=10, save_metadata="yes",
                         **(DROPS_EVERYTHING if busy else STREAM_FILTER))
    if busy:
        with ContinuousPublisher(topic_name, publish):
            page = run_query(astronomer, query)
    else:
        page = run_query(astronomer, query)
    assert list(page.context["alerts"]) == []
    assert f"query also stops after {DEADLINE} s in all" in page.content.decode()


def test_a_command_has_no_deadline(settings):
    from tom_pittgoogle import conf

    settings.PITTGOOGLE_WEB_QUERY_DEADLINE = DEADLINE
    assert conf.web_query_deadline() is None
    with conf.web_request():
        assert conf.web_query_deadline() == DEADLINE


# --- issue 25, item 4: a page never eats the ingester's alerts ---------------------------------------------------


def running_ingester_on(subscription: str) -> IngesterHeartbeat:
    now = timezone.now()
    return IngesterHeartbeat.objects.create(host="night-host", pid=4242, streams=[subscription], progress_interval=10,
                                            started_at=now, last_heartbeat=now)


def drain(subscription: str, expected: int) -> list[dict]:
    """What the ingester's subscription still holds, pulled as a command would (no filter)."""
    return ConsumerStreamRest(subscription).pull_alerts(expected + 5, max_wait=5)


@pytest.mark.parametrize("route", ["dataservice", "stream-rest", "stream-python"])
def test_a_page_query_on_an_ingesters_subscription_reads_its_own_and_the_ingester_keeps_every_alert(
    astronomer, topic_name, publish, packets, route
):
    ConsumerStreamRest(topic_name)  # the ingester's subscription
    running_ingester_on(topic_name)
    own = f"{topic_name}-page-u{astronomer.user.pk}"

    def run_page(**fields):
        if route == "dataservice":
            return run_dataservice_query(astronomer, route="pubsub", subscription_name=topic_name, timeout=3,
                                         **fields)
        broker = BrokerStreamRest if route == "stream-rest" else BrokerStreamPython
        extra = {} if route == "stream-rest" else {"max_backlog": 10, "save_metadata": "yes"}
        BrokerQuery.objects.filter(name=f"{broker.name} query").delete()
        return run_query(astronomer, create_query(astronomer, broker.name, subscription_name=topic_name,
                                                  timeout=3, **extra, **fields))

    first = run_page(max_results=len(packets), **STREAM_FILTER)  # makes the page's own subscription
    assert own in first.content.decode() and "read by this TOM&#x27;s ingester" in first.content.decode()
    publish(topic_name, packets)
    # A filter that keeps nothing: the page acknowledges what it pulled, from its own subscription.
    dropped = run_page(max_results=len(packets), **DROPS_EVERYTHING)
    assert own in dropped.content.decode()
    publish(topic_name, packets[:2])
    results = []
    # The emulator may route a subscription's messages to the streaming pull that just ended for minutes
    # (NOTES-emulators.md): the streaming route listens again until both arrive, up to a bound.
    deadline = time.monotonic() + (240 if route == "stream-python" else 0)
    while True:
        kept = run_page(max_results=2 - len(results), **STREAM_FILTER)
        results += kept.context["results"] if route == "dataservice" else list(kept.context["alerts"])
        if len(results) >= 2 or time.monotonic() > deadline:
            break
    assert len(results) == 2, f"the page's own subscription delivered {len(results)} of the 2 alerts published"
    # The ingester's subscription lost nothing: every alert published is still there for it.
    assert len(drain(topic_name, len(packets) + 2)) == len(packets) + 2


def test_a_query_on_a_subscription_no_ingester_reads_pulls_it_as_before(astronomer, topic_name, publish, packets):
    ConsumerStreamRest(topic_name)
    publish(topic_name, packets[:3])
    page = run_dataservice_query(astronomer, route="pubsub", subscription_name=topic_name, max_results=3, timeout=3)
    assert len(page.context["results"]) == 3
    assert "read by this TOM's ingester" not in page.content.decode()


# --- issue 25, item 5: no 500s from form values --------------------------------------------------------------------

BAD_TIMES = ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00", "1800-01-01 00:00"]
BROKER_FORMS = {
    BrokerStreamRest.name: {"subscription_name": "ztf-loop", "max_results": 2, "timeout": 1, **STREAM_FILTER},
    BrokerStreamPython.name: {"subscription_name": "ztf-loop", "max_results": 2, "timeout": 1, "max_backlog": 10,
                              "save_metadata": "yes", **STREAM_FILTER},
    BrokerDatabasePython.name: {"objectId": "", "candid": "", "max_results": 2},
}


@pytest.mark.parametrize("value", BAD_TIMES)
@pytest.mark.parametrize("field", ["start_time", "end_time"])
def test_a_time_out_of_range_is_a_field_error_on_every_form(astronomer, field, value):
    for broker, fields in BROKER_FORMS.items():
        response = astronomer.post(reverse("alerts:create"),
                                   {"query_name": "t", "broker": broker, **fields, field: value})
        assert response.status_code == 200, broker
        assert "from 1900-01-01 to 2200-01-01" in str(response.context["form"].errors[field]), broker
    for route in ("bigquery", "pubsub", "stored"):
        response = astronomer.post(reverse("dataservices:create"), form_fields(route=route, **{field: value}))
        assert response.status_code == 200, route
        assert field in response.context["form"].errors, route


@pytest.mark.parametrize("value", [5, True, [1], {"at": "noon"}, "0001-01-01T00:00:00+14:00"])
@pytest.mark.parametrize("route", ["bigquery", "pubsub", "stored"])
def test_a_saved_query_whose_time_is_not_a_time_is_refused_naming_the_field(astronomer, route, value):
    query = DataServiceQuery.objects.create(name="edited", data_service=SERVICE,
                                            parameters=form_fields(route=route, start_time=value))
    page = astronomer.get(reverse("dataservices:run_saved", kwargs={"pk": query.pk}))
    assert page.status_code == 200
    assert page.context["results"] == []
    assert "start_time: " in page.content.decode()
    broker_query = BrokerQuery.objects.create(name="edited", broker=BrokerStreamRest.name,
                                              parameters={**BROKER_FORMS[BrokerStreamRest.name], "end_time": value})
    assert "end_time: " in feedback_of(run_query(astronomer, broker_query))


def test_a_stored_route_page_past_a_64_bit_offset_is_a_field_error(astronomer):
    response = astronomer.post(reverse("dataservices:create"), form_fields(route="stored", page=2**63))
    assert response.status_code == 200
    assert "page" in response.context["form"].errors


def test_the_pager_url_with_a_huge_page_shows_the_last_page_it_allows(astronomer):
    from tom_pittgoogle.routes.stored_alerts import MAX_PAGE

    run_dataservice_query(astronomer, route="stored", max_results=5)
    response = astronomer.get(reverse("tom_pittgoogle:stored-page", kwargs={"page": 2**63}))
    assert response.status_code == 302 and response.url == reverse("dataservices:run")
    page = astronomer.get(response.url)
    assert page.status_code == 200
    assert f"Nothing on page {MAX_PAGE}" in page.content.decode()
    # The session keeps a page that runs: the run page works again.
    assert astronomer.get(reverse("dataservices:run")).status_code == 200


def test_the_pager_url_without_a_query_opens_the_form_with_a_message(astronomer):
    response = astronomer.get(reverse("tom_pittgoogle:stored-page", kwargs={"page": 2}), follow=True)
    assert response.status_code == 200
    assert "no stored-alerts query to page through" in response.content.decode()
    assert isinstance(response.context["form"], PittGoogleQueryForm)


# --- issue 25, item 6: heartbeats ---------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["inf", "1e300", "nan", "-1", "0", "soon"])
def test_pittgoogle_stream_refuses_a_progress_interval_that_is_no_time(value, pubsub_emulator):
    with pytest.raises(CommandError, match="progress-interval"):
        call_command("pittgoogle_stream", "--subscription", "never-created", "--progress-interval", value,
                     "--timeout", "1", stdout=io.StringIO(), stderr=io.StringIO())
    assert not IngesterHeartbeat.objects.exists()


ODD_ROWS = [
    {"progress_interval": float("nan")},
    {"progress_interval": float("inf")},
    {"progress_interval": 1e300},
    {"progress_interval": -5.0},
    {"streams": "ztf-loop"},
    {"streams": [1, None, {"a": "b"}]},
    {"streams": {"subscription": "ztf-loop"}},
    {"rate": float("nan")},
    {"rate": float("inf")},
]


@pytest.mark.parametrize("odd", ODD_ROWS, ids=[repr(row)[:40] for row in ODD_ROWS])
def test_the_status_page_and_command_show_any_heartbeat_row_with_a_message(client, django_user_model, odd):
    now = timezone.now()
    row = IngesterHeartbeat.objects.create(**{"host": "h", "pid": 1, "streams": ["ztf-loop"],
                                              "progress_interval": 10.0, "started_at": now, "last_heartbeat": now,
                                              **odd})
    client.force_login(django_user_model.objects.create_user("operator", password="not-used"))
    page = client.get(reverse("tom_pittgoogle:status"))
    assert page.status_code == 200
    out = io.StringIO()
    try:
        call_command("pittgoogle_status", stdout=out, stderr=io.StringIO())
    except SystemExit as exit_:
        assert exit_.code == 1
    assert f"pid {row.pid} on h" in out.getvalue()
    if "rate" not in odd:
        assert "heartbeat row is odd" in page.content.decode()
        assert "heartbeat row is odd" in out.getvalue()


# --- issue 25, item 8: one predicted-class semantics -----------------------------------------------------------

CLASSES = ["Ia|SN", " Ia ", "ia", "SN", "sn ia", "100%|x"]


def classified_packets() -> list[bytes]:
    packets = []
    for record, label in zip(make_alerts(len(CLASSES), seed=57), CLASSES, strict=True):
        packets.append(to_json_packet({
            "alertIds": {"objectId": record["objectId"], "candid": record["candid"]},
            "candidate": record["candidate"], "prv_candidates": record.get("prv_candidates"),
            "MyClassifier": {"class": label, "probability": 0.9},
        }))
    return packets


@pytest.mark.parametrize("wanted", [" IA ", "Ia", "SN", "Ia|SN", "ia%7csn", "100%|x"])
def test_the_stored_route_keeps_the_alerts_of_a_class_that_a_pull_keeps(astronomer, topic_name, publish, wanted):
    from tom_pittgoogle.core.alerts import decode_alert, lighten_alert

    packets = classified_packets()
    ConsumerStreamRest(topic_name)
    publish(topic_name, packets)
    pulled = run_dataservice_query(astronomer, route="pubsub", subscription_name=topic_name,
                                   max_results=len(packets), timeout=2, predicted_class=wanted).context["results"]
    DjangoAlertStore().save_alerts([lighten_alert(decode_alert(packet)) for packet in packets])
    stored = run_dataservice_query(astronomer, route="stored", max_results=100, predicted_class=wanted)
    assert stored.context["query_feedback"] == ""
    assert sorted(r["source_id"] for r in stored.context["results"]) == sorted(r["source_id"] for r in pulled)


# --- issue 25, item 9: one-line errors from the commands ---------------------------------------------------------

COMMAND_ERRORS = [
    (["pittgoogle_prune", "--older-than", "1e6"], "older-than"),
    (["pittgoogle_prune", "--older-than", "inf"], "older-than"),
    (["pittgoogle_prune", "--older-than", "nan"], "older-than"),
    (["pittgoogle_prune", "--rejected-older-than", "1e6"], "rejected-older-than"),
    (["pittgoogle_prune", "--batch-size", str(10**20)], "batch-size"),
    (["pittgoogle_status", "--rejected", str(10**22)], "rejected"),
    (["pittgoogle_stream", "--subscription", "never-created", "--start", "0001-01-01T00:00:00+14:00"], "start_time"),
    (["pittgoogle_stream", "--subscription", "never-created", "--end", "9999-12-31T23:59:59-14:00"], "end_time"),
    (["pittgoogle_stream", "--subscription", "never-created", "--timeout", "inf"], "timeout"),
    (["pittgoogle_stream", "--subscription", "never-created", "--cone", "nan", "0", "1"], "cone"),
    (["pittgoogle_index_targets", "--batch-size", "0"], "batch-size"),
]


@pytest.mark.parametrize(("argv", "named"), COMMAND_ERRORS, ids=[" ".join(a)[:60] for a, _ in COMMAND_ERRORS])
def test_a_command_answers_an_impossible_value_with_an_error_naming_it(argv, named, pubsub_emulator):
    with pytest.raises(CommandError, match=named):
        call_command(*argv, stdout=io.StringIO(), stderr=io.StringIO())


def test_the_error_is_one_line_without_a_traceback_on_the_command_line(db):
    from django.db import connection

    env = dict(os.environ, DJANGO_SETTINGS_MODULE="tests.settings", PGDATABASE=connection.settings_dict["NAME"])
    for argv, named in COMMAND_ERRORS[:6]:
        done = subprocess.run([sys.executable, "-m", "django", *argv], cwd=ROOT, env=env, capture_output=True,
                              text=True, timeout=120)
        assert done.returncode != 0, argv
        assert "Traceback" not in done.stderr and named in done.stderr.splitlines()[-1], (argv, done.stderr)


# --- issue 25, item 10: the billing cap of a whole search; saved queries without a field -------------------------


def test_a_saved_stored_route_query_without_classtar_gt_lt_takes_the_forms_initial_value(astronomer):
    query = DataServiceQuery.objects.create(name="old", data_service=SERVICE,
                                            parameters={"data_service": SERVICE, "route": "stored", "survey": "ztf",
                                                        "max_results": 5})
    page = astronomer.get(reverse("dataservices:run_saved", kwargs={"pk": query.pk}))
    assert page.status_code == 200
    assert "do not pass its form" not in page.content.decode()
    assert "this TOM has stored no ZTF alert" in page.content.decode()


# --- issue 23, item 2: a field is applied or refused ---------------------------------------------------------------

NOT_READ = [
    ("bigquery", "ztf", {"band": "g"}, "band"),
    ("bigquery", "ztf", {"mag_max": 19}, "mag_max"),
    ("bigquery", "ztf", {"classtar_threshold": 0.5}, "classtar_threshold"),
    ("bigquery", "lsst", {"classtar_threshold": 0.5}, "classtar_threshold"),
    ("bigquery", "lsst", {"reliability_threshold": 0.5}, "reliability_threshold"),
    ("bigquery", "ztf", {"subscription_name": "ztf-loop"}, "subscription_name"),
    ("bigquery", "ztf", {"sort": "brightest"}, "sort"),
    ("pubsub", "ztf", {"band": "g"}, "band"),
    ("pubsub", "ztf", {"objectId": "ZTF18abfkwnk"}, "objectId"),
    ("pubsub", "ztf", {"table_name": "alerts_v4_02"}, "table_name"),
    ("stored", "ztf", {"table_name": "alerts_v4_02"}, "table_name"),
    ("stored", "lsst", {"classtar_threshold": 0.5}, "classtar_threshold"),
    ("stored", "ztf", {"reliability_threshold": 0.5}, "reliability_threshold"),
    ("stored", "ztf", {"band": "y"}, "band"),
]


@pytest.mark.parametrize(("route", "survey", "fields", "field"), NOT_READ,
                         ids=[f"{r}-{s}-{f}" for r, s, _, f in NOT_READ])
def test_a_field_the_route_or_survey_would_not_apply_is_a_field_error(astronomer, route, survey, fields, field):
    response = astronomer.post(reverse("dataservices:create"), form_fields(route=route, survey=survey, **fields))
    assert response.status_code == 200, "the query ran with a field it ignores"
    assert field in response.context["form"].errors


def test_bigquery_band_g_is_refused_not_answered_with_other_bands(astronomer, ztf_table):
    response = astronomer.post(reverse("dataservices:create"), form_fields(route="bigquery", band="g"))
    assert response.status_code == 200 and "band" in response.context["form"].errors


def test_pittgoogle_stream_refuses_classtar_with_lsst(pubsub_emulator):
    with pytest.raises(CommandError, match="classtar is a ZTF field"):
        call_command("pittgoogle_stream", "--survey", "lsst", "--classtar-threshold", "0.5", "--max-results", "1",
                     "--timeout", "2", stdout=io.StringIO(), stderr=io.StringIO())


def test_pittgoogle_stream_for_lsst_without_a_subscription_listens_to_the_lsst_stream(
    settings, topic_name, publish, packets, lsst_topic, publish_lsst
):
    """Both default streams have alerts: ``--survey lsst`` stores the LSST ones, not ZTF's."""
    settings.PITTGOOGLE_DEFAULT_SUBSCRIPTION = topic_name
    settings.PITTGOOGLE_LSST_DEFAULT_SUBSCRIPTION = lsst_topic
    ConsumerStreamRest(topic_name)
    ConsumerStreamRest(lsst_topic, survey="lsst")
    publish(topic_name, packets[:3])
    lsst = [packet for _, packet in make_lsst_packets()][:3]
    publish_lsst(lsst_topic, lsst)
    out = io.StringIO()
    call_command("pittgoogle_stream", "--survey", "lsst", "--max-results", "3", "--timeout", "10", stdout=out,
                 stderr=io.StringIO())
    assert f"listening to {lsst_topic}" in out.getvalue()
    assert Alert.objects.filter(survey="lsst").count() == 3
    assert not Alert.objects.filter(survey="ztf").exists()


def test_pittgoogle_stream_refuses_filter_options_that_settings_streams_would_ignore(settings, pubsub_emulator):
    settings.PITTGOOGLE_STREAMS = [{"subscription": "ztf-loop"}]
    with pytest.raises(CommandError, match="classtar-threshold.*PITTGOOGLE_STREAMS"):
        call_command("pittgoogle_stream", "--classtar-threshold", "0.5", "--timeout", "1", stdout=io.StringIO(),
                     stderr=io.StringIO())


# --- issue 23, item 7: ids of the survey, a magnitude range that is not empty --------------------------------------

WRONG_IDS = [("ztf", "12345"), ("ztf", "ZTF18abc"), ("ztf", "ZTF\u0661\u0668abcdefg"), ("lsst", "ZTF18abfkwnk"),
             ("lsst", "\u0661\u0662\u0663"), ("lsst", str(2**64))]


@pytest.mark.parametrize(("survey", "object_id"), WRONG_IDS, ids=[f"{s}-{o!a}" for s, o in WRONG_IDS])
def test_an_object_id_that_is_not_the_surveys_is_a_field_error(astronomer, survey, object_id):
    for route in ("bigquery", "stored"):
        response = astronomer.post(reverse("dataservices:create"),
                                   form_fields(route=route, survey=survey, objectId=object_id))
        assert response.status_code == 200, route
        assert "objectId" in response.context["form"].errors, route
    response = astronomer.post(reverse("alerts:create"), {"query_name": "q", "broker": BrokerDatabasePython.name,
                                                          "survey": survey, "objectId": object_id, "max_results": 2})
    assert response.status_code == 200 and "objectId" in response.context["form"].errors


def test_an_empty_magnitude_range_is_a_field_error_and_the_labels_say_which_end_is_which(astronomer):
    response = astronomer.post(reverse("dataservices:create"), form_fields(route="stored", mag_min=20, mag_max=18))
    assert response.status_code == 200
    assert "magnitude range is empty" in str(response.context["form"].errors["mag_max"])
    form = PittGoogleQueryForm()
    assert form["mag_min"].label == "Brightest magnitude (smallest number)"
    assert form["mag_max"].label == "Faintest magnitude (largest number)"
    page = run_dataservice_query(astronomer, route="stored", mag_min=18, mag_max=20)
    assert page.status_code == 200 and page.context["query_feedback"] == ""

