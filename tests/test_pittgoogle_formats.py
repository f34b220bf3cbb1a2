"""Every Pitt-Google topic, built as Pitt-Google builds it, decodes to the right common fields and classifier
outputs (issue 10); attributes fill what the data lacks; every value is validated (issue 11 items 1, 2, 4)."""

from __future__ import annotations

import io
import json
import math
import random
import uuid

import fastavro
import pytest
from astropy.time import Time

from tests.conftest import PITTGOOGLE_PROJECT, real_ztf_packets
from tom_pittgoogle.core.alerts import decode_alert, lighten_alert
from tom_pittgoogle.core.alerts.photometry import flux_to_mag
from tom_pittgoogle.demo import pittgoogle_formats as pgf
from tom_pittgoogle.demo.sample_alerts import make_alerts
from tom_pittgoogle.demo.sample_lsst import lsst_schema_versions, make_lsst_alert
from tom_pittgoogle.exceptions import DecodeError

LSST_PROJECT = "pitt-alert-broker"
ZTF_BANDS = {1: "g", 2: "r", 3: "i"}

# pittgoogle-client's field maps (pittgoogle/schemas/maps/ztf.yml and lsst.yml, release 0.3.23) and its
# Alert.get lookup (pittgoogle/alert.py): what the client reports for each generic field.
CLIENT_MAPS = {
    "ztf": {"objectid": "objectId", "sourceid": "candid", "source": "candidate", "filter": ["candidate", "fid"],
            "mag": ["candidate", "magpsf"], "mag_err": ["candidate", "sigmapsf"], "jd": ["candidate", "jd"],
            "ra": ["candidate", "ra"], "dec": ["candidate", "dec"]},
    "lsst": {"objectid": {"dia": ["diaObject", "diaObjectId"], "ss": ["ssSource", "ssObjectId"]},
             "sourceid": ["diaSource", "diaSourceId"], "ra": ["diaSource", "ra"], "dec": ["diaSource", "dec"],
             "filter": ["diaSource", "band"], "flux": ["diaSource", "psfFlux"], "mjd": ["diaSource", "midpointMjdTai"]},
}


def client_get(alert_dict: dict, survey: str, field: str):
    """pittgoogle-client's ``Alert.get`` on a survey's alert dict."""
    key = CLIENT_MAPS[survey][field]
    if isinstance(key, str):
        return alert_dict.get(key)
    if isinstance(key, dict):
        for path in key.values():
            value = (alert_dict.get(path[0]) or {}).get(path[1])
            if value:
                return value
        return None
    return (alert_dict.get(key[0]) or {}).get(key[1])


def expected_common(survey: str, record: dict) -> dict:
    """The common fields a source record must give, from the client's field map and the survey's units."""
    if survey == "ztf":
        return {
            "object_id": client_get(record, "ztf", "objectid"), "source_id": str(client_get(record, "ztf", "sourceid")),
            "jd": client_get(record, "ztf", "jd"), "ra": client_get(record, "ztf", "ra"),
            "dec": client_get(record, "ztf", "dec"), "band": ZTF_BANDS[client_get(record, "ztf", "filter")],
            "mag": client_get(record, "ztf", "mag"), "mag_err": client_get(record, "ztf", "mag_err"),
        }
    object_id = client_get(record, "lsst", "objectid") or record["diaSource"].get("ssObjectId")
    mjd = client_get(record, "lsst", "mjd")
    return {
        "object_id": str(object_id), "source_id": str(client_get(record, "lsst", "sourceid")),
        "jd": float(Time(mjd, format="mjd", scale="tai").utc.jd), "ra": client_get(record, "lsst", "ra"),
        "dec": client_get(record, "lsst", "dec"), "band": client_get(record, "lsst", "filter"),
        "mag": flux_to_mag(client_get(record, "lsst", "flux")),
    }


def assert_common(alert: dict, expected: dict) -> None:
    for field, value in expected.items():
        if isinstance(value, float):
            assert alert[field] == pytest.approx(value, rel=1e-6, abs=1e-6), field
        else:
            assert alert[field] == value, field


def ztf_records() -> list[tuple[str, dict, bytes | None]]:
    """The real packets (read in place) and generated ones: (name, record, original packet or None)."""
    real = [(name, next(iter(fastavro.reader(io.BytesIO(packet)))), packet) for name, packet in real_ztf_packets()]
    return real + [(f"generated-{i}", record, None) for i, record in enumerate(make_alerts(4, seed=21))]


