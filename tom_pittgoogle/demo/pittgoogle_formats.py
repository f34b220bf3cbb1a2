"""Each Pitt-Google topic's messages (data bytes + attributes), built the way Pitt-Google's own code builds them.

The source file each builder follows (GitHub ``mwvgroup/Pitt-Google-Broker`` unless said otherwise):

==================  ==========================================================================================
topic               built by
==================  ==========================================================================================
ztf-alerts/-loop    ZTF's Avro container file, unchanged (``broker/consumer``); attributes ``kafka.*``,
                    ``objectId``, ``candid``
ztf-lite (newer)    ``broker/cloud_run/ztf/lite/main.py``: ``{"alert_lite": {objectId, candid, candidate,
                    prv_candidates}, "xmatch": {...}}``, candidate fields whitelisted
ztf-lite (older)    ``broker/cloud_functions/ztf/lite/main.py``: ``{"alertIds", "source", "prvSources",
                    "xmatch"}`` with ``mag``/``magerr``/``magzp``/``filter``/``sourceId``
ztf-tagged          ``broker/cloud_run/ztf/tag/main.py``: the alert as JSON, categories as attributes
ztf-SuperNNova      ``broker/cloud_run/ztf/classify_snn/main.py`` (``{**lite, "SuperNNova": {...}}``, attribute
                    ``pg_supernnova_class``); older: ``broker/cloud_functions/classify_snn/main.py``
                    (``supernnova_class``)
lsst-alerts         Confluent wire-format Avro (``broker/cloud_run/lsst/ps_to_storage/main.py``)
lsst-alerts-json    the same alert through pittgoogle-client's ``Serializers.serialize_json``
lsst-lite           ``ps_to_storage/main.py`` ``_create_lite_alert``: ``{"alert_lite": alert without cutouts,
                    diaSource/prvDiaSources/diaObject fields whitelisted}``
lsst-supernnova     ``broker/cloud_run/lsst/classify_snn/main.py``
lsst-variability    ``broker/cloud_run/lsst/variability/main.py`` (Stetson J computed here as there)
lsst-upsilon        ``broker/cloud_run/lsst/classify_upsilon/main.py`` (which nests ``alert_lite`` twice)
lsst-xmatch         ``broker/cloud_run/lsst/xmatch/main.py`` (``xmatch_gaia``)
==================  ==========================================================================================

LSST attributes follow pittgoogle-client's ``Alert._add_attributes`` (``pittgoogle/alert.py``):
``diaObject_diaObjectId`` or ``ssSource_ssObjectId``, ``diaSource_diaSourceId``, ``schema_version``,
``n_previous_detections`` (the healpix attributes need hpgeom and are left out), plus ``kafka.*``; every value a
string, as ``pittgoogle.Topic.publish`` makes it (``str(value)``, so None is ``"None"``).

The classifiers' models (SuperNNova, UPSILoN, the Gaia catalogue) are not run here: their outputs are drawn from
a seeded generator in the shapes the modules publish. Stetson J (lsst-variability) is computed as the module does.

Use :func:`messages` for a topic's messages, or the builders on records of your own (for example the real ZTF
packets in ``../shared/data/ztf/alerts``, decoded).
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import math
import random
from collections.abc import Mapping
from typing import Any

from tom_pittgoogle.demo.sample_alerts import make_alerts, serialize_alert
from tom_pittgoogle.demo.sample_lsst import lsst_schema_versions, make_lsst_alert, serialize_wire_format

__all__ = [
    "TOPICS",
    "messages",
    "serialize_json",
    "ztf_attributes",
    "ztf_lite",
    "ztf_lite_cloud_functions",
    "ztf_supernnova",
    "ztf_tagged",
    "lsst_attributes",
    "lsst_lite",
    "lsst_supernnova",
    "lsst_variability",
    "lsst_upsilon",
    "lsst_xmatch",
]

Message = tuple[bytes, dict[str, str]]
JD_UNIX_EPOCH = 2440587.5
MJD_TO_JD = 2400000.5


# --- serialisation ------------------------------------------------------------------------------------


def _clean_for_json(value: Any) -> Any:
    # pittgoogle-client's Serializers._clean_for_json (pittgoogle/schema.py): NaN/inf -> None, bytes -> base64,
    # datetimes -> epoch seconds; tuples become JSON arrays as json.dumps makes them.
    if isinstance(value, float):
        return None if math.isnan(value) or math.isinf(value) else value
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("utf-8")
    if isinstance(value, dt.datetime):
        return value.timestamp()
    if isinstance(value, (list, tuple)):
        return [_clean_for_json(v) for v in value]
    if isinstance(value, dict):
        return {k: _clean_for_json(v) for k, v in value.items()}
    return value


def serialize_json(alert_dict: Mapping[str, Any]) -> bytes:
    """``Serializers.serialize_json`` of pittgoogle-client: what every JSON topic carries."""
    return json.dumps(_clean_for_json(dict(alert_dict))).encode("utf-8")


def _strings(attributes: Mapping[str, Any]) -> dict[str, str]:
    # pittgoogle.Topic.publish: {str(key): str(value) for key in sorted(attributes)}
    return {str(key): str(attributes[key]) for key in sorted(attributes)}


def _kafka(topic: str, offset: int, exposure_jd: float, rng: random.Random) -> dict[str, str]:
    published_ms = round(((exposure_jd - JD_UNIX_EPOCH) * 86400.0 + rng.uniform(30, 600)) * 1000)
    return {"kafka.topic": topic, "kafka.partition": str(offset % 16), "kafka.offset": str(offset),
            "kafka.timestamp": str(published_ms)}


# --- ZTF ------------------------------------------------------------------------------------------------

#: ``broker/cloud_run/ztf/lite/main.py`` ``_get_fields``.
ZTF_LITE_SOURCE_FIELDS = ("jd", "candid", "ra", "dec", "magpsf", "sigmapsf", "magzpsci", "magzpsciunc",
                          "diffmaglim", "isdiffpos", "rb", "drb", "nbad", "fwhm", "elong", "magdiff", "fid")
ZTF_LITE_XMATCH_FIELDS = ("ssdistnr", "ssmagnr", "objectidps1", "distpsnr1", "sgscore1", "objectidps2",
                          "distpsnr2", "sgscore2", "objectidps3", "distpsnr3", "sgscore3")


def ztf_attributes(record: Mapping[str, Any], *, offset: int = 0, rng: random.Random | None = None) -> dict[str, str]:
    """What Pitt-Google's ZTF consumer attaches: the Kafka coordinates plus ``objectId`` and ``candid``."""
    rng = rng or random.Random(offset)
    jd = record["candidate"]["jd"]
    night = dt.datetime.fromtimestamp((jd - JD_UNIX_EPOCH) * 86400, dt.UTC).strftime("%Y%m%d")
    return _strings({**_kafka(f"ztf_{night}_programid1", offset, jd, rng), "objectId": record["objectId"],
                     "candid": record["candid"]})


