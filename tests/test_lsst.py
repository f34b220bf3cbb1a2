"""Rubin/LSST alerts, Pitt-Google's JSON streams, and light curves in the TOM.

LSST packets are built from lsst-alert-packet's own schemas and sample alerts (every version from 7.0 it ships),
in the Confluent wire format Pitt-Google publishes; ZTF packets are the real ones (and generated ones). Each goes
through the three routes on the emulators, becomes a Target through the TOM's pages, and its light curve is
asserted on the Target's page.
"""

from __future__ import annotations

import io
import json
import math

import fastavro
import pytest
from django.urls import reverse
from tom_dataproducts.models import PhotometryReducedDatum
from tom_targets.models import Target, TargetExtra, TargetName

from tom_pittgoogle.adapters.broker_base import alert_to_generic_alert
from tom_pittgoogle.adapters.broker_database_python import BrokerDatabasePython
from tom_pittgoogle.adapters.broker_database_python import FilterAlertsForm as DatabaseForm
from tom_pittgoogle.adapters.broker_stream_python import BrokerStreamPython
from tom_pittgoogle.adapters.broker_stream_rest import BrokerStreamRest
from tom_pittgoogle.adapters.broker_stream_rest import FilterAlertsForm as RestForm
from tom_pittgoogle.core.alerts import AlertDecoder, decode_alert, decode_alert_b64, lighten_alert
from tom_pittgoogle.core.alerts import decode as decode_module
from tom_pittgoogle.core.alerts.decode import lsst_schema_ids
from tom_pittgoogle.core.targets import create_or_update_target, save_photometry, target_name
from tom_pittgoogle.demo.sample_lsst import (
    make_lsst_alert,
    serialize_wire_format,
    to_json_packet,
    ztf_supernnova_json,
)
from tom_pittgoogle.exceptions import DecodeError
from tom_pittgoogle.models import Alert
from tom_pittgoogle.routes.database_python import ConsumerDatabasePython
from tom_pittgoogle.routes.stream_python import ConsumerStreamPython
from tom_pittgoogle.routes.stream_rest import ConsumerStreamRest

from .conftest import SAMPLE_PACKETS, USER_PROJECT
from .light_curves import assert_plot_shows, plot_of
from .lsst_samples import LSST_PACKETS, LSST_PROJECT, LSST_TABLE, wire_record


def ztf_record(packet: bytes) -> dict:
    return next(iter(fastavro.reader(io.BytesIO(packet))))


def expected_lsst_points(record: dict) -> int:
    """Detections plus limits in an LSST packet: the diaSource, previous diaSources, forced photometry, and 7.x
    non-detection limits."""
    return (1 + len(record.get("prvDiaSources") or []) + len(record.get("prvDiaForcedSources") or [])
            + len(record.get("prvDiaNondetectionLimits") or []))


def expected_ztf_points(record: dict) -> tuple[int, int]:
    """(detections, upper limits): candidate and prv_candidates with magpsf; those with only diffmaglim."""
    entries = [record["candidate"], *(record.get("prv_candidates") or [])]
    detections = sum(1 for e in entries if e.get("magpsf") is not None)
    limits = sum(1 for e in entries if e.get("magpsf") is None and e.get("diffmaglim") is not None)
    return detections, limits


@pytest.fixture(params=LSST_PACKETS, ids=[name for name, _ in LSST_PACKETS])
def lsst_packet(request) -> bytes:
    return request.param[1]


# --- decoding ---------------------------------------------------------------------------------------


def test_schema_versions_from_7_0_to_the_newest_shipped_are_read():
    ids = lsst_schema_ids()
    assert ids[0] == 700 and {700, 900, 1000, 1100, 1101} <= set(ids)
    assert {int.from_bytes(p[1:5], "big") for _, p in LSST_PACKETS} == set(ids)


def test_every_lsst_wire_format_packet_decodes_as_lsst_alert_packet_reads_it(lsst_packet):
    assert decode_alert(lsst_packet) == wire_record(lsst_packet)


