"""The cone, time window and classifier filters: one spec, the same answer on every route and in the ingester."""

from __future__ import annotations

import datetime as dt
import uuid

import astropy.units as u
import numpy as np
import pytest
from astropy.coordinates import SkyCoord
from astropy.time import Time
from django import forms

from tests.conftest import PITTGOOGLE_PROJECT, create_topic, publisher
from tom_pittgoogle.adapters.broker_stream_rest import FilterAlertsForm as RestForm
from tom_pittgoogle.adapters.dataservices import PittGoogleQueryForm
from tom_pittgoogle.core.alerts import lighten_alert
from tom_pittgoogle.core.engine import Stream, alert_filter
from tom_pittgoogle.core.filters import AlertFilter, ConeFilter, PredictedClassFilter, ScoreFilter, TimeWindow
from tom_pittgoogle.demo.bigquery_tables import (
    bigquery_client,
    create_alerts_table,
    create_lsst_alerts_table,
    load_alerts,
    lsst_table_columns,
)
from tom_pittgoogle.demo.sample_alerts import ZTF_ALERT_SCHEMA, make_alert, serialize_alert
from tom_pittgoogle.demo.sample_lsst import lsst_alert_schema, make_lsst_alert, serialize_wire_format
from tom_pittgoogle.exceptions import ConfigurationError
from tom_pittgoogle.routes.database_python import ConsumerDatabasePython, clear_caches
from tom_pittgoogle.routes.stream_rest import ConsumerStreamRest

LSST_PROJECT = "pitt-alert-broker"
CENTRE = (210.0, -12.0)


def lightened_alert(**fields) -> dict:
    """A lightened alert with the fields the filters read (the contract of tom_pittgoogle.core.alerts)."""
    return {"survey": "lsst", "object_id": "1", "source_id": "2", "ra": CENTRE[0], "dec": CENTRE[1],
            "jd": 2461000.5, "scores": {}, "classifiers": {}, **fields}


def moved(arcsec: float, angle: float = 30.0) -> tuple[float, float]:
    point = SkyCoord(*CENTRE, unit="deg").directional_offset_by(angle * u.deg, arcsec * u.arcsec)
    return float(point.ra.deg), float(point.dec.deg)


# -- the filters on lightened alerts -------------------------------------------------------------------------------


def test_a_cone_keeps_exactly_the_alerts_within_its_radius_by_true_angular_distance():
    cone = ConeFilter(*CENTRE, 10.0)
    rng = np.random.default_rng(3)
    for arcsec, angle in zip(rng.uniform(0, 20, 300), rng.uniform(0, 360, 300), strict=True):
        ra, dec = moved(arcsec, angle)
        separation = SkyCoord(ra, dec, unit="deg").separation(SkyCoord(*CENTRE, unit="deg")).arcsec
        assert cone.passes(lightened_alert(ra=ra, dec=dec)) == bool(separation <= 10.0)
    # Across ra = 0 and near the pole, where a box on ra would be wrong.
    assert ConeFilter(359.9995, 0.0, 5.0).passes(lightened_alert(ra=0.0004, dec=0.0))
    assert ConeFilter(45.0, 89.9995, 5.0).passes(lightened_alert(ra=225.0, dec=89.9995))
    assert not ConeFilter(*CENTRE, 10.0).passes(lightened_alert(ra=None, dec=None))


def test_a_time_window_keeps_alerts_from_its_start_up_to_not_including_its_end():
    start = dt.datetime(2025, 11, 15, 3, 0, tzinfo=dt.UTC)
    window = TimeWindow(start, start + dt.timedelta(hours=1))
    jd_start = Time("2025-11-15T03:00:00", scale="utc").jd
    assert window.passes(lightened_alert(jd=jd_start))
    assert window.passes(lightened_alert(jd=jd_start + 0.04))
    assert not window.passes(lightened_alert(jd=jd_start + 1 / 24))
    assert not window.passes(lightened_alert(jd=jd_start - 1e-6))
    assert not window.passes(lightened_alert(jd=None))
    with pytest.raises(ValueError, match="before its end"):
        TimeWindow(start, start)


def test_a_score_filter_reads_any_key_of_the_alerts_scores():
    score = ScoreFilter("supernnova_prob_class0", 0.8)
    assert score.passes(lightened_alert(scores={"supernnova_prob_class0": 0.83}))
    assert not score.passes(lightened_alert(scores={"supernnova_prob_class0": 0.79}))
    assert not score.passes(lightened_alert(scores={"reliability": 0.99}))
    assert not score.passes(lightened_alert(scores={"supernnova_prob_class0": None}))