def _pick(source: Mapping[str, Any] | None, fields: tuple[str, ...]) -> dict | None:
    if source is None:
        return None
    return {k: v for k, v in source.items() if k in fields}


def ztf_lite(record: Mapping[str, Any]) -> dict:
    """``broker/cloud_run/ztf/lite/main.py`` ``_create_lite_alert``."""
    return {
        "alert_lite": {
            "objectId": record["objectId"],
            "candid": record["candid"],
            "candidate": _pick(record["candidate"], ZTF_LITE_SOURCE_FIELDS),
            "prv_candidates": tuple(_pick(p, ZTF_LITE_SOURCE_FIELDS) for p in record.get("prv_candidates") or []),
        },
        "xmatch": _pick(record["candidate"], ZTF_LITE_XMATCH_FIELDS),
    }


def _old_lite_source(source: Mapping[str, Any], *, drb: bool) -> dict:
    # broker/cloud_functions/ztf/lite/main.py semantic_compression (schema map: sourceId=candid, mag=magpsf,
    # magerr=sigmapsf, magzp=magzpsci, filter=fid); prvSources have no drb.
    entry = {
        "jd": source["jd"], "sourceId": source.get("candid"), "ra": source.get("ra"), "dec": source.get("dec"),
        "mag": source.get("magpsf"), "magerr": source.get("sigmapsf"), "magzp": source.get("magzpsci"),
        "magzpsciunc": source.get("magzpsciunc"), "diffmaglim": source.get("diffmaglim"),
        "isdiffpos": source.get("isdiffpos"), "rb": source.get("rb"), "nbad": source.get("nbad"),
        "fwhm": source.get("fwhm"), "elong": source.get("elong"), "magdiff": source.get("magdiff"),
        "filter": source.get("fid"),
    }
    if drb:
        entry["drb"] = source.get("drb")
    return entry


