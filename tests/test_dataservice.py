"""The DataService through TOM Toolkit 3's own data-services pages: query form, results, Create Targets, and a
Target's Update Reduced Data; on the emulators and PostgreSQL."""

from __future__ import annotations

import io
import json
import uuid

import fastavro
import pytest
from django.urls import reverse
from tom_dataproducts.models import PhotometryReducedDatum
from tom_dataservices.dataservices import get_data_service_classes
from tom_dataservices.models import DataServiceQuery
from tom_targets.models import Target

from tom_pittgoogle.adapters.dataservices import PittGoogleDataService
from tom_pittgoogle.demo.sample_lsst import make_lsst_packets
from tom_pittgoogle.models import Alert
from tom_pittgoogle.routes.stream_rest import ConsumerStreamRest

from .light_curves import assert_plot_shows, plot_of

pytestmark = pytest.mark.django_db

SERVICE = PittGoogleDataService.name
LSST_PROJECT = "pitt-alert-broker"


def form_fields(**fields) -> dict:
    """A post of the query form: its defaults, overridden by ``fields``."""
    return {"data_service": SERVICE, "survey": "ztf", "route": "bigquery", "objectId": "", "candid": "",
            "subscription_name": "", "max_results": 10, "timeout": 2, "classtar_threshold": "",
            "classtar_gt_lt": "lt", "reliability_threshold": "", "query_name": "", **fields}


def run_query(client, **fields):
    """Fill the form on the create page, run it, return the results page."""
    page = client.get(reverse("dataservices:create") + f"?data_service={SERVICE}")
    assert page.status_code == 200
    for name in form_fields():
        assert f'name="{name}"' in page.content.decode(), name
    response = client.post(reverse("dataservices:create"), form_fields(**fields))
    assert response.status_code == 302, response.content.decode()[:3000]
    assert response.url == reverse("dataservices:run")
    page = client.get(response.url)
    assert page.status_code == 200
    return page


def classtar_of(packet: bytes):
    return next(iter(fastavro.reader(io.BytesIO(packet))))["candidate"]["classtar"]


def extras_of(target) -> dict:
    return dict(target.targetextra_set.values_list("key", "value"))


def create_targets(client, result_ids, query_id=""):
    return client.post(reverse("dataservices:create-target"), {
        "data_service": SERVICE, "query_id": query_id, "selected_results": [str(i) for i in result_ids]})


def test_pittgoogle_is_offered_on_the_data_services_pages(astronomer):
    assert get_data_service_classes()[SERVICE] is PittGoogleDataService
    page = astronomer.get(reverse("dataservices:query_list"))
    assert page.status_code == 200
    assert f"?data_service={SERVICE}" in page.content.decode()


def test_bigquery_history_to_targets_with_aliases_extras_and_light_curve(astronomer, ztf_table):
    # An object with earlier detections: its light curve has magnitudes besides the latest one (an extra).
    record = next(r for r in ztf_table if any(p.get("magpsf") is not None for p in r.get("prv_candidates") or []))
    page = run_query(astronomer, objectId=record["objectId"], max_results=5)
    results = page.context["results"]
    assert results and {row["name"] for row in results} == {record["objectId"]}
    assert record["objectId"] in page.content.decode()
    assert str(record["candid"]) in {row["source_id"] for row in results}

    response = create_targets(astronomer, [results[0]["id"]])
    target = Target.objects.get(name=record["objectId"])
    assert response.status_code == 302 and response.url == reverse("tom_targets:detail", kwargs={"pk": target.pk})
    assert target.ra == pytest.approx(results[0]["ra"])
    extras = extras_of(target)
    assert extras["survey"] == "ztf" and float(extras["latest_mag"]) == round(results[0]["mag"], 3)  # to a thousandth
    assert "classtar" in extras
    points = PhotometryReducedDatum.objects.filter(target=target)
    assert points.count() == results[0]["points"] > 1
    assert set(points.values_list("telescope", flat=True)) == {"ZTF"}
    assert astronomer.user.has_perm("tom_targets.view_target", target)
    # The Target page draws the light curve from those points: each one is in the plot's data, in its band, with
    # the alert's own magnitude (or limit).
    html = plot_of(astronomer, target)
    assert_plot_shows(html, target)
    for point in results[0]["alert"]["photometry"]:
        assert json.dumps(point["mag"] if point["mag"] is not None else point["limit"]) in html, point


def test_creating_the_same_object_twice_keeps_one_target(astronomer, ztf_table):
    record = ztf_table[0]
    results = run_query(astronomer, objectId=record["objectId"], max_results=5).context["results"]
    create_targets(astronomer, [row["id"] for row in results])
    create_targets(astronomer, [results[0]["id"]])
    assert Target.objects.filter(name=record["objectId"]).count() == 1


def test_update_reduced_data_fetches_a_targets_light_curve_from_bigquery(astronomer, ztf_table):
    record = ztf_table[1]
    target = Target.objects.create(name=record["objectId"], type="SIDEREAL", ra=record["candidate"]["ra"],
                                   dec=record["candidate"]["dec"])
    target.give_user_access(astronomer.user)
    assert not PhotometryReducedDatum.objects.filter(target=target).exists()
    # The Target page offers Pitt-Google in its Update Reduced Data form.
    detail = astronomer.get(reverse("tom_targets:detail", kwargs={"pk": target.pk}))
    assert f'value="{SERVICE}"' in detail.content.decode()
    response = astronomer.post(reverse("dataservices:update-data"), {"target": target.pk, "data_service": SERVICE})
    assert response.status_code == 302
    assert response.url.endswith("?tab=photometry")
    assert PhotometryReducedDatum.objects.filter(target=target, source_name="Pitt-Google").count() > 1
    # Again: nothing new, nothing duplicated.
    before = PhotometryReducedDatum.objects.filter(target=target).count()
    astronomer.post(reverse("dataservices:update-data"), {"target": target.pk, "data_service": SERVICE})
    assert PhotometryReducedDatum.objects.filter(target=target).count() == before


