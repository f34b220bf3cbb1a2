"""Any Target's history through TOM Toolkit's *Update Reduced Data*: a TNS-style Target entered by coordinates only
gets the ZTF and Rubin/LSST alerts within 1.5 arcsec from both surveys' BigQuery tables (and those this TOM
stored), both object ids as aliases and one merged light curve, once; and a BigQuery search attaches what it finds
to the Targets it belongs to. On the BigQuery emulator and PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
import uuid

import numpy as np
import pytest
from astropy.coordinates import SkyCoord
from astropy.time import Time
from django.contrib.messages import get_messages
from django.urls import reverse
from tom_dataproducts.models import PhotometryReducedDatum
from tom_targets.models import Target, TargetName

from tom_pittgoogle.adapters.broker_database_python import BrokerDatabasePython
from tom_pittgoogle.adapters.dataservices import PittGoogleDataService
from tom_pittgoogle.core.alerts import SURVEYS, lighten_alert
from tom_pittgoogle.core.attach import alert_attached
from tom_pittgoogle.demo.bigquery_tables import (
    bigquery_client,
    create_alerts_table,
    create_lsst_alerts_table,
    load_alerts,
    lsst_table_columns,
)
from tom_pittgoogle.demo.sample_alerts import ZTF_ALERT_SCHEMA, make_alert
from tom_pittgoogle.demo.sample_lsst import lsst_alert_schema, make_lsst_alert
from tom_pittgoogle.models import Alert, AttachedAlert
from tom_pittgoogle.routes.database_python import ConsumerDatabasePython, clear_caches

from . import test_dataservice

pytestmark = pytest.mark.django_db

SERVICE = PittGoogleDataService.name
# The emulator keeps datasets by name whatever their project: this module's have names of their own.
ZTF_PROJECT, ZTF_DATASET = "ardent-cycling-243415", f"ztf_history_{uuid.uuid4().hex[:8]}"
LSST_PROJECT, LSST_DATASET = "pitt-alert-broker", f"lsst_history_{uuid.uuid4().hex[:8]}"
ZTF_TABLE = f"{ZTF_PROJECT}.{ZTF_DATASET}.alerts_v4_02"
LSST_TABLE = f"{LSST_PROJECT}.{LSST_DATASET}.alerts_v10_0"
HERE = (210.25, -12.5)  # where the TNS transient is (degrees)
ZTF_NEAR, ZTF_FAR = "ZTF25aahisto", "ZTF25aafarby"


def offset(arcsec: float, angle_deg: float) -> tuple[float, float]:
    import astropy.units as u

    moved = SkyCoord(HERE[0] * u.deg, HERE[1] * u.deg).directional_offset_by(angle_deg * u.deg, arcsec * u.arcsec)
    return float(moved.ra.deg), float(moved.dec.deg)


def recent_mjd_tai(days_ago: float) -> float:
    return float(Time(dt.datetime.now(dt.UTC) - dt.timedelta(days=days_ago)).tai.mjd)


def ztf_records() -> dict[str, list[dict]]:
    """Two alerts of ZTF_NEAR within 1.5 arcsec of HERE, one of ZTF_FAR 2 arcsec away, one far off."""
    rng = np.random.default_rng(19)
    where = {"near": [(0.6, 10.0), (1.2, 200.0)], "far": [(2.0, 90.0)], "elsewhere": [(600.0, 0.0)]}
    records: dict[str, list[dict]] = {}
    for kind, places in where.items():
        for number, (arcsec, angle) in enumerate(places):
            object_id = {"near": ZTF_NEAR, "far": ZTF_FAR}.get(kind)
            record = make_alert(rng, jd=2461000.5 + number + (kind == "far"), object_id=object_id)
            record["candidate"]["ra"], record["candidate"]["dec"] = offset(arcsec, angle)
            records.setdefault(kind, []).append(record)
    return records


def lsst_record(index: int, arcsec: float, angle: float, days_ago: float, object_index: int | None = None) -> dict:
    record = make_lsst_alert(10, 0, index=index, seed=19)
    if object_index is not None:  # another alert of the object of alert ``object_index``
        object_id = make_lsst_alert(10, 0, index=object_index, seed=19)["diaObject"]["diaObjectId"]
        record["diaObject"]["diaObjectId"] = object_id
        for entry in [record["diaSource"], *record["prvDiaSources"], *record["prvDiaForcedSources"]]:
            entry["diaObjectId"] = object_id
    ra, dec = offset(arcsec, angle)
    record["diaObject"]["ra"], record["diaObject"]["dec"] = ra, dec
    shift = recent_mjd_tai(days_ago) - record["diaSource"]["midpointMjdTai"]
    for entry in [record["diaSource"], *record["prvDiaSources"], *record["prvDiaForcedSources"]]:
        entry["ra"], entry["dec"] = ra, dec
        entry["midpointMjdTai"] += shift
    return record


def lsst_records() -> dict[str, list[dict]]:
    """Two alerts of one Rubin object within 1.5 arcsec of HERE (recent: published in the last weeks), one of
    another object 2 arcsec away."""
    return {"near": [lsst_record(0, 0.8, 45.0, 20.0), lsst_record(1, 1.3, 300.0, 12.0, object_index=0)],
            "far": [lsst_record(2, 2.0, 135.0, 15.0)]}


@pytest.fixture(scope="module")
def tables(bigquery_emulator) -> dict[str, dict[str, list[dict]]]:
    ztf, lsst = ztf_records(), lsst_records()
    client = bigquery_client(bigquery_emulator.endpoint, ZTF_PROJECT)
    load_alerts(client, create_alerts_table(client, ZTF_TABLE, ZTF_ALERT_SCHEMA),
                [record for records in ztf.values() for record in records])
    client = bigquery_client(bigquery_emulator.endpoint, LSST_PROJECT)
    load_alerts(client, create_lsst_alerts_table(client, LSST_TABLE, lsst_alert_schema(10, 0)),
                [record for records in lsst.values() for record in records], extra=lsst_table_columns)
    return {"ztf": ztf, "lsst": lsst}


@pytest.fixture(autouse=True)
def _datasets(settings):
    settings.PITTGOOGLE_BIGQUERY_DATASET = f"{ZTF_PROJECT}.{ZTF_DATASET}"
    settings.PITTGOOGLE_LSST_BIGQUERY_DATASET = f"{LSST_PROJECT}.{LSST_DATASET}"
    clear_caches()
    yield
    clear_caches()


@pytest.fixture
def signals():
    received = []

    def on_attached(sender, target, alert, route, **kwargs):
        received.append((target.pk, alert["survey"], str(alert["source_id"]), route))

    alert_attached.connect(on_attached)
    yield received
    alert_attached.disconnect(on_attached)


def tns_target(user) -> Target:
    target = Target.objects.create(name="2025abc", type="SIDEREAL", ra=HERE[0], dec=HERE[1])
    target.give_user_access(user)
    return target


def update_reduced_data(client, target, django_capture_on_commit_callbacks) -> str:
    """Press *Update Reduced Data* → Pitt-Google on the Target's page; return the page it lands on."""
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("dataservices:update-data"), {"target": target.pk, "data_service": SERVICE},
                                follow=True)
    assert response.status_code == 200
    return response.content.decode()