def test_lsst_common_fields_object_source_time_band_and_ab_magnitude_from_flux(lsst_packet):
    record = wire_record(lsst_packet)
    source = record["diaSource"]
    alert = lighten_alert(record)
    assert alert["survey"] == "lsst"
    assert alert["source_id"] == str(source["diaSourceId"])
    if record.get("diaObject"):
        assert alert["object_id"] == str(record["diaObject"]["diaObjectId"]) and alert["object_kind"] == "diaObject"
    else:  # a solar-system source: its ssObject names it
        assert alert["object_id"] == str(source["ssObjectId"]) and alert["object_kind"] == "ssObject"
    # midpointMjdTai is TAI; jd is UTC (TAI - UTC = 37 s since 2017).
    assert alert["mjd"] == source["midpointMjdTai"]
    assert alert["jd"] == pytest.approx(source["midpointMjdTai"] + 2400000.5 - 37 / 86400, abs=1e-8)
    assert alert["ra"] == source["ra"] and alert["dec"] == source["dec"] and alert["band"] == source["band"]
    assert alert["flux"] == source["psfFlux"] and alert["flux_err"] == source["psfFluxErr"]
    assert alert["mag"] == pytest.approx(-2.5 * math.log10(source["psfFlux"]) + 31.4)
    assert alert["mag_err"] == pytest.approx(1.0857 * source["psfFluxErr"] / source["psfFlux"], rel=1e-4)
    assert alert["reliability"] == source["reliability"] and alert["scores"]["extendedness"] == source["extendedness"]
    json.dumps(alert, allow_nan=False)


def test_each_lsst_schema_is_parsed_once(monkeypatch):
    calls = []
    real_parse = fastavro.parse_schema
    monkeypatch.setattr(decode_module.fastavro, "parse_schema", lambda s, *a, **k: calls.append(1) or real_parse(s))
    decoder = AlertDecoder()
    for _ in range(3):
        for _, packet in LSST_PACKETS:
            decoder.decode(packet)
    assert len(calls) == len(lsst_schema_ids())


def test_lsst_json_stream_packets_decode_to_the_same_alert(lsst_packet):
    record = wire_record(lsst_packet)
    record["diaSource"]["snr"] = float("nan")  # lsst-alerts-json carries NaN as null
    record["cutoutDifference"] = b"\x1f\x8bFITS"  # ... and bytes as base64
    packet = to_json_packet(record)
    assert b"NaN" not in packet
    assert lighten_alert(decode_alert(packet)) == lighten_alert(record)


def test_ztf_supernnova_json_decodes_with_its_classifier_scores():
    record = ztf_record(SAMPLE_PACKETS[0][1])
    alert = lighten_alert(decode_alert(ztf_supernnova_json(record, prob_class0=0.9)))
    assert alert["survey"] == "ztf" and alert["object_id"] == record["objectId"]
    assert alert["source_id"] == str(record["candid"]) and alert["mag"] == record["candidate"]["magpsf"]
    assert alert["scores"]["supernnova_prob_class0"] == 0.9 and alert["supernnova_predicted_class"] == 0
    assert alert_to_generic_alert(alert).extras["supernnova_prob_class0"] == 0.9


def test_the_topic_names_the_survey_to_try_first_and_the_bytes_the_format():
    packet = LSST_PACKETS[0][1]
    assert decode_alert_b64(__import__("base64").b64encode(packet), "projects/p/topics/lsst-alerts") == \
        decode_alert(packet)


@pytest.mark.parametrize(
    ("data", "says"),
    [
        (b"\x00\x00\x00\x00\x07rest of it", "schema id 7: not a Rubin alert schema .* ids 700 to"),
        (b"\x00\x00\x00\x03\xe8\x02", "malformed Rubin/LSST packet from lsst-alerts .*schema id 1000"),
        (b"\x89PNG\r\n\x1a\n....", r"from lsst-alerts: unrecognised leading bytes b'\\x89PNG"),
        (b'{"diaSource": {"ra": 1}}', None),
    ],
)
def test_garbage_says_what_it_saw(data, says):
    if says is None:  # JSON, but no survey's alert: the fields are named
        with pytest.raises(DecodeError, match="not an alert of a known survey .*diaSource"):
            lighten_alert(decode_alert(data, "lsst-alerts"))
        return
    with pytest.raises(DecodeError, match=says):
        decode_alert(data, "lsst-alerts")


# --- light-curve points -----------------------------------------------------------------------------