def ztf_lite_cloud_functions(record: Mapping[str, Any]) -> dict:
    """The older ztf-lite: ``broker/cloud_functions/ztf/lite/main.py`` ``semantic_compression``."""
    source = record["candidate"]
    return {
        "alertIds": {"sourceId": record["candid"], "objectId": record["objectId"]},  # types._AlertIds order
        "source": _old_lite_source(source, drb=True),
        "prvSources": tuple(_old_lite_source(p, drb=False) for p in record.get("prv_candidates") or []),
        "xmatch": {k: source.get(k) for k in ZTF_LITE_XMATCH_FIELDS},
    }


def _is_pure(source: Mapping[str, Any]) -> dict[str, int]:
    # broker/cloud_run/ztf/tag/main.py _is_pure
    checks = {
        "rb": (source.get("rb") or 0) >= 0.65,
        "nbad": source.get("nbad") == 0,
        "fwhm": (source.get("fwhm") or 99) <= 5,
        "elong": (source.get("elong") or 99) <= 1.2,
        "magdiff": abs(source.get("magdiff") or 99) <= 0.1,
    }
    return {"is_pure": int(all(checks.values())), **{k: int(v) for k, v in checks.items()}}


def ztf_tagged(record: Mapping[str, Any], attributes: Mapping[str, str]) -> Message:
    """``broker/cloud_run/ztf/tag/main.py``: the alert dict republished as JSON, categories as attributes."""
    source = record["candidate"]
    distpsnr1, sgscore1, ssdistnr = source.get("distpsnr1"), source.get("sgscore1"), source.get("ssdistnr")
    no_pointsource = True if distpsnr1 is None or distpsnr1 > 1.5 else (sgscore1 or 0) < 0.5
    detections = sorted(p["jd"] for p in [source, *(record.get("prv_candidates") or [])]
                        if p.get("isdiffpos") == "t")
    gaps = [later - earlier for earlier, later in zip(detections, detections[1:], strict=False)]
    not_moving = bool(gaps) and max(gaps) >= 30 / 1440  # 30 minutes, in days
    no_ssobject = ssdistnr is None or ssdistnr < 0 or ssdistnr > 5
    positive = source.get("isdiffpos") in ("t", 1)
    extragalactic = {
        "is_extragalactic_transient": int(positive and no_pointsource and not_moving and no_ssobject),
        "is_positive_sub": int(positive), "no_pointsource_counterpart": int(no_pointsource),
        "not_moving": int(not_moving), "no_ssobject": int(no_ssobject),
    }
    tags = {**attributes, **_is_pure(source), **extragalactic, "fid": source["fid"]}
    return serialize_json(record), _strings(tags)


def _snn_output(rng: random.Random, solar_system: bool = False) -> dict:
    if solar_system:  # broker/cloud_run/lsst/classify_snn/main.py: no classification of ssObjects
        return {"prob_class0": None, "prob_class1": None, "predicted_class": None}
    p0 = rng.random()
    probabilities = [p0, 1 - p0]
    return {"prob_class0": p0, "prob_class1": 1 - p0, "predicted_class": probabilities.index(max(probabilities))}


def ztf_supernnova(lite: Mapping[str, Any], attributes: Mapping[str, str], rng: random.Random, *,
                   older: bool = False) -> Message:
    """``{**lite, "SuperNNova": {prob_class0, prob_class1, predicted_class}}``; attribute ``pg_supernnova_class``
    (``broker/cloud_run/ztf/classify_snn/main.py``) or, from the older cloud function, ``supernnova_class``."""
    snn = _snn_output(rng)
    key = "supernnova_class" if older else "pg_supernnova_class"
    return serialize_json({**lite, "SuperNNova": snn}), _strings({**attributes, key: snn["predicted_class"]})


# --- Rubin/LSST -----------------------------------------------------------------------------------------

#: ``broker/cloud_run/lsst/ps_to_storage/main.py`` ``LITE_FIELDS_CONFIG``.
LSST_LITE_SOURCE_FIELDS = ("diaSourceId", "midpointMjdTai", "ra", "raErr", "dec", "decErr", "psfFlux",
                           "psfFluxErr", "band")
LSST_LITE_OBJECT_FIELDS = ("diaObjectId", "lastDiaSourceMjdTai", "firstDiaSourceMjdTai", "nDiaSources",
                           "u_psfFluxErrMean", "g_psfFluxErrMean", "r_psfFluxErrMean", "i_psfFluxErrMean",
                           "z_psfFluxErrMean", "y_psfFluxErrMean")