def source_ids(records) -> set[tuple[str, str]]:
    return {(alert["survey"], str(alert["source_id"])) for alert in map(lighten_alert, records)}


def light_curve_points(records) -> set[tuple[float, str]]:
    return {(round(point["jd"], 6), point["band"]) for record in records
            for point in lighten_alert(record)["photometry"] if point.get("jd") is not None}


def test_a_tns_target_gets_both_surveys_alerts_within_the_radius_once(astronomer, tables, signals,
                                                                       django_capture_on_commit_callbacks):
    target = tns_target(astronomer.user)
    near = tables["ztf"]["near"] + tables["lsst"]["near"]
    lsst_object = str(lighten_alert(tables["lsst"]["near"][0])["object_id"])

    page = update_reduced_data(astronomer, target, django_capture_on_commit_callbacks)

    attached = AttachedAlert.objects.filter(target=target)
    assert set(attached.values_list("survey", "source_id")) == source_ids(near)
    assert set(attached.values_list("route", flat=True)) == {ZTF_TABLE, LSST_TABLE}
    far = source_ids(tables["ztf"]["far"] + tables["lsst"]["far"])
    assert not far & set(AttachedAlert.objects.values_list("survey", "source_id")), "a 2 arcsec alert was attached"
    assert set(TargetName.objects.filter(target=target).values_list("name", flat=True)) == {ZTF_NEAR, lsst_object}
    points = PhotometryReducedDatum.objects.filter(target=target)
    assert set(points.values_list("source_location", flat=True)) == {f"ztf:{ZTF_NEAR}", f"lsst:{lsst_object}"}
    assert set(points.values_list("telescope", flat=True)) == {SURVEYS["ztf"].telescope, SURVEYS["lsst"].telescope}
    assert points.count() == len(light_curve_points(tables["ztf"]["near"])) + len(
        light_curve_points(tables["lsst"]["near"]))
    assert sorted(signals) == sorted((target.pk, s, i, r) for s, i, r in attached.values_list(
        "survey", "source_id", "route"))
    assert "ZTF: 2 alerts found (2 in BigQuery, 0 stored in this TOM), 2 new" in page, page[-3000:]
    assert "Rubin/LSST: 2 alerts found (2 in BigQuery, 0 stored in this TOM), 2 new" in page
    assert f"{points.count()} new light-curve points added" in page

    # Again: nothing new, no second signal.
    before = (points.count(), attached.count(), TargetName.objects.count(), len(signals))
    again = update_reduced_data(astronomer, target, django_capture_on_commit_callbacks)
    assert (points.count(), attached.count(), TargetName.objects.count(), len(signals)) == before
    assert "ZTF: 2 alerts found (2 in BigQuery, 0 stored in this TOM), 0 new" in again
    assert "its light curve already had every point of them" in again