def test_a_predicted_class_matches_any_classifier_whatever_the_case():
    wanted = PredictedClassFilter("sn ia")
    snn = {"supernnova": {"class": "SN Ia", "probability": 0.9, "version": "1.3"}}
    assert wanted.passes(lightened_alert(classifiers=snn))
    assert wanted.passes(lightened_alert(classifiers={"other": {"class": "AGN"}, **snn}))
    assert not wanted.passes(lightened_alert(classifiers={"supernnova": {"class": "SN II"}}))
    assert not wanted.passes(lightened_alert())


def test_the_filter_of_form_parameters_combines_every_part():
    ra, dec = moved(3.0)
    spec = AlertFilter.from_parameters({
        "cone_ra": CENTRE[0], "cone_dec": CENTRE[1], "cone_radius_arcsec": 5, "score_name": "reliability",
        "score_min": 0.5, "predicted_class": "SN Ia", "start_time": "2025-11-15T00:00:00+00:00",
        "end_time": "2025-11-16T00:00:00Z",
    })
    inside = lightened_alert(ra=ra, dec=dec, jd=Time("2025-11-15T12:00", scale="utc").jd,
                             scores={"reliability": 0.7}, classifiers={"snn": {"class": "sn ia"}})
    assert spec(inside) is inside
    for changed in ({"scores": {"reliability": 0.2}}, {"classifiers": {}}, {"ra": CENTRE[0] + 0.01},
                    {"jd": Time("2025-11-16T00:00", scale="utc").jd}):
        assert spec({**inside, **changed}) is None


def test_forms_take_the_filters_and_check_them():
    data = {"query_name": "q", "broker": "Pitt-Google StreamRest", "classtar_gt_lt": "lt", "max_results": 5,
            "cone_ra": 10, "cone_dec": 5}
    form = RestForm(data=data)
    assert not form.is_valid() and "cone_radius_arcsec" in form.errors
    form = RestForm(data={**data, "cone_radius_arcsec": 3, "start_time": "2025-01-02 00:00",
                          "end_time": "2025-01-01 00:00"})
    assert not form.is_valid() and "end_time" in form.errors
    form = RestForm(data={**data, "cone_radius_arcsec": 3, "start_time": "2025-01-01 00:00",
                          "score_name": "drb", "score_min": 0.9})
    assert form.is_valid(), form.errors
    assert form.cleaned_data["start_time"] == "2025-01-01T00:00:00+00:00"  # UTC, as JSON can store it
    service_form = PittGoogleQueryForm(data={"route": "bigquery", "survey": "ztf", "max_results": 5,
                                             "classtar_gt_lt": "lt", "predicted_class": "SN Ia"})
    assert not service_form.is_valid() and "predicted_class" in service_form.errors
    assert isinstance(PittGoogleQueryForm().fields["cone_ra"], forms.FloatField)


def test_the_ingester_takes_the_filters_from_settings_and_command_options():
    stream = Stream.from_setting({"subscription": "lsst-alerts", "survey": "lsst", "filter": {
        "cone_ra": CENTRE[0], "cone_dec": CENTRE[1], "cone_radius_arcsec": 5, "start_time": "2025-11-15T00:00Z",
        "predicted_class": "SN Ia"}})
    assert stream.callback.selection.cone == ConeFilter(*CENTRE, 5.0)
    assert stream.callback.selection.time.start == dt.datetime(2025, 11, 15, tzinfo=dt.UTC)
    assert stream.callback.selection.predicted_class == PredictedClassFilter("SN Ia")
    with pytest.raises(ConfigurationError, match="all three"):
        alert_filter({"cone_ra": 1.0, "cone_dec": 2.0})
    with pytest.raises(ConfigurationError, match="unknown filter fields"):
        alert_filter({"cone": [1, 2, 3]})
    assert alert_filter({"cone_ra": None, "score_name": ""}) is None