LSST_CUTOUTS = ("cutoutScience", "cutoutTemplate", "cutoutDifference")
UPSILON_LABELS = ("RRL_ab", "RRL_c", "CEPH_F", "CEPH_1O", "T2CEPH", "DSCT", "EB_EC", "EB_ED", "EB_ESD",
                  "LPV_Mira_AGB_C", "LPV_SRV_AGB_O", "NonVar")


def lsst_attributes(record: Mapping[str, Any], major: int, minor: int, *, offset: int = 0,
                    rng: random.Random | None = None) -> dict[str, str]:
    """pittgoogle-client's ``Alert._add_attributes`` for an LSST alert, plus the Kafka coordinates."""
    rng = rng or random.Random(offset)
    source = record["diaSource"]
    attributes: dict[str, Any] = _kafka("alerts-simulated", offset, source["midpointMjdTai"] + MJD_TO_JD, rng)
    dia_object = (record.get("diaObject") or {}).get("diaObjectId")
    ss_object = (record.get("ssSource") or {}).get("ssObjectId") or source.get("ssObjectId")
    if dia_object:
        attributes["diaObject_diaObjectId"] = dia_object
    elif ss_object:
        attributes["ssSource_ssObjectId"] = ss_object
    attributes["diaSource_diaSourceId"] = source["diaSourceId"]
    attributes["schema_version"] = f"v{major}_{minor}"
    attributes["n_previous_detections"] = len(record.get("prvDiaSources") or [])
    return _strings(attributes)


def lsst_lite(record: Mapping[str, Any]) -> dict:
    """``{"alert_lite": ...}`` as ``_create_lite_alert`` in ``broker/cloud_run/lsst/ps_to_storage/main.py``."""
    lite = {k: v for k, v in record.items() if k not in LSST_CUTOUTS}
    lite["diaSource"] = _pick(record.get("diaSource") or {}, LSST_LITE_SOURCE_FIELDS)
    lite["prvDiaSources"] = [_pick(p or {}, LSST_LITE_SOURCE_FIELDS) for p in record.get("prvDiaSources") or []]
    if "diaObject" in lite:
        lite["diaObject"] = _pick(record.get("diaObject") or {}, LSST_LITE_OBJECT_FIELDS)
    return {"alert_lite": lite}


def lsst_supernnova(lite: Mapping[str, Any], attributes: Mapping[str, str], rng: random.Random) -> Message:
    """``broker/cloud_run/lsst/classify_snn/main.py``."""
    snn = _snn_output(rng, solar_system=bool(attributes.get("ssSource_ssObjectId")))
    payload = {"alert_lite": lite["alert_lite"], "SuperNNova": snn}
    return serialize_json(payload), _strings({**attributes, "pg_supernnova_class": snn["predicted_class"]})


def _stetson_mean(values: list[float], errors: list[float], alpha=2.0, beta=2.0, n_iter=20, tol=1e-6) -> float:
    n = len(values)
    n_factor = math.sqrt(n / (n - 1))
    inv_var = [1 / e**2 for e in errors]
    mean = sum(v * w for v, w in zip(values, inv_var, strict=True)) / sum(inv_var)
    for _ in range(n_iter):
        weights = [w / (1 + (abs(n_factor * (v - mean) / e) / alpha) ** beta)
                   for v, e, w in zip(values, errors, inv_var, strict=True)]
        new_mean = sum(v * w for v, w in zip(values, weights, strict=True)) / sum(weights)
        diff = abs(new_mean - mean)
        mean = new_mean
        if diff / mean < tol and diff < tol:
            break
    return mean


def stetson_j(fluxes: list[float], errors: list[float]) -> float:
    """``_stetson_J`` of ``broker/cloud_run/lsst/variability/main.py`` (from lsst meas_base)."""
    n = len(fluxes)
    mean = _stetson_mean(fluxes, errors)
    deltas = [math.sqrt(n / (n - 1)) * (f - mean) / e for f, e in zip(fluxes, errors, strict=True)]
    p_k = [d**2 - 1 for d in deltas]
    return sum(math.copysign(math.sqrt(abs(p)), p) if p else 0.0 for p in p_k) / n