def test_the_alerts_this_tom_stored_are_read_without_bigquery_credentials(astronomer, tables, monkeypatch, tmp_path,
                                                                          django_capture_on_commit_callbacks):
    # Stored by the ingester before the Target existed (so not attached then).
    stored = lighten_alert(tables["ztf"]["near"][0])
    Alert.objects.create(survey="ztf", source_id=str(stored["source_id"]), object_id=stored["object_id"],
                         jd=stored["jd"], ra=stored["ra"], dec=stored["dec"], band=stored["band"],
                         mag=stored["mag"], subscription="projects/p/subscriptions/ztf-alerts", alert=stored)
    target = tns_target(astronomer.user)
    for name in ("BIGQUERY_EMULATOR_HOST", "GOOGLE_APPLICATION_CREDENTIALS"):  # no Google credentials at all
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(tmp_path / "gcloud"))
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("NO_GCE_CHECK", "True")

    page = update_reduced_data(astronomer, target, django_capture_on_commit_callbacks)

    assert set(AttachedAlert.objects.filter(target=target).values_list("survey", "source_id", "route")) == {
        ("ztf", str(stored["source_id"]), "projects/p/subscriptions/ztf-alerts")}
    assert "ZTF: 1 alert found (0 in BigQuery, 1 stored in this TOM), 1 new" in page, page[-3000:]
    assert page.count("BigQuery not searched: No Google credentials for BigQuery") == page.count("history of 2025abc")
    assert "Only the alerts stored in this TOM were read." in page


def estimates_of(per_survey: dict[str, int], recent: int | None = None):
    """A stand-in for BigQuery's dry run (the emulator estimates 0 bytes): bytes per survey's table, and
    ``recent`` for an LSST search limited to recent partitions."""

    def dry_run_bytes(self, sql, job_config):
        if recent is not None and self.survey == "lsst" and "kafkaPublishTimestamp >=" in sql:
            return recent
        return per_survey[self.survey]

    return dry_run_bytes