ZTF_RECORDS = ztf_records()
ZTF_SHAPES = [(topic, variant) for topic, variants in pgf.TOPICS.items() if topic.startswith("ztf")
              for variant in variants]
LSST_SHAPES = [topic for topic in pgf.TOPICS if topic.startswith("lsst")]


@pytest.mark.parametrize(("topic", "variant"), ZTF_SHAPES)
@pytest.mark.parametrize("name_record", ZTF_RECORDS, ids=[name for name, _, _ in ZTF_RECORDS])
def test_every_ztf_topic_decodes_to_the_common_fields_the_client_reads(topic, variant, name_record):
    _, record, packet = name_record
    data, attributes = pgf.ztf_message(topic, record, variant=variant, packet=packet)
    alert = lighten_alert(decode_alert(data, topic, attributes), attributes=attributes)
    assert alert["survey"] == "ztf"
    assert_common(alert, expected_common("ztf", record))
    assert alert["objectId"] == record["objectId"] and alert["candid"] == record["candid"]
    history = [p for p in record.get("prv_candidates") or [] if p.get("magpsf") is not None or p.get("diffmaglim")]
    assert len(alert["photometry"]) == 1 + len(history)
    assert alert["attributes"] == attributes


@pytest.mark.parametrize("topic", LSST_SHAPES)
@pytest.mark.parametrize("major_minor", lsst_schema_versions(), ids=lambda v: f"v{v[0]}.{v[1]}")
@pytest.mark.parametrize("solar_system", [False, True], ids=["diaObject", "ssObject"])
def test_every_lsst_topic_decodes_to_the_common_fields_the_client_reads(topic, major_minor, solar_system):
    major, minor = major_minor
    record = make_lsst_alert(major, minor, index=3, n_previous=9, solar_system=solar_system)
    data, attributes = pgf.lsst_message(topic, record, major, minor)
    alert = lighten_alert(decode_alert(data, topic, attributes), attributes=attributes)
    assert alert["survey"] == "lsst"
    assert_common(alert, expected_common("lsst", record))
    assert alert["object_kind"] == ("ssObject" if solar_system else "diaObject")
    assert alert["schema_version"] == f"v{major}_{minor}"
    detections = 1 + len(record["prvDiaSources"])
    assert len([p for p in alert["photometry"] if p["kind"] == "detection" or p["flux"] is not None]) >= detections


def test_both_ztf_lite_generations_give_the_same_alert():
    _, record, _ = ZTF_RECORDS[0]
    newer = lighten_alert(decode_alert(pgf.serialize_json(pgf.ztf_lite(record))))
    older = lighten_alert(decode_alert(pgf.serialize_json(pgf.ztf_lite_cloud_functions(record))))
    common = ("object_id", "source_id", "jd", "ra", "dec", "band", "mag", "mag_err", "photometry")
    assert {k: newer[k] for k in common} == {k: older[k] for k in common}
    # the newer lite moves PS1 neighbours to "xmatch": they are read back as the candidate's
    assert newer["sgscore1"] == record["candidate"]["sgscore1"]


def test_supernnova_class_and_probabilities_become_scores_and_a_classifier_summary():
    rng = random.Random(4)
    for topic, variant in (("ztf-SuperNNova", "cloud_run"), ("ztf-SuperNNova", "cloud_functions"),
                           ("lsst-supernnova", None)):
        for data, attributes in pgf.messages(topic, 4, seed=rng.randrange(100), variant=variant):
            alert = lighten_alert(decode_alert(data), attributes=attributes)
            published = json.loads(data)["SuperNNova"]
            summary = alert["classifiers"]["supernnova"]
            if published["predicted_class"] is None:  # an LSST solar-system source is not classified
                assert summary["class"] is None and "supernnova_prob_class0" not in alert["scores"]
                continue
            assert alert["scores"]["supernnova_prob_class0"] == published["prob_class0"]
            assert alert["supernnova_prob_class1"] == published["prob_class1"]
            assert alert["scores"]["supernnova_predicted_class"] == published["predicted_class"]
            assert summary == {
                "class": "Ia" if published["predicted_class"] == 0 else "non-Ia",
                "probability": published[f"prob_class{published['predicted_class']}"],
                "score": None, "model": "SuperNNova", "version": None,
            }