def variability_output(alert_lite: Mapping[str, Any]) -> dict:
    """``_classify`` of ``broker/cloud_run/lsst/variability/main.py``: per band, detections and Stetson J."""
    sources = [alert_lite.get("diaSource")] + list(alert_lite.get("prvDiaSources") or [])
    sources += list(alert_lite.get("prvDiaForcedSources") or [])
    out: dict[str, Any] = {}
    for band in dict.fromkeys(s.get("band") for s in sources if s):
        rows = [s for s in sources if s and s.get("band") == band and s.get("psfFlux") is not None
                and s.get("psfFluxErr") is not None and not math.isnan(s["psfFlux"])
                and not math.isnan(s["psfFluxErr"])]
        out[f"n_detections_{band}_band"] = len(rows)
        out[f"{band}_psfFluxStetsonJ"] = (
            stetson_j([r["psfFlux"] for r in rows], [r["psfFluxErr"] for r in rows]) if len(rows) >= 2 else math.nan
        )
    return out


def lsst_variability(lite: Mapping[str, Any], attributes: Mapping[str, str]) -> Message:
    """``{"alert_lite", "variability"}`` and attribute ``pg_variable`` (``likely``: 30 detections and J > 20 in
    g, r or u)."""
    j_dict = variability_output(lite["alert_lite"])
    likely = any(j_dict.get(f"n_detections_{b}_band", 0) >= 30 and (j_dict.get(f"{b}_psfFluxStetsonJ") or 0) > 20
                 for b in ("g", "r", "u"))
    payload = {"alert_lite": lite["alert_lite"], "variability": j_dict}
    return serialize_json(payload), _strings({**attributes, "pg_variable": "likely" if likely else "unlikely"})


def lsst_upsilon(lite: Mapping[str, Any], attributes: Mapping[str, str], rng: random.Random) -> Message:
    """``broker/cloud_run/lsst/classify_upsilon/main.py``: ``{"alert_lite": alert_lite.dict, "upsilon": ...}``,
    where ``alert_lite.dict`` is the whole lite message, so ``alert_lite`` is nested twice. A band with fewer
    than 7 positive fluxes has null label, probability and flag. Attributes ``pg_upsilon_<band>_label`` and
    ``_flag``, and ``pg_has_min_detections`` (1 with at least 80 positive fluxes in some band, else 0)."""
    alert_lite = lite["alert_lite"]
    sources = [alert_lite.get("diaSource")] + list(alert_lite.get("prvDiaSources") or [])
    sources += list(alert_lite.get("prvDiaForcedSources") or [])
    upsilon: dict[str, Any] = {
        "diaObjectId": (alert_lite.get("diaObject") or {}).get("diaObjectId"),
        "diaSourceId": alert_lite["diaSource"]["diaSourceId"],
    }
    for band in ("u", "g", "r", "i", "z", "y"):
        positive = [s for s in sources if s and s.get("band") == band and (s.get("psfFlux") or 0) > 0]
        if len(positive) < 7:
            upsilon.update({f"{band}_label": None, f"{band}_probability": None, f"{band}_flag": None})
            continue
        upsilon.update({f"{band}_label": rng.choice(UPSILON_LABELS), f"{band}_probability": rng.random(),
                        f"{band}_flag": rng.choice((0, 1))})
    extra = {f"pg_upsilon_{b}_{k}": upsilon[f"{b}_{k}"] for b in ("u", "g", "r", "i", "z", "y")
             for k in ("label", "flag")}
    # At least 80 positive fluxes in some band (the module counts them per band as n_data_points_<band>_band).
    extra["pg_has_min_detections"] = int(any(
        sum(1 for s in sources if s and s.get("band") == band and (s.get("psfFlux") or 0) > 0) >= 80
        for band in ("u", "g", "r", "i", "z", "y")))
    return serialize_json({"alert_lite": lite, "upsilon": upsilon}), _strings({**attributes, **extra})


def lsst_xmatch(lite: Mapping[str, Any], attributes: Mapping[str, str], rng: random.Random) -> Message:
    """``broker/cloud_run/lsst/xmatch/main.py``: the three closest Gaia DR3 variables (None beyond those found)."""
    result: dict[str, Any] = {}
    found = rng.randint(0, 3)
    separations = sorted(rng.uniform(0.1, 90) for _ in range(found))
    for i, ordinal in enumerate(("closest", "second_closest", "third_closest")):
        matched = i < found
        result[f"{ordinal}_gaia_source"] = rng.randrange(10**17, 7 * 10**18) if matched else None
        result[f"{ordinal}_gaia_source_class"] = rng.choice(("RR", "ECL", "SOLAR_LIKE", "LPV")) if matched else None
        result[f"{ordinal}_gaia_source_class_score"] = rng.random() if matched else None
        result[f"separation_to_{ordinal}_gaia_source"] = separations[i] if matched else None
    payload = {"alert_lite": lite["alert_lite"], "xmatch_gaia": result}
    return serialize_json(payload), _strings(dict(attributes))