def test_a_survey_that_would_cost_too_much_is_refused_plainly_and_the_other_still_runs(
        astronomer, tables, settings, monkeypatch, django_capture_on_commit_callbacks):
    settings.PITTGOOGLE_BIGQUERY_MAX_BYTES = 10 * 10**9
    monkeypatch.setattr(ConsumerDatabasePython, "dry_run_bytes", estimates_of({"ztf": 10**9, "lsst": 40 * 10**9}))
    target = tns_target(astronomer.user)

    page = update_reduced_data(astronomer, target, django_capture_on_commit_callbacks)

    assert ("Rubin/LSST BigQuery search within 1.5 arcsec of the Target not run: it would scan 40.0 GB, more than "
            "the 9.0 GB left of the 10.0 GB this TOM allows a search (PITTGOOGLE_BIGQUERY_MAX_BYTES).") in page, (
        page[-3000:])
    assert "Rubin/LSST: 0 alerts found" in page and "ZTF: 2 alerts found" in page
    assert set(AttachedAlert.objects.filter(target=target).values_list("survey", flat=True)) == {"ztf"}


def test_rubins_newest_partitions_are_searched_when_its_whole_tables_would_cost_too_much(
        astronomer, tables, settings, monkeypatch, django_capture_on_commit_callbacks):
    settings.PITTGOOGLE_BIGQUERY_MAX_BYTES = 10 * 10**9
    monkeypatch.setattr(ConsumerDatabasePython, "dry_run_bytes",
                        estimates_of({"ztf": 10**9, "lsst": 40 * 10**9}, recent=2 * 10**9))
    target = tns_target(astronomer.user)

    page = update_reduced_data(astronomer, target, django_capture_on_commit_callbacks)

    assert ("Rubin/LSST BigQuery search within 1.5 arcsec of the Target read the last 365 days only: its whole "
            "tables would scan 40.0 GB") in page
    assert set(AttachedAlert.objects.filter(target=target).values_list("survey", "source_id")) == source_ids(
        tables["ztf"]["near"] + tables["lsst"]["near"])


def messages_of_update(client, target) -> str:
    """What *Update Reduced Data* tells (read from the request, without showing the Target's page)."""
    response = client.post(reverse("dataservices:update-data"), {"target": target.pk, "data_service": SERVICE})
    return " ".join(str(message) for message in get_messages(response.wsgi_request))


@pytest.mark.parametrize(("who", "refusal"), [
    ("a visitor who is not logged in", "Log in to run a Pitt-Google history search"),
    ("a user who may not change the Target", "you may not change 2025abc, so its history was not fetched"),
])
def test_only_those_who_may_change_a_target_fetch_its_history(client, astronomer, tables, django_user_model, who,
                                                               refusal):
    target = tns_target(django_user_model.objects.create_user("owner", password="not-used"))
    if who == "a visitor who is not logged in":
        client.logout()
    assert refusal in messages_of_update(client, target)
    assert not AttachedAlert.objects.exists() and not PhotometryReducedDatum.objects.exists()


def test_a_target_with_neither_coordinates_nor_a_survey_name_is_a_message(astronomer):
    target = Target.objects.create(name="M31-by-name", type="SIDEREAL", ra=None, dec=None)
    target.give_user_access(astronomer.user)
    # (TOM Toolkit's Target page itself cannot show a Target without coordinates.)
    assert ("has no coordinates and none of its names is a ZTF or Rubin/LSST object id"
            in messages_of_update(astronomer, target))


def test_a_dataservice_bigquery_search_attaches_its_alerts_to_the_target_they_belong_to(
        astronomer, tables, signals, django_capture_on_commit_callbacks):
    target = tns_target(astronomer.user)
    form = {"data_service": SERVICE, "survey": "ztf", "route": "bigquery", "objectId": ZTF_NEAR, "candid": "",
            "subscription_name": "", "max_results": 10, "timeout": 2, "classtar_threshold": "",
            "classtar_gt_lt": "lt", "reliability_threshold": "", "query_name": ""}
    with django_capture_on_commit_callbacks(execute=True):
        response = astronomer.post(reverse("dataservices:create"), form)
        results = astronomer.get(response.url).context["results"]
    assert {row["object_id"] for row in results} == {ZTF_NEAR}
    expected = {(s, i, ZTF_TABLE) for s, i in source_ids(tables["ztf"]["near"])}
    assert set(AttachedAlert.objects.filter(target=target).values_list("survey", "source_id", "route")) == expected
    assert {(s, i, r) for _, s, i, r in signals} == expected
    assert list(TargetName.objects.filter(target=target).values_list("name", flat=True)) == [ZTF_NEAR]