def test_update_of_a_target_without_alerts_says_nothing_was_found(astronomer, ztf_table):
    # Any Target is searched, by a cone around it: where no alert lies, the page says so.
    target = Target.objects.create(name="M31", type="SIDEREAL", ra=10.68, dec=41.27)
    target.give_user_access(astronomer.user)
    response = astronomer.post(reverse("dataservices:update-data"), {"target": target.pk, "data_service": SERVICE},
                               follow=True)
    assert ("Pitt-Google: no ZTF or Rubin/LSST alert of M31 (within 1.5 arcsec of it or named after it) in BigQuery "
            "or among the alerts stored in this TOM; nothing to add.") in response.content.decode()


def test_pubsub_pull_with_the_classtar_filter_stores_and_shows_what_passes(astronomer, topic_name, publish,
                                                                          packets):
    ConsumerStreamRest(topic_name)  # the subscription exists before the alerts are published
    publish(topic_name, packets)
    page = run_query(astronomer, route="pubsub", subscription_name=topic_name, max_results=len(packets),
                     timeout=2, classtar_threshold=0.9, classtar_gt_lt="gt")
    results = page.context["results"]
    expected = [p for p in packets if (classtar_of(p) or 0) >= 0.9]
    assert 0 < len(results) == len(expected) < len(packets)  # the generated packets have scores on both sides
    assert all(row["alert"]["classtar"] >= 0.9 for row in results)
    assert Alert.objects.filter(source_id__in=[row["source_id"] for row in results]).count() == len(results)
    create_targets(astronomer, [row["id"] for row in results])
    assert set(Target.objects.values_list("name", flat=True)) == {row["name"] for row in results}
    # Running it again pulls anew (the shown alerts were acknowledged): nothing is left.
    again = astronomer.get(reverse("dataservices:run"))
    assert again.context["results"] == []


def test_lsst_pull_makes_targets_named_for_the_dia_object_with_its_id_as_alias(astronomer, pubsub_emulator):
    from tom_pittgoogle.core.pubsub import publisher_client

    topic = f"lsst-test-{uuid.uuid4().hex[:10]}"
    publisher_client().create_topic(name=f"projects/{LSST_PROJECT}/topics/{topic}")
    ConsumerStreamRest(topic, survey="lsst")
    payloads = [packet for _, packet in make_lsst_packets()][:3]
    for future in [publisher_client().publish(f"projects/{LSST_PROJECT}/topics/{topic}", p) for p in payloads]:
        future.result(timeout=30)
    results = run_query(astronomer, survey="lsst", route="pubsub", subscription_name=topic, max_results=3,
                        timeout=2).context["results"]
    assert len(results) == 3
    row = results[0]
    create_targets(astronomer, [row["id"]])
    target = Target.objects.get(name=row["name"])
    assert row["name"].startswith("LSST-")
    assert list(target.aliases.values_list("name", flat=True)) == [row["object_id"]]
    assert extras_of(target)["survey"] == "lsst"
    assert set(PhotometryReducedDatum.objects.filter(target=target).values_list("telescope", flat=True)) == {"Rubin"}


def test_a_missing_table_is_a_message_on_the_results_page(astronomer, ztf_table, settings):
    settings.PITTGOOGLE_BIGQUERY_TABLE = "ardent-cycling-243415.ztf.retired_table"
    page = run_query(astronomer, objectId="ZTF18abfkwnk")
    assert page.context["results"] == []
    assert "retired_table does not exist" in page.content.decode()


def test_a_survey_filter_that_does_not_fit_is_shown_on_the_form(astronomer):
    response = astronomer.post(reverse("dataservices:create"),
                               form_fields(survey="lsst", route="pubsub", classtar_threshold=0.5))
    assert response.status_code == 200
    assert "classtar_threshold" in response.context["form"].errors
    response = astronomer.post(reverse("dataservices:create"),
                               form_fields(objectId="ZTF18abfkwnk", candid=123))
    assert response.status_code == 200
    assert "not both" in response.content.decode()


def test_a_saved_query_runs_from_its_page_and_rundataquery_makes_its_targets(astronomer, ztf_table):
    from django.core.management import call_command

    record = ztf_table[2]
    response = astronomer.post(reverse("dataservices:create"),
                               form_fields(objectId=record["objectId"], query_save="on", query_name="history"))
    assert response.status_code == 302
    query = DataServiceQuery.objects.get(name="history")
    page = astronomer.get(reverse("dataservices:run_saved", kwargs={"pk": query.pk}))
    assert {row["name"] for row in page.context["results"]} == {record["objectId"]}
    assert not Target.objects.filter(name=record["objectId"]).exists()
    call_command("rundataquery", str(query.pk))
    target = Target.objects.get(name=record["objectId"])
    assert PhotometryReducedDatum.objects.filter(target=target).exists()