def test_ztf_points_are_detections_plus_upper_limits_of_the_packet(packet):
    record = ztf_record(packet)
    detections, limits = expected_ztf_points(record)
    points = lighten_alert(record)["photometry"]
    assert sum(p["mag"] is not None for p in points) == detections
    assert sum(p["kind"] == "limit" and p["limit"] is not None for p in points) == limits
    assert len(points) == detections + limits


def test_lsst_points_are_every_source_forced_measurement_and_limit_of_the_packet(lsst_packet):
    record = wire_record(lsst_packet)
    points = lighten_alert(record)["photometry"]
    assert len(points) == expected_lsst_points(record)
    # Faint forced photometry (S/N < 3) is an upper limit at 5 sigma, keeping its flux.
    faint = [p for p in points if p["kind"] == "limit" and p["flux"] is not None]
    assert faint and all(p["limit"] == pytest.approx(-2.5 * math.log10(5 * p["flux_err"]) + 31.4) for p in faint)


def test_lsst_times_are_astropys_tai_to_utc_julian_dates_to_the_last_bit():
    """The light curve's times are ERFA's TAI -> UTC as astropy's ``Time(...).utc.jd`` computes them (without
    building a Time per alert): equal floats over three centuries and across every leap second."""
    import random
    import warnings

    from astropy.time import Time

    from tom_pittgoogle.core.alerts.photometry import mjd_tai_to_jd_utc

    rng = random.Random(21)
    mjds = [rng.uniform(15020.0, 124593.0) for _ in range(20000)] + [rng.uniform(60000, 62000) for _ in range(5000)]
    leap_days = [41317, 41499, 41683, 42048, 42413, 42778, 43144, 43509, 43874, 44239, 44786, 45151, 45516, 46247,
                 47161, 47892, 48257, 48804, 49169, 49534, 50083, 50630, 51179, 53736, 54832, 56109, 57204, 57754]
    mjds += [day + second / 86400.0 for day in leap_days for second in range(-40, 41)]
    mjds += [61000.0, 61000.5, 61001.5, 15020.0, 124593.0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ERFA's "dubious year" past its leap-second table: both warn alike
        expected = Time(mjds, format="mjd", scale="tai").utc.jd.tolist()
        assert mjd_tai_to_jd_utc(mjds) == expected
        assert [mjd_tai_to_jd_utc([mjd])[0] for mjd in mjds[::97]] == expected[::97]
        known = {mjds[0]: expected[0]}
        assert mjd_tai_to_jd_utc(mjds[:50], known) == expected[:50]
    assert all(math.isnan(jd) for jd in mjd_tai_to_jd_utc([1e300, -1.0, 15019.0]))


# --- the three routes -------------------------------------------------------------------------------


def packets_of_every_kind() -> list[bytes]:
    """LSST wire format of every version, LSST JSON, ZTF Avro: one subscription may carry any of them."""
    return [p for _, p in LSST_PACKETS] + [to_json_packet(make_lsst_alert(10, 0, index=7))]


@pytest.mark.django_db
def test_stream_rest_serves_lsst_from_pittgoogles_lsst_project(lsst_topic, publish_lsst, settings):
    consumer = ConsumerStreamRest(lsst_topic, survey="lsst")
    assert consumer.topic_path == f"projects/{LSST_PROJECT}/topics/{lsst_topic}"
    payloads = packets_of_every_kind()
    publish_lsst(lsst_topic, payloads)
    alerts = consumer.pull_alerts(max_results=len(payloads) + 3, max_wait=1)
    assert sorted(a["source_id"] for a in alerts) == sorted(lighten_alert(decode_alert(p))["source_id"]
                                                          for p in payloads)
    assert Alert.objects.filter(survey="lsst", subscription=consumer.subscription_path).count() == len(payloads)
    for alert in alerts:
        assert len(alert["photometry"]) == expected_lsst_points(decode_alert(
            next(p for p in payloads if lighten_alert(decode_alert(p))["source_id"] == alert["source_id"])))


@pytest.mark.django_db
def test_stream_python_serves_lsst_and_filters_on_reliability(lsst_topic, publish_lsst):
    consumer = ConsumerStreamPython(lsst_topic, survey="lsst")
    subscription = consumer.client.get_subscription(subscription=consumer.subscription_path)
    assert subscription.topic == f"projects/{LSST_PROJECT}/topics/{lsst_topic}"
    assert subscription.name == f"projects/{USER_PROJECT}/subscriptions/{lsst_topic}"
    payloads = [p for _, p in LSST_PACKETS]
    publish_lsst(lsst_topic, payloads)
    parameters = {"max_results": len(payloads), "timeout": 4, "reliability_threshold": 0.5, "survey": "lsst"}
    alerts = consumer.stream_alerts(lighten_alerts=True, user_filter=BrokerStreamPython.user_filter,
                                    parameters=parameters)
    expected = {str(r["diaSource"]["diaSourceId"]) for r in map(wire_record, payloads)
                if r["diaSource"]["reliability"] >= 0.5}
    assert expected and {a["source_id"] for a in alerts} == expected


@pytest.mark.django_db
def test_database_python_queries_pittgoogles_lsst_table_by_object_and_by_source(lsst_table):
    consumer = ConsumerDatabasePython(survey="lsst")
    assert consumer.table_path == LSST_TABLE
    record = lsst_table[3]
    object_id = record["diaObject"]["diaObjectId"]
    alerts = consumer.query_alerts({"objectId": str(object_id), "max_results": 10})
    assert [a["source_id"] for a in alerts] == [str(record["diaSource"]["diaSourceId"])]
    assert alerts[0]["object_id"] == str(object_id) and alerts[0]["mag"] == lighten_alert(record)["mag"]
    assert len(alerts[0]["photometry"]) == expected_lsst_points(record) - len(
        record.get("prvDiaNondetectionLimits") or [])  # the v10 table has no 7.x limits column
    by_source = consumer.query_alerts({"candid": record["diaSource"]["diaSourceId"], "max_results": 10})
    assert [a["source_id"] for a in by_source] == [alerts[0]["source_id"]]
    solar = lsst_table[-1]
    ss_alerts = consumer.query_alerts({"objectId": str(solar["diaSource"]["ssObjectId"]), "max_results": 5})
    assert [a["object_kind"] for a in ss_alerts] == ["ssObject"]
    newest = consumer.query_alerts({"max_results": 3})
    mjds = sorted((r["diaSource"]["midpointMjdTai"] for r in lsst_table), reverse=True)[:3]
    assert [a["mjd"] for a in newest] == mjds


@pytest.mark.django_db
def test_database_python_brings_ztf_history_for_the_light_curve(ztf_table):
    record = next(r for r in ztf_table if r.get("prv_candidates"))
    alerts = ConsumerDatabasePython().query_alerts({"candid": record["candid"], "max_results": 1})
    assert len(alerts[0]["photometry"]) == sum(expected_ztf_points(record))


def test_forms_offer_the_filter_of_the_chosen_survey():
    base = {"query_name": "q", "broker": BrokerStreamRest.name, "max_results": 3, "classtar_gt_lt": "lt"}
    form = RestForm(data={**base, "survey": "lsst", "classtar_threshold": 0.5})
    assert not form.is_valid() and "ZTF field" in str(form.errors["classtar_threshold"])
    form = RestForm(data={**base, "survey": "ztf", "reliability_threshold": 0.5})
    assert not form.is_valid() and "Rubin/LSST field" in str(form.errors["reliability_threshold"])
    form = RestForm(data={**base, "survey": "lsst", "reliability_threshold": 0.5})
    assert form.is_valid() and form.cleaned_data["subscription_name"] == "lsst-alerts"
    form = RestForm(data=base)
    assert form.is_valid() and form.cleaned_data["subscription_name"] == "ztf-loop"
    form = DatabaseForm(data={"query_name": "q", "broker": BrokerDatabasePython.name, "survey": "lsst",
                              "objectId": "ZTF18abc", "max_results": 3})
    assert not form.is_valid() and "is a number" in str(form.errors["objectId"])


# --- Targets and light curves -----------------------------------------------------------------------


@pytest.mark.django_db
def test_lsst_alerts_from_the_pages_become_targets_with_extras_aliases_and_a_light_curve(
    astronomer, lsst_topic, publish_lsst
):
    ConsumerStreamRest(lsst_topic, survey="lsst")
    payloads = [p for _, p in LSST_PACKETS[-3:]]
    publish_lsst(lsst_topic, payloads)
    response = astronomer.post(reverse("alerts:create"), {
        "query_name": "lsst", "broker": BrokerStreamRest.name, "survey": "lsst", "subscription_name": lsst_topic,
        "max_results": len(payloads), "timeout": 2, "classtar_gt_lt": "lt"})
    assert response.status_code == 302
    from tom_alerts.models import BrokerQuery

    query = BrokerQuery.objects.get(name="lsst")
    alerts = astronomer.get(reverse("alerts:run", kwargs={"pk": query.pk})).context["alerts"]
    assert len(alerts) == len(payloads)
    response = astronomer.post(reverse("alerts:create-target"), {
        "query_id": query.pk, "broker": query.broker, "alerts": [str(a.id) for a in alerts]})
    assert response.status_code == 302
    for payload in payloads:
        record = decode_alert(payload)
        alert = lighten_alert(record)
        target = Target.objects.get(name=target_name(alert))
        assert target.name.startswith("LSST-") and target.ra == pytest.approx(alert["ra"])
        assert TargetName.objects.filter(target=target, name=alert["object_id"]).exists()
        extras = dict(TargetExtra.objects.filter(target=target).values_list("key", "value"))
        assert extras["survey"] == "lsst" and extras["latest_band"] == alert["band"]
        assert float(extras["latest_mag"]) == round(alert["mag"], 3)
        assert float(extras["reliability"]) == pytest.approx(alert["reliability"])
        assert PhotometryReducedDatum.objects.filter(target=target).count() == expected_lsst_points(record)
        assert_plot_shows(plot_of(astronomer, target), target)


@pytest.mark.django_db
def test_ztf_alerts_light_curves_render_with_detections_and_upper_limits(astronomer, packets, django_user_model):
    user = django_user_model.objects.get(username="astronomer")
    for packet in packets:
        record = ztf_record(packet)
        target = create_or_update_target(lighten_alert(record), user=user)
        detections, limits = expected_ztf_points(record)
        stored = PhotometryReducedDatum.objects.filter(target=target)
        assert stored.filter(brightness__isnull=False).count() == detections
        assert stored.filter(limit__isnull=False).count() == limits
        assert set(stored.values_list("telescope", flat=True)) == {"ZTF"}
        assert_plot_shows(plot_of(astronomer, target), target)
        assert TargetExtra.objects.get(target=target, key="classtar").value


@pytest.mark.django_db
def test_process_reduced_data_twice_adds_nothing_twice():
    record = wire_record(LSST_PACKETS[0][1])
    alert = lighten_alert(record)
    target = Target.objects.create(name="t", type="SIDEREAL", ra=alert["ra"], dec=alert["dec"])
    BrokerStreamRest().process_reduced_data(target, alert)
    BrokerDatabasePython().process_reduced_data(target, alert)
    assert save_photometry(target, alert) == 0
    assert PhotometryReducedDatum.objects.filter(target=target).count() == expected_lsst_points(record)


@pytest.mark.django_db
def test_the_next_alert_of_an_object_grows_its_light_curve_without_repeating_points():
    major, minor = 10, 0
    first = make_lsst_alert(major, minor, index=0, seed=5)
    # The next night's alert: a new diaSource; the first one is now in its history.
    second = make_lsst_alert(major, minor, index=1, seed=5)
    second["diaObject"] = dict(first["diaObject"])
    second["diaSource"]["diaObjectId"] = first["diaSource"]["diaObjectId"]
    second["prvDiaSources"] = [first["diaSource"], *first["prvDiaSources"]]
    second["prvDiaForcedSources"] = first["prvDiaForcedSources"]
    first_alert = lighten_alert(decode_alert(serialize_wire_format(first, major, minor)))
    second_alert = lighten_alert(decode_alert(serialize_wire_format(second, major, minor)))
    target = create_or_update_target(first_alert)
    assert create_or_update_target(second_alert) == target
    assert create_or_update_target(first_alert) == target  # late redelivery: nothing rolls back
    assert PhotometryReducedDatum.objects.filter(target=target).count() == expected_lsst_points(first) + 1
    extras = dict(TargetExtra.objects.filter(target=target).values_list("key", "value"))
    assert float(extras["latest_jd"]) == round(second_alert["jd"], 6)
    assert Target.objects.count() == 1