def test_a_target_created_from_a_search_has_its_alerts_attached_so_its_history_adds_them_once(
        astronomer, tables, signals, django_capture_on_commit_callbacks):
    """*Create Targets* attaches the row's alert (an AttachedAlert, one signal), as every route attaches: the
    Target's history fetched later does not count it as new or signal it again."""
    results = test_dataservice.run_query(astronomer, objectId=ZTF_NEAR, max_results=10).context["results"]
    newest = max(results, key=lambda row: row["jd"])
    with django_capture_on_commit_callbacks(execute=True):
        test_dataservice.create_targets(astronomer, [newest["id"]])
    target = Target.objects.get(name=ZTF_NEAR)
    attached = AttachedAlert.objects.filter(target=target)
    assert set(attached.values_list("survey", "source_id")) == {("ztf", newest["source_id"])}
    assert signals == [(target.pk, "ztf", newest["source_id"], "")]

    page = update_reduced_data(astronomer, target, django_capture_on_commit_callbacks)
    assert set(attached.values_list("survey", "source_id")) == source_ids(tables["ztf"]["near"])
    assert sorted(source for _, _, source, _ in signals) == sorted(source for _, source in source_ids(
        tables["ztf"]["near"]))  # each alert signalled once: the created-from one is not signalled again
    assert "ZTF: 2 alerts found (2 in BigQuery, 0 stored in this TOM), 1 new" in page, page[-3000:]


def test_the_database_python_brokers_results_are_attached_too(astronomer, tables):
    target = tns_target(astronomer.user)
    alerts = list(BrokerDatabasePython().fetch_alerts(
        {"survey": "lsst", "cone_ra": HERE[0], "cone_dec": HERE[1], "cone_radius_arcsec": 5.0, "max_results": 10}))
    assert len(alerts) == 3  # the far one too: the search's cone is wider than the match radius
    assert set(AttachedAlert.objects.filter(target=target).values_list("survey", "source_id", "route")) == {
        (s, i, LSST_TABLE) for s, i in source_ids(tables["lsst"]["near"])}


def test_a_target_outside_the_followed_list_still_gets_the_history_it_asks_for(
        astronomer, tables, settings, django_capture_on_commit_callbacks):
    from tom_targets.models import TargetList

    TargetList.objects.create(name="Following")
    settings.PITTGOOGLE_FOLLOW_TARGET_LIST = "Following"  # the ingester and searches follow only this (empty) list
    target = tns_target(astronomer.user)

    update_reduced_data(astronomer, target, django_capture_on_commit_callbacks)

    assert set(AttachedAlert.objects.filter(target=target).values_list("survey", "source_id")) == source_ids(
        tables["ztf"]["near"] + tables["lsst"]["near"])


def test_the_cheaper_searches_run_when_all_of_them_would_cost_too_much(
        astronomer, tables, settings, monkeypatch, django_capture_on_commit_callbacks):
    settings.PITTGOOGLE_BIGQUERY_MAX_BYTES = 10 * 10**9

    def dry_run_bytes(self, sql, job_config):  # a search by object id reads whole tables; a cone, a few clusters
        return 40 * 10**9 if "@objectId" in sql else 10**9

    monkeypatch.setattr(ConsumerDatabasePython, "dry_run_bytes", dry_run_bytes)
    target = Target.objects.create(name=ZTF_NEAR, type="SIDEREAL", ra=HERE[0], dec=HERE[1])
    target.give_user_access(astronomer.user)

    page = update_reduced_data(astronomer, target, django_capture_on_commit_callbacks)

    assert ("ZTF BigQuery search of object ZTF25aahisto not run: it would scan 40.0 GB, more than the 8.0 GB left "
            "of the 10.0 GB this TOM allows a search") in page, page[-3000:]
    assert set(AttachedAlert.objects.filter(target=target).values_list("survey", "source_id")) == source_ids(
        tables["ztf"]["near"] + tables["lsst"]["near"])