def test_variability_stetson_j_per_band_and_the_pg_variable_rule():
    record = make_lsst_alert(10, 0, index=1, n_previous=60)
    for source in record["prvDiaSources"]:  # one band, strongly variable: "likely" by the module's rule
        source["band"] = "g"
        source["psfFlux"] = random.Random(source["diaSourceId"]).choice((2_000.0, 60_000.0))
        source["psfFluxErr"] = 100.0
    data, attributes = pgf.lsst_message("lsst-variability", record, 10, 0)
    assert attributes["pg_variable"] == "likely"
    published = json.loads(data)["variability"]
    for with_attributes in (attributes, None):  # the rule is applied from the data when the attribute is absent
        alert = lighten_alert(decode_alert(data), attributes=with_attributes)
        summary = alert["classifiers"]["variability"]
        assert summary["class"] == "likely"
        assert summary["score"] == max(v for k, v in published.items() if k.endswith("StetsonJ") and v is not None)
        assert alert["scores"]["variability_g_psffluxstetsonj"] == published["g_psfFluxStetsonJ"]
        assert alert["scores"]["variability_n_detections_g_band"] == published["n_detections_g_band"]
        assert alert["scores"]["variability_score"] == summary["score"]


def test_upsilon_doubly_nested_lite_and_its_best_band_label():
    record = make_lsst_alert(11, 1, index=2, n_previous=50)
    data, attributes = pgf.lsst_message("lsst-upsilon", record, 11, 1, rng=random.Random(3))
    message = json.loads(data)
    assert "alert_lite" in message["alert_lite"]  # as classify_upsilon/main.py publishes it
    upsilon = message["upsilon"]
    alert = lighten_alert(decode_alert(data), attributes=attributes)
    assert_common(alert, expected_common("lsst", record))
    bands = [b for b in "ugrizy" if upsilon[f"{b}_probability"] is not None]
    assert bands, "the sample must give UPSILoN enough points in some band"
    best = max(bands, key=lambda b: upsilon[f"{b}_probability"])
    assert alert["classifiers"]["upsilon"]["class"] == upsilon[f"{best}_label"]
    assert alert["classifiers"]["upsilon"]["probability"] == upsilon[f"{best}_probability"]
    assert alert["scores"][f"upsilon_{best}_probability"] == upsilon[f"{best}_probability"]
    assert "upsilon_diaobjectid" not in alert["scores"] and "upsilon_diasourceid" not in alert["scores"]


def test_xmatch_gaia_nearest_class_and_separations():
    for data, attributes in pgf.messages("lsst-xmatch", 8, seed=5):
        published = json.loads(data)["xmatch_gaia"]
        alert = lighten_alert(decode_alert(data), attributes=attributes)
        summary = alert["classifiers"]["xmatch_gaia"]
        assert summary["class"] == published["closest_gaia_source_class"]
        assert summary["score"] == published["closest_gaia_source_class_score"]
        if published["separation_to_closest_gaia_source"] is not None:
            assert alert["scores"]["xmatch_gaia_separation_to_closest_gaia_source"] == pytest.approx(
                published["separation_to_closest_gaia_source"])
        ids = {f"xmatch_gaia_{o}_gaia_source" for o in ("closest", "second_closest", "third_closest")}
        assert not ids & set(alert["scores"])  # Gaia source ids are not scores


def test_ztf_tagged_categories_from_the_attributes_become_scores():
    for data, attributes in pgf.messages("ztf-tagged", 4, seed=2):
        alert = lighten_alert(decode_alert(data), attributes=attributes)
        assert alert["scores"]["tag_is_pure"] == float(attributes["is_pure"])
        assert alert["scores"]["tag_is_extragalactic_transient"] == float(attributes["is_extragalactic_transient"])


def test_attributes_supply_ids_the_data_lacks_and_give_the_latency():
    record = make_lsst_alert(10, 0, index=4)
    data, attributes = pgf.lsst_message("lsst-lite", record, 10, 0)
    lite = json.loads(data)
    del lite["alert_lite"]["diaObject"]
    alert = lighten_alert(decode_alert(pgf.serialize_json(lite)), attributes=attributes)
    assert alert["object_id"] == attributes["diaObject_diaObjectId"] == str(record["diaObject"]["diaObjectId"])
    without = pgf.serialize_json(lite)
    with pytest.raises(DecodeError, match="object_id"):
        lighten_alert(decode_alert(without))
    assert alert["kafka_timestamp"] == int(attributes["kafka.timestamp"])
    exposure_unix = (alert["jd"] - 2440587.5) * 86400
    assert alert["latency_seconds"] == pytest.approx(int(attributes["kafka.timestamp"]) / 1000 - exposure_unix,
                                                     abs=1e-3)
    assert 30 <= alert["latency_seconds"] <= 600
    json.dumps(alert, allow_nan=False)  # JSON-safe, as stored