# --- every topic ----------------------------------------------------------------------------------------

#: Topic -> the variants Pitt-Google has published on it (the first is the current one).
TOPICS: dict[str, tuple[str, ...]] = {
    "ztf-alerts": ("avro",), "ztf-loop": ("avro",), "ztf-lite": ("cloud_run", "cloud_functions"),
    "ztf-tagged": ("json",), "ztf-SuperNNova": ("cloud_run", "cloud_functions"),
    "lsst-alerts": ("wire",), "lsst-alerts-json": ("json",), "lsst-lite": ("json",), "lsst-supernnova": ("json",),
    "lsst-variability": ("json",), "lsst-upsilon": ("json",), "lsst-xmatch": ("json",),
}


def ztf_message(topic: str, record: Mapping[str, Any], *, variant: str | None = None, offset: int = 0,
                rng: random.Random | None = None, packet: bytes | None = None) -> Message:
    """One ZTF record as ``topic`` carries it; ``packet``, if given, is the record's original Avro (a real
    packet), published as it is on ztf-alerts and ztf-loop."""
    rng = rng or random.Random(offset)
    variant = variant or TOPICS[topic][0]
    attributes = ztf_attributes(record, offset=offset, rng=rng)
    if topic in ("ztf-alerts", "ztf-loop"):
        return (packet if packet is not None else serialize_alert(dict(record))), attributes
    if topic == "ztf-tagged":
        return ztf_tagged(record, attributes)
    older = variant == "cloud_functions"
    lite = ztf_lite_cloud_functions(record) if older else ztf_lite(record)
    if topic == "ztf-lite":
        return serialize_json(lite), attributes
    if topic == "ztf-SuperNNova":
        return ztf_supernnova(lite, attributes, rng, older=older)
    raise ValueError(f"not a ZTF topic: {topic}")


def lsst_message(topic: str, record: Mapping[str, Any], major: int, minor: int, *, offset: int = 0,
                 rng: random.Random | None = None) -> Message:
    """One LSST record (schema ``major.minor``) as ``topic`` carries it."""
    rng = rng or random.Random(offset)
    attributes = lsst_attributes(record, major, minor, offset=offset, rng=rng)
    if topic == "lsst-alerts":
        return serialize_wire_format(record, major, minor), attributes
    if topic == "lsst-alerts-json":
        return serialize_json(record), attributes
    lite = lsst_lite(record)
    builders = {"lsst-supernnova": lsst_supernnova, "lsst-upsilon": lsst_upsilon, "lsst-xmatch": lsst_xmatch}
    if topic == "lsst-lite":
        return serialize_json(lite), attributes
    if topic == "lsst-variability":
        return lsst_variability(lite, attributes)
    if topic in builders:
        return builders[topic](lite, attributes, rng)
    raise ValueError(f"not an LSST topic: {topic}")


def messages(topic: str, n: int, seed: int = 0, *, variant: str | None = None) -> list[Message]:
    """``n`` messages of ``topic`` (see :data:`TOPICS`; ``variant`` picks an older shape), deterministic in
    ``seed``. ZTF records come from :func:`~tom_pittgoogle.demo.sample_alerts.make_alerts`, LSST ones from
    :func:`~tom_pittgoogle.demo.sample_lsst.make_lsst_alert` (cycling through every schema version, with one
    solar-system alert in every five)."""
    if topic not in TOPICS:
        raise ValueError(f"unknown Pitt-Google topic {topic!r}; known: {', '.join(TOPICS)}")
    rng = random.Random(f"{topic}-{variant}-{seed}")
    if topic.startswith("ztf"):
        return [ztf_message(topic, record, variant=variant, offset=i, rng=rng)
                for i, record in enumerate(make_alerts(n, seed))]
    versions = lsst_schema_versions()
    out = []
    for i in range(n):
        major, minor = versions[i % len(versions)]
        record = make_lsst_alert(major, minor, index=i, seed=seed, n_previous=rng.randint(3, 40),
                                 solar_system=i % 5 == 4)
        out.append(lsst_message(topic, record, major, minor, offset=i, rng=rng))
    return out