def test_the_command_turns_its_options_into_the_same_filter():
    from tom_pittgoogle.management.commands.pittgoogle_stream import Command

    command = Command()
    parser = command.create_parser("manage.py", "pittgoogle_stream")
    options = vars(parser.parse_args([
        "--subscription", "ztf-loop", "--cone", "10", "20", "5", "--start", "2025-11-15T03:00",
        "--end", "2025-11-15T04:00", "--score-name", "drb", "--score-min", "0.9", "--predicted-class", "SN Ia",
    ]))
    (stream,) = command._streams(options)
    assert stream.callback.selection.cone == ConeFilter(10.0, 20.0, 5.0)
    assert stream.callback.selection.predicted_class == PredictedClassFilter("SN Ia")
    assert stream.callback.selection.score == ScoreFilter("drb", 0.9)
    assert stream.callback.selection.time == TimeWindow(dt.datetime(2025, 11, 15, 3, tzinfo=dt.UTC),
                                                        dt.datetime(2025, 11, 15, 4, tzinfo=dt.UTC))


# -- the same alerts through a stream route and through BigQuery ---------------------------------------------------


def ztf_records() -> list[dict]:
    rng = np.random.default_rng(21)
    records = []
    for i, arcsec in enumerate([0.5, 2.0, 4.0, 6.0, 9.0, 3.0, 1.0, 40.0]):
        record = make_alert(rng, jd=2460600.5 + i * 0.5)
        record["candidate"]["ra"], record["candidate"]["dec"] = moved(arcsec, 45.0 * i)
        records.append(record)
    return records


def lsst_records() -> list[dict]:
    records = []
    for i, arcsec in enumerate([0.5, 2.0, 4.0, 6.0, 9.0, 3.0, 1.0, 40.0]):
        record = make_lsst_alert(11, 1, index=i, seed=5)
        for source in [record["diaSource"], *record["prvDiaSources"]]:
            source["ra"], source["dec"] = moved(arcsec, 45.0 * i)
        records.append(record)
    return records


@pytest.mark.django_db
@pytest.mark.parametrize("survey", ["ztf", "lsst"])
def test_the_same_filter_gives_the_same_alerts_through_a_stream_and_through_bigquery(
    survey, pubsub_emulator, bigquery_emulator, settings
):
    if survey == "ztf":
        records, project = ztf_records(), PITTGOOGLE_PROJECT
        packets = [serialize_alert(record) for record in records]
    else:
        records, project = lsst_records(), LSST_PROJECT
        packets = [serialize_wire_format(record, 11, 1) for record in records]
    alerts = [lighten_alert(record) for record in records]
    jds = sorted(alert["jd"] for alert in alerts)
    as_utc = [Time(jd, format="jd", scale="utc").to_datetime(timezone=dt.UTC).isoformat()
              for jd in ((jds[1] + jds[2]) / 2, (jds[6] + jds[7]) / 2)]
    parameters = {"cone_ra": CENTRE[0], "cone_dec": CENTRE[1], "cone_radius_arcsec": 5.0,
                  "start_time": as_utc[0], "end_time": as_utc[1], "max_results": 100}
    spec = AlertFilter.from_parameters(parameters)
    expected = sorted(alert["source_id"] for alert in alerts if spec.passes(alert))
    assert 0 < len(expected) < len(alerts) - 2  # both the cone and the window leave some out

    # BigQuery: a table of the survey's shape holding these alerts.
    dataset = f"{project}.{survey}_same_{uuid.uuid4().hex[:8]}"
    client = bigquery_client(bigquery_emulator.endpoint, project)
    if survey == "ztf":
        table = create_alerts_table(client, f"{dataset}.alerts_v4_02", ZTF_ALERT_SCHEMA)
        load_alerts(client, table, records)
        settings.PITTGOOGLE_BIGQUERY_DATASET = dataset
    else:
        table = create_lsst_alerts_table(client, f"{dataset}.alerts_v11_1", lsst_alert_schema(11, 1))
        load_alerts(client, table, records, extra=lsst_table_columns)
        settings.PITTGOOGLE_LSST_BIGQUERY_DATASET = dataset
    clear_caches()
    searched = ConsumerDatabasePython(survey=survey).query_alerts(parameters)

    # A stream: the same packets published to a Pitt-Google topic, pulled with the same filter.
    topic = create_topic(project, f"{survey}-same")
    consumer = ConsumerStreamRest(topic, survey=survey)  # creates the subscription: it gets what comes next
    publisher(project)(topic, packets)
    pulled = consumer.pull_alerts(len(packets), callback=spec, max_wait=2)

    assert sorted(alert["source_id"] for alert in searched) == expected
    assert sorted(alert["source_id"] for alert in pulled) == expected