def test_ztf_ids_come_from_attributes_when_the_lite_has_none():
    _, record, _ = ZTF_RECORDS[-1]
    lite = pgf.ztf_lite(record)
    del lite["alert_lite"]["objectId"], lite["alert_lite"]["candid"]
    del lite["alert_lite"]["candidate"]["candid"]
    attributes = pgf.ztf_attributes(record)
    alert = lighten_alert(decode_alert(pgf.serialize_json(lite)), attributes=attributes)
    assert (alert["object_id"], alert["source_id"]) == (record["objectId"], str(record["candid"]))


def test_attributes_are_kept_bounded_as_strings():
    _, record, packet = ZTF_RECORDS[0]
    data, attributes = pgf.ztf_message("ztf-alerts", record, packet=packet)
    noisy = {**attributes, **{f"k{i:03d}": "x" * 5000 for i in range(200)}, "nul": "a\x00b"}
    alert = lighten_alert(decode_alert(data, attributes=noisy), attributes=noisy)
    assert len(alert["attributes"]) == 100  # Pub/Sub's own limit, the last entry counting those not kept
    assert alert["attributes"]["\u2026"] == f"{len(noisy) - 99} attributes not kept"
    assert all(isinstance(v, str) and len(v) <= 1024 and "\x00" not in v for v in alert["attributes"].values())
    # Kept, not dropped: the first 64 by key, each value cut to 1024 characters.
    kept = sorted(noisy)[:64]
    assert alert["attributes"] == {key: noisy[key][:1024] for key in kept}, "the message's attributes are kept"
    assert {key: attributes[key] for key in attributes if key in kept} != {}, "the message's own attributes"
    few = {**attributes, "nul": "a\x00b"}
    alert = lighten_alert(decode_alert(data, attributes=few), attributes=few)
    assert alert["attributes"] == {**attributes, "nul": "a\ufffdb"}, "every attribute of a message kept, NUL replaced"


def test_old_calls_without_attributes_still_work():
    data, _ = pgf.messages("ztf-alerts", 1, seed=1)[0]
    alert = lighten_alert(decode_alert(data))
    assert alert["attributes"] == {} and alert["kafka_timestamp"] is None and alert["latency_seconds"] is None
    assert alert["classifiers"] == {}


def test_lightening_a_lightened_alert_gives_it_back():
    for topic in ("ztf-SuperNNova", "lsst-variability", "lsst-xmatch"):
        data, attributes = pgf.messages(topic, 1, seed=8)[0]
        alert = lighten_alert(decode_alert(data), attributes=attributes)
        assert lighten_alert(alert) == alert
        assert lighten_alert(json.loads(json.dumps(alert))) == alert


# --- every bad value is a DecodeError that names the field -----------------------------------------


def _ztf_lite() -> dict:
    _, record, _ = ZTF_RECORDS[-1]
    return json.loads(pgf.serialize_json(pgf.ztf_lite(record)))


def _lsst_lite() -> dict:
    return json.loads(pgf.serialize_json(pgf.lsst_lite(make_lsst_alert(10, 0, index=5))))


def _set(packet: dict, path: str, value) -> dict:
    node = packet
    *parents, last = path.split(".")
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    node[last] = value
    return packet


