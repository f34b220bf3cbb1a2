"""Rubin/LSST through the TOM's pages, beyond StreamRest (``test_lsst.py``): the StreamPython and DatabasePython
brokers, the DataService's BigQuery search, and a Target's Update Reduced Data. On the emulators and PostgreSQL."""

from __future__ import annotations

import pytest
from django.urls import reverse
from tom_dataproducts.models import PhotometryReducedDatum
from tom_targets.models import Target, TargetName

from tom_pittgoogle.adapters.broker_database_python import BrokerDatabasePython
from tom_pittgoogle.adapters.broker_stream_python import BrokerStreamPython
from tom_pittgoogle.core.alerts import decode_alert, lighten_alert
from tom_pittgoogle.core.targets import target_name
from tom_pittgoogle.routes.stream_rest import ConsumerStreamRest

from .light_curves import assert_plot_shows, plot_of
from .lsst_samples import LSST_PACKETS
from .test_dataservice import SERVICE, create_targets, form_fields
from .test_tom_pages import create_query, run_query

pytestmark = pytest.mark.django_db


def dia_object_id(record: dict) -> str:
    return str(record["diaObject"]["diaObjectId"])


def test_stream_python_page_filters_lsst_on_reliability_and_makes_lsst_targets(astronomer, lsst_topic,
                                                                               publish_lsst):
    ConsumerStreamRest(lsst_topic, survey="lsst")
    payloads = [p for _, p in LSST_PACKETS]
    publish_lsst(lsst_topic, payloads)
    alerts = [lighten_alert(decode_alert(p)) for p in payloads]
    passing = [a for a in alerts if a.get("reliability") is not None and a["reliability"] >= 0.5]
    assert 0 < len(passing) < len(alerts)
    query = create_query(astronomer, BrokerStreamPython.name, survey="lsst", subscription_name=lsst_topic,
                         max_results=len(payloads), timeout=4, max_backlog=50, save_metadata="yes",
                         reliability_threshold=0.5, classtar_gt_lt="lt", classtar_threshold="")
    shown = run_query(astronomer, query).context["alerts"]
    assert sorted(a.name for a in shown) == sorted(target_name(a) for a in passing)
    response = astronomer.post(reverse("alerts:create-target"), {
        "query_id": query.pk, "broker": query.broker, "alerts": [str(shown[0].id)]})
    assert response.status_code == 302
    target = Target.objects.get(name=shown[0].name)
    alert = next(a for a in passing if target_name(a) == target.name)
    assert TargetName.objects.filter(target=target, name=alert["object_id"]).exists()
    assert set(PhotometryReducedDatum.objects.filter(target=target).values_list("telescope", flat=True)) == {"Rubin"}


def test_database_python_page_finds_an_lsst_object_and_makes_its_target(astronomer, lsst_table):
    record = lsst_table[3]
    query = create_query(astronomer, BrokerDatabasePython.name, survey="lsst", objectId=dia_object_id(record),
                         candid="", max_results=5)
    shown = run_query(astronomer, query).context["alerts"]
    assert [a.name for a in shown] == [f"LSST-{dia_object_id(record)}"]
    response = astronomer.post(reverse("alerts:create-target"), {
        "query_id": query.pk, "broker": query.broker, "alerts": [str(shown[0].id)]})
    assert response.status_code == 302
    target = Target.objects.get(name=f"LSST-{dia_object_id(record)}")
    assert TargetName.objects.filter(target=target, name=dia_object_id(record)).exists()
    assert PhotometryReducedDatum.objects.filter(target=target).exists()
    assert_plot_shows(plot_of(astronomer, target), target)


def test_the_dataservice_searches_the_lsst_table_and_makes_the_target_with_its_light_curve(astronomer, lsst_table):
    record = lsst_table[3]
    response = astronomer.post(reverse("dataservices:create"),
                               form_fields(survey="lsst", objectId=dia_object_id(record), max_results=5))
    assert response.status_code == 302, response.content.decode()[:2000]
    results = astronomer.get(response.url).context["results"]
    assert [row["source_id"] for row in results] == [str(record["diaSource"]["diaSourceId"])]
    assert results[0]["name"] == f"LSST-{dia_object_id(record)}"
    create_targets(astronomer, [results[0]["id"]])
    target = Target.objects.get(name=results[0]["name"])
    assert list(target.aliases.values_list("name", flat=True)) == [dia_object_id(record)]
    assert PhotometryReducedDatum.objects.filter(target=target).count() == results[0]["points"] > 0
    assert_plot_shows(plot_of(astronomer, target), target)


def test_update_reduced_data_brings_an_lsst_targets_light_curve_from_bigquery(astronomer, lsst_table,
                                                                             django_user_model):
    record = lsst_table[3]
    alert = lighten_alert(record)
    target = Target.objects.create(name=target_name(alert), type="SIDEREAL", ra=alert["ra"], dec=alert["dec"])
    TargetName.objects.create(target=target, name=dia_object_id(record))
    target.give_user_access(django_user_model.objects.get(username="astronomer"))
    detail = astronomer.get(reverse("tom_targets:detail", kwargs={"pk": target.pk}))
    assert f'value="{SERVICE}"' in detail.content.decode()
    response = astronomer.post(reverse("dataservices:update-data"), {"target": target.pk, "data_service": SERVICE})
    assert response.status_code == 302
    points = PhotometryReducedDatum.objects.filter(target=target, source_name="Pitt-Google")
    # Every point of the object's alert in the v10 table (which has no 7.x non-detection limits column).
    expected = len(alert["photometry"]) - len(record.get("prvDiaNondetectionLimits") or [])
    assert points.count() == expected > 0
    assert set(points.values_list("telescope", flat=True)) == {"Rubin"}
    before = points.count()
    astronomer.post(reverse("dataservices:update-data"), {"target": target.pk, "data_service": SERVICE})
    assert PhotometryReducedDatum.objects.filter(target=target).count() == before