BAD_VALUES = [
    # (packet builder, path, value, the field the reason must name)
    (_ztf_lite, "alert_lite.objectId", "</script><script>alert(1)</script>", "object_id"),
    (_ztf_lite, "alert_lite.objectId", "ZTF18abfkwnk" + "x" * 60, "object_id"),
    (_ztf_lite, "alert_lite.objectId", "ZTF18abf\x00wnk", "object_id"),
    (_ztf_lite, "alert_lite.objectId", "ZTF18abf\ud800wnk", "object_id"),
    (_ztf_lite, "alert_lite.objectId", ["ZTF18abfkwnk"], "object_id"),
    (_ztf_lite, "alert_lite.candid", -5, "source_id"),
    (_ztf_lite, "alert_lite.candid", "12ab", "source_id"),
    (_ztf_lite, "alert_lite.candid", 2**64, "source_id"),
    (_ztf_lite, "alert_lite.candidate.jd", "yesterday", "jd"),
    (_ztf_lite, "alert_lite.candidate.jd", 1e300, "jd"),
    (_ztf_lite, "alert_lite.candidate.jd", float("nan"), "jd"),
    (_ztf_lite, "alert_lite.candidate.jd", 2440000.5, "jd"),
    (_ztf_lite, "alert_lite.candidate.ra", 400.0, "ra"),
    (_ztf_lite, "alert_lite.candidate.ra", "12.5", "ra"),
    (_ztf_lite, "alert_lite.candidate.dec", -91.0, "dec"),
    (_ztf_lite, "alert_lite.candidate.fid", [1, 2], "band"),
    (_ztf_lite, "alert_lite.candidate.fid", 9, "band"),
    (_ztf_lite, "alert_lite.candidate.magpsf", "19.2", "mag"),
    (_ztf_lite, "alert_lite.candidate", [1, 2, 3], "candidate"),
    (_ztf_lite, "alert_lite.prv_candidates", [1, 2, 3], "prv_candidates"),
    (_ztf_lite, "alert_lite.prv_candidates", "none", "prv_candidates"),
    (_lsst_lite, "alert_lite.diaSource.midpointMjdTai", "61000", "midpointMjdTai"),
    (_lsst_lite, "alert_lite.diaSource.midpointMjdTai", 1e300, "midpointMjdTai"),
    (_lsst_lite, "alert_lite.diaSource.midpointMjdTai", -1e300, "midpointMjdTai"),
    (_lsst_lite, "alert_lite.diaSource.band", ["g"], "band"),
    (_lsst_lite, "alert_lite.diaSource.band", "g" * 17, "band"),
    (_lsst_lite, "alert_lite.diaSource.band", "q", "band"),
    (_lsst_lite, "alert_lite.diaSource.diaSourceId", 0, "source_id"),
    (_lsst_lite, "alert_lite.diaSource.psfFlux", "bright", "psfFlux"),
    (_lsst_lite, "alert_lite.diaObject.diaObjectId", "1; DROP TABLE", "object_id"),
    (_lsst_lite, "alert_lite.prvDiaSources", [[1], [2]], "prvDiaSources"),
    (_lsst_lite, "alert_lite.diaSource", "here", "diaSource"),
]


@pytest.mark.parametrize(("build", "path", "value", "field"), BAD_VALUES,
                         ids=[f"{path}={str(value)[:20]!r}" for _, path, value, _ in BAD_VALUES])
def test_a_bad_value_is_a_decode_error_naming_its_field(build, path, value, field):
    packet = _set(build(), path, value)
    data = json.dumps(packet).encode("utf-8", "surrogatepass")
    with pytest.raises(DecodeError, match=field):
        lighten_alert(decode_alert(data))


def test_json_nested_too_deep_is_a_decode_error():
    for depth in (40, 1_000, 100_000):
        with pytest.raises(DecodeError, match="nested|deep"):
            lighten_alert(decode_alert(b'{"a":' + b"[" * depth + b"]" * depth + b"}"))


def test_a_packet_posing_as_a_lightened_alert_is_validated_like_any_other():
    alert = lighten_alert(decode_alert(pgf.messages("ztf-alerts", 1, seed=3)[0][0]))
    forged = {**alert, "object_id": "</script><script>alert(1)</script>"}
    with pytest.raises(DecodeError, match="object_id"):
        lighten_alert(decode_alert(json.dumps(forged).encode()))
    forged = {**alert, "source_id": "x" * 80}
    with pytest.raises(DecodeError, match="source_id"):
        lighten_alert(forged)


def test_an_optional_value_out_of_range_is_dropped_and_named_in_a_warning(caplog):
    packet = _set(_ztf_lite(), "alert_lite.candidate.magpsf", 1e308)
    alert = lighten_alert(decode_alert(json.dumps(packet).encode()))
    assert alert["mag"] is None and alert["object_id"]
    assert "mag (magpsf)" in caplog.text


def test_impossible_history_points_are_dropped_not_the_alert():
    packet = _lsst_lite()
    packet["alert_lite"]["prvDiaSources"][0]["midpointMjdTai"] = 1e300
    packet["alert_lite"]["prvDiaSources"][1]["band"] = ["r"]
    alert = lighten_alert(decode_alert(json.dumps(packet).encode()))
    good = lighten_alert(decode_alert(pgf.serialize_json(pgf.lsst_lite(make_lsst_alert(10, 0, index=5)))))
    assert len(alert["photometry"]) == len(good["photometry"]) - 2
    assert all(math.isfinite(p["jd"]) for p in alert["photometry"])


# --- the whole path, on the real protocol ---------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(("topic", "project"), [
    ("ztf-lite", PITTGOOGLE_PROJECT), ("ztf-SuperNNova", PITTGOOGLE_PROJECT), ("lsst-lite", LSST_PROJECT),
    ("lsst-supernnova", LSST_PROJECT), ("lsst-variability", LSST_PROJECT), ("lsst-upsilon", LSST_PROJECT),
    ("lsst-xmatch", LSST_PROJECT),
])
def test_lite_and_classifier_topics_through_the_pubsub_emulator_rest_route(pubsub_emulator, topic, project):
    from tom_pittgoogle.core.pubsub import publisher_client
    from tom_pittgoogle.models import Alert
    from tom_pittgoogle.routes.stream_rest import ConsumerStreamRest

    name = f"{topic}-{uuid.uuid4().hex[:8]}"
    client = publisher_client()
    client.create_topic(name=f"projects/{project}/topics/{name}")
    consumer = ConsumerStreamRest(name, survey="ztf" if topic.startswith("ztf") else "lsst")  # subscribes
    messages = pgf.messages(topic, 6, seed=13)
    futures = [client.publish(f"projects/{project}/topics/{name}", data, **attributes)
               for data, attributes in messages]
    for future in futures:
        future.result(timeout=30)
    alerts = consumer.pull_alerts(max_results=len(messages) + 3, max_wait=1)
    expected = {lighten_alert(decode_alert(d), attributes=a)["source_id"]: lighten_alert(decode_alert(d))
                for d, a in messages}
    assert sorted(a["source_id"] for a in alerts) == sorted(expected)
    for alert in alerts:
        assert alert["classifiers"] == expected[alert["source_id"]]["classifiers"]
        stored = Alert.objects.get(survey=alert["survey"], source_id=alert["source_id"])
        assert stored.alert["classifiers"] == alert["classifiers"]
        assert stored.alert["scores"] == alert["scores"]


# --- shown on the results page, in the Target's extras and the brokers' score -------------------------


@pytest.mark.django_db
def test_results_table_shows_each_classifier_class_and_probability_escaped():
    from django.template.loader import render_to_string

    from tom_pittgoogle.adapters.dataservices import PittGoogleDataService

    rows = []
    for topic in ("ztf-SuperNNova", "lsst-xmatch", "lsst-variability"):
        data, attributes = pgf.messages(topic, 1, seed=6)[0]
        rows.append(PittGoogleDataService.result_row(lighten_alert(decode_alert(data), attributes=attributes)))
    packet = json.loads(pgf.messages("lsst-xmatch", 1, seed=6)[0][0])
    packet["xmatch_gaia"]["closest_gaia_source_class"] = "<script>alert(1)</script>"
    packet["xmatch_gaia"]["closest_gaia_source_class_score"] = 0.25
    rows.append(PittGoogleDataService.result_row(lighten_alert(decode_alert(json.dumps(packet).encode()))))
    html = render_to_string("tom_pittgoogle/partials/dataservice_results_table.html", {"results": rows})
    assert "Class (p)" in html
    snn = rows[0]["alert"]["classifiers"]["supernnova"]
    assert f"supernnova: {snn['class']} ({snn['probability']:.2f})" in html
    variability = rows[2]["alert"]["classifiers"]["variability"]
    assert f"variability: {variability['class']} ({variability['score']:.2f})" in html
    assert "<script>alert(1)</script>" not in html
    assert "xmatch_gaia: &lt;script&gt;alert(1)&lt;/script&gt; (0.25)" in html


def test_target_extras_and_the_brokers_score_carry_the_classifier_output():
    from tom_pittgoogle.adapters.broker_base import alert_to_generic_alert
    from tom_pittgoogle.core.targets import target_extras

    data, attributes = pgf.messages("lsst-supernnova", 1, seed=9)[0]
    alert = lighten_alert(decode_alert(data), attributes=attributes)
    extras = target_extras(alert)
    snn = alert["classifiers"]["supernnova"]
    assert extras["supernnova_class"] == snn["class"]
    assert extras["supernnova_prob_class0"] == round(alert["scores"]["supernnova_prob_class0"], 4)  # rounded
    assert alert_to_generic_alert(alert).score == snn["probability"]  # the lite alert has no reliability
    assert alert_to_generic_alert(alert).score_name == "supernnova probability"
