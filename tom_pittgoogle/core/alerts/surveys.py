"""Survey-aware field maps: each survey's own field names -> the common fields the TOM needs.

A *lightened* alert is a flat, JSON-safe dict holding

- the common fields every route, filter and the TOM use: ``survey``, ``object_id``, ``source_id``, ``jd`` (UTC
  Julian Date), ``ra``, ``dec``, ``band``, ``mag``, ``mag_err``;
- ``photometry``: the alert's light curve as compact points (see :mod:`.photometry`), so that the TOM can store
  it from the lightened alert alone;
- ``scores``: the survey's quality and classifier values (ZTF ``classtar``, ``drb``, SuperNNova probabilities of
  the ``ztf-SuperNNova`` stream; LSST ``reliability``, ``extendedness``), also flattened under their names;
- the survey's own fields listed in :attr:`Survey.keep`, flattened, under their own names (for ZTF the
  original's ``objectId``, ``candid``, ``jd``, ``ra``, ``dec``, ``magpsf``, ``classtar`` and a few more), so that
  filters written for the original keep working;
- ``classifiers``: each classifier's summary, ``{name: {"class", "probability", "score", "model", "version"}}``,
  and the classifier's numeric outputs in ``scores`` as ``<classifier>_<field>`` (see :mod:`.classifiers`);
- from the message attributes (when given): ``schema_version``, ``kafka_timestamp`` (ms since 1970, when Kafka
  received the alert), ``latency_seconds`` (that minus the exposure time) and ``attributes`` (bounded strings).

Every topic's shape is read (see :func:`unwrap`) and every value validated (see :mod:`.validate`).

A field's path is dotted (``candidate.magpsf``); ``a|b`` means the first of ``a`` and ``b`` that is present, which
is how one map reads a survey's Avro packets and Pitt-Google's JSON ("lite") versions of them.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from tom_pittgoogle.core.alerts import validate
from tom_pittgoogle.core.alerts.classifiers import classifier_blocks, read_classifiers, tag_scores
from tom_pittgoogle.core.alerts.photometry import (
    ZTF_BANDS,
    flux_err_to_mag_err,
    flux_to_mag,
    lsst_points,
    mjd_tai_to_jd_utc,
    ztf_points,
)
from tom_pittgoogle.exceptions import DecodeError

logger = logging.getLogger(__name__)

COMMON_FIELDS = ("survey", "object_id", "source_id", "jd", "ra", "dec", "band", "mag", "mag_err")


@dataclass(frozen=True)
class Survey:
    """Where a survey keeps each common field (dotted paths into its alert record, ``|`` for alternatives)."""

    name: str
    label: str
    object_id: str
    source_id: str
    jd: str
    ra: str
    dec: str
    band: str
    mag: str
    mag_err: str
    #: Survey fields copied, flattened, into the lightened alert (the last part of the first path names the key).
    keep: tuple[str, ...] = ()
    #: Quality and classifier values: name in the lightened alert and on the Target -> path.
    scores: Mapping[str, str] = field(default_factory=dict)
    #: The survey's band codes -> band names.
    band_names: Mapping[Any, str] = field(default_factory=dict)
    #: (record, its common fields) -> photometry points (see :mod:`.photometry`).
    photometry: Callable[[Mapping, Mapping], list[dict]] | None = None
    #: The telescope / instrument names written on photometry.
    telescope: str = ""
    instrument: str = ""

    def is_its_record(self, record: Mapping) -> bool:
        return _get(record, self.object_id) is not None and _get(record, self.source_id) is not None


def _get_one(record: Mapping, path: str) -> Any:
    value: Any = record
    for part in path.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value


def _get(record: Mapping, paths: str) -> Any:
    """The value at the first of the ``|``-separated paths that holds one."""
    for path in paths.split("|"):
        value = _get_one(record, path)
        if value is not None:
            return value
    return None


ZTF = Survey(
    name="ztf",
    label="ZTF",
    # Pitt-Google's JSON streams (ztf-lite, ztf-SuperNNova...) keep the ids under alertIds.
    object_id="objectId|alertIds.objectId",
    source_id="candid|alertIds.candid|alertIds.sourceId|candidate.candid",
    jd="candidate.jd",
    ra="candidate.ra",
    dec="candidate.dec",
    band="candidate.fid",
    mag="candidate.magpsf",
    mag_err="candidate.sigmapsf",
    keep=(
        "objectId|alertIds.objectId",
        "candid|alertIds.candid|candidate.candid",
        "schemavsn",
        "candidate.jd",
        "candidate.ra",
        "candidate.dec",
        "candidate.fid",
        "candidate.magpsf",
        "candidate.sigmapsf",
        "candidate.rb",
        "candidate.isdiffpos",
        "candidate.programid",
        "candidate.ndethist",
        "candidate.sgscore1",
        "candidate.distpsnr1",
        "candidate.ssnamenr",
    ),
    scores={
        "classtar": "candidate.classtar",
        "drb": "candidate.drb",
        # The ztf-SuperNNova stream: SuperNNova's SN Ia (class 0) vs core-collapse (class 1) probabilities.
        "supernnova_prob_class0": "SuperNNova.prob_class0",
        "supernnova_prob_class1": "SuperNNova.prob_class1",
        "supernnova_predicted_class": "SuperNNova.predicted_class",
    },
    band_names=ZTF_BANDS,
    photometry=ztf_points,
    telescope="ZTF",
    instrument="ZTF",
)


LSST = Survey(
    name="lsst",
    label="Rubin/LSST",
    object_id="diaObject.diaObjectId|diaSource.diaObjectId|diaSource.ssObjectId|ssSource.ssObjectId|ssObject.ssObjectId",
    source_id="diaSource.diaSourceId",
    jd="",  # derived from midpointMjdTai (TAI MJD -> UTC JD)
    ra="diaSource.ra",
    dec="diaSource.dec",
    band="diaSource.band",
    mag="",  # derived from psfFlux (nJy -> AB magnitude)
    mag_err="",
    keep=(
        "diaSource.diaSourceId",
        "diaObject.diaObjectId|diaSource.diaObjectId",
        "diaSource.ssObjectId|ssSource.ssObjectId|ssObject.ssObjectId",
        "alertId",
        "diaSource.midpointMjdTai",
        "diaSource.psfFlux",
        "diaSource.psfFluxErr",
        "diaSource.snr",
        "diaSource.isDipole",
        "diaObject.nDiaSources",
    ),
    scores={
        "reliability": "diaSource.reliability",
        "extendedness": "diaSource.extendedness",
    },
    photometry=lsst_points,
    telescope="Rubin",
    instrument="LSSTCam",
)

SURVEYS: dict[str, Survey] = {ZTF.name: ZTF, LSST.name: LSST}
SURVEY_CHOICES = [(survey.name, survey.label) for survey in SURVEYS.values()]

#: Where each survey's ids travel in the message attributes (pittgoogle-client ``Alert._add_attributes``; ZTF's
#: consumer and ``broker/cloud_functions/ztf/lite/main.py``): used when the data lacks them.
ATTRIBUTE_IDS = {
    "ztf": {"object_id": ("objectId",), "source_id": ("candid",)},
    "lsst": {"object_id": ("diaObject_diaObjectId", "ssSource_ssObjectId"), "source_id": ("diaSource_diaSourceId",)},
}
#: The record that makes a packet one survey's: ZTF's ``candidate``, LSST's ``diaSource``.
_MAIN_RECORD = {"ztf": "candidate", "lsst": "diaSource"}
#: Most photometry points kept from one alert (ZTF sends 30 days of history, LSST a year of forced photometry).
MAX_PHOTOMETRY_POINTS = 5000
#: How many ``alert_lite`` wrappers are opened (lsst-upsilon nests the lite alert twice).
_MAX_WRAPPERS = 3


# --- Pitt-Google's derived shapes -> the survey's own record ------------------------------------------


def _ztf_from_lite_source(source: Mapping, field: str) -> dict:
    """A source of the older ztf-lite (``broker/cloud_functions/ztf/lite/main.py``: ``mag``, ``magerr``,
    ``magzp``, ``filter``, ``sourceId``) as a ZTF candidate (``magpsf``, ``sigmapsf``, ``magzpsci``, ``fid``,
    ``candid``)."""
    candidate = dict(validate.check_mapping(source, field) or {})
    for lite_name, ztf_name in (("mag", "magpsf"), ("magerr", "sigmapsf"), ("magzp", "magzpsci"),
                                ("filter", "fid"), ("sourceId", "candid")):
        if lite_name in candidate and ztf_name not in candidate:
            candidate[ztf_name] = candidate.pop(lite_name)
    return candidate


def _from_old_ztf_lite(core: Mapping) -> dict:
    """``{"alertIds": {objectId, sourceId}, "source": {...}, "prvSources": [...], "xmatch": {...}}`` (the older
    ztf-lite, ``broker/cloud_functions/ztf/lite/main.py``; the mid-2024 one has ``alertIds.candid`` and ``fid``,
    ``broker/cloud_run/ztf/classify_snn/main.py`` reads it) -> a ZTF record."""
    ids = validate.check_mapping(core.get("alertIds"), "alertIds") or {}
    candidate = _ztf_from_lite_source(core["source"], "source")
    record = {key: value for key, value in core.items() if key not in ("alertIds", "source", "prvSources")}
    record.update(
        objectId=ids.get("objectId"),
        candid=_first_present(ids.get("candid"), ids.get("sourceId"), candidate.get("candid")),
        candidate=candidate,
        prv_candidates=[
            _ztf_from_lite_source(entry, f"prvSources[{i}]")
            for i, entry in enumerate(validate.check_records(core.get("prvSources"), "prvSources"))
        ],
    )
    return record


def _first_present(*values: Any) -> Any:
    return next((value for value in values if value is not None), None)


def unwrap(record: Mapping) -> tuple[Mapping, dict[str, tuple[str, Mapping]]]:
    """Pitt-Google's derived shapes -> ``(the survey's record, its classifier records)``.

    - ``{"alert_lite": {...}, "<classifier>": {...}, "xmatch": {...}}``: the newer lite streams and everything
      built on them (``broker/cloud_run/ztf/lite/main.py``, LSST's ``ps_to_storage``/``lite`` and classifier
      modules); lsst-upsilon nests ``alert_lite`` twice. ZTF's ``xmatch`` (PS1 and solar-system neighbours,
      taken out of the candidate by the lite module) is put back into the candidate.
    - the older ztf-lite and ztf-SuperNNova (``alertIds``/``source``/``prvSources``): see
      :func:`_from_old_ztf_lite`.
    - LSST's first lite (``diaSource-lite``, ``prvDiaSources-lite``, ``diaObject-lite``): the suffix is dropped.
    - anything else (ZTF Avro, ztf-tagged, lsst-alerts-json...) is the survey's record already; a classifier
      record beside it (``SuperNNova`` in ztf-SuperNNova) is taken out.
    """
    if not isinstance(record, Mapping):
        raise DecodeError(f"the packet holds a {type(record).__name__}, not a record")
    blocks: dict[str, tuple[str, Mapping]] = {}
    core: Mapping = record
    xmatch: Any = None
    for _ in range(_MAX_WRAPPERS):
        for name, block in classifier_blocks(core).items():
            blocks.setdefault(name, block)
        xmatch = xmatch if xmatch is not None else core.get("xmatch")
        inner = core.get("alert_lite")
        if inner is None:
            break
        core = validate.check_mapping(inner, "alert_lite")
    if any(isinstance(key, str) and key.endswith("-lite") for key in core):
        core = {(key[:-5] if isinstance(key, str) and key.endswith("-lite") else key): value
                for key, value in core.items()}
    if "source" in core and ("alertIds" in core or "prvSources" in core):
        core = _from_old_ztf_lite(core)
    if isinstance(xmatch, Mapping) and isinstance(core.get("candidate"), Mapping):
        candidate = dict(core["candidate"])
        for key, value in list(xmatch.items())[:64]:
            candidate.setdefault(key, value)
        core = {**core, "candidate": candidate}
    return core, blocks


# --- Survey detection -------------------------------------------------------------------------------


def _attribute_id(survey: Survey, attributes: Mapping[str, str], which: str) -> str | None:
    for key in ATTRIBUTE_IDS[survey.name][which]:
        value = attributes.get(key)
        if value not in (None, "", "None"):
            return value
    return None


def _is_survey_record(survey: Survey, core: Mapping, attributes: Mapping[str, str]) -> bool:
    if survey.is_its_record(core):
        return True
    # The data lacks an id the attributes carry (a lite alert of an older module, a hand-made packet).
    return isinstance(core.get(_MAIN_RECORD[survey.name]), Mapping) and (
        (_get(core, survey.object_id) is not None or _attribute_id(survey, attributes, "object_id") is not None)
        and (_get(core, survey.source_id) is not None or _attribute_id(survey, attributes, "source_id") is not None)
    )


def detect_survey(record: Mapping, hint: str | None = None, attributes: Mapping[str, Any] | None = None) -> Survey:
    """The survey whose fields ``record`` has (``hint``, a survey name, is tried first); DecodeError if none.

    ``record`` may be any shape Pitt-Google publishes (see :func:`unwrap`); ``attributes`` may supply ids.
    """
    try:
        core, _ = unwrap(record)
    except DecodeError:
        raise
    except Exception as error:
        raise DecodeError(f"unreadable alert: {type(error).__name__}") from None
    attrs = validate.attributes(attributes) if attributes else {}
    candidates = list(SURVEYS.values())
    if hint in SURVEYS:
        candidates.sort(key=lambda survey: survey.name != hint)
    for survey in candidates:
        if _is_survey_record(survey, core, attrs):
            return survey
    keys = ", ".join(sorted(str(key)[:40] for key in core)[:8])
    for survey in candidates:  # the survey's main record is there, an id is not
        if isinstance(core.get(_MAIN_RECORD[survey.name]), Mapping):
            missing = "object_id" if _get(core, survey.object_id) is None else "source_id"
            raise DecodeError(
                f"not an alert of a known survey (fields: {keys}): a {survey.label} alert needs its {missing} "
                f"({' or '.join(ATTRIBUTE_IDS[survey.name][missing])}) in the data or the message attributes"
            )
    raise DecodeError(f"not an alert of a known survey (fields: {keys})")


def is_lightened(alert: Mapping) -> bool:
    return isinstance(alert, Mapping) and "survey" in alert and "source_id" in alert and alert.get("survey") in SURVEYS


# --- Lightening -------------------------------------------------------------------------------------


def lighten_alert(
    record: Mapping, survey: Survey | None = None, attributes: Mapping[str, Any] | None = None
) -> dict:
    """Flatten ``record`` to the common fields, scores, classifiers, photometry and kept fields (JSON-safe).

    ``record`` is what :func:`~tom_pittgoogle.core.alerts.decode.decode_alert` returned (any topic's shape, see
    :func:`unwrap`), or an alert lightened before (validated again and returned as a copy). ``attributes`` are
    the message's attributes: ids the data lacks, ``schema_version``, ``kafka.timestamp``; they are kept, bounded,
    as ``alert["attributes"]``. Every value is validated (see :mod:`.validate`): nothing but
    :class:`DecodeError` leaves this function, and its message names the field.
    """
    try:
        return _lighten(record, survey, attributes)
    except DecodeError:
        raise
    except RecursionError:
        raise DecodeError("alert is nested too deep to read") from None
    except Exception as error:  # a hostile packet must become a rejection, never a redelivery loop
        logger.debug("unexpected error lightening an alert", exc_info=True)
        raise DecodeError(f"unreadable alert: {type(error).__name__}: {str(error)[:200]}") from None


def _lighten(record: Mapping, survey: Survey | None, attributes: Mapping[str, Any] | None) -> dict:
    if not isinstance(record, Mapping):
        raise DecodeError(f"the packet holds a {type(record).__name__}, not a record")
    attrs = validate.attributes(attributes) if attributes else {}
    if is_lightened(record):
        return _revalidate(record, attrs)
    core, blocks = unwrap(record)
    if survey is None or not _is_survey_record(survey, core, attrs):
        survey = detect_survey(core, hint=survey.name if survey else None, attributes=attrs)
    for part in ("candidate", "diaSource", "diaObject", "ssSource", "ssObject"):
        validate.check_mapping(core.get(part), part)
    for part in ("prv_candidates", "prvDiaSources", "prvDiaForcedSources", "prvDiaNondetectionLimits"):
        validate.check_records(core.get(part), part)

    warnings: list[str] = []
    alert = {
        path.split("|")[0].rsplit(".", 1)[-1]: validate.json_scalar(_get(core, path), path.split("|")[0], warnings)
        for path in survey.keep
    }
    all_scores = {name: _score(_get(core, path), name, warnings) for name, path in survey.scores.items()}
    classifier_scores, classifiers = read_classifiers(blocks, attrs)
    all_scores.update(classifier_scores)
    all_scores.update(tag_scores(attrs))
    alert.update(all_scores)  # flattened, None included, as the original's filters read classtar
    common = _COMMON[survey.name](core, attrs, warnings)
    alert.update(common)
    alert.update(
        survey=survey.name,
        scores={name: value for name, value in all_scores.items() if value is not None},
        classifiers=classifiers,
    )
    if survey.name == "ztf":  # the original's flattened ids are the validated ones
        alert.update(objectId=alert["object_id"], candid=int(alert["source_id"]))
    _add_message_metadata(alert, core, attrs, warnings)
    points = survey.photometry(core, common) if survey.photometry else []
    alert["photometry"] = _clean_points(points, survey.name, warnings)
    validate.warn(f"{survey.name}:{alert['object_id']}:{alert['source_id']}", warnings)
    return alert


def _score(value: Any, name: str, warnings: list[str]) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    if not validate.is_number(value):
        warnings.append(f"{name} is {type(value).__name__}, not a number: dropped")
        return None
    return validate.finite(value, name)


def _ztf_common(core: Mapping, attrs: Mapping[str, str], warnings: list[str]) -> dict:
    candidate = core.get("candidate") or {}
    fid = candidate.get("fid")
    if fid is not None and (not isinstance(fid, int) or isinstance(fid, bool) or fid not in ZTF_BANDS):
        raise DecodeError(f"band (fid) {str(fid)[:20]!r} is not a ZTF filter id (1, 2 or 3)")
    return {
        "object_id": validate.object_id("ztf", _first_present(_get(core, ZTF.object_id),
                                                             _attribute_id(ZTF, attrs, "object_id"))),
        "source_id": validate.source_id("ztf", _first_present(_get(core, ZTF.source_id),
                                                             _attribute_id(ZTF, attrs, "source_id"))),
        "jd": validate.jd(candidate.get("jd"), "jd (candidate.jd)"),
        "ra": validate.ra(candidate.get("ra")),
        "dec": validate.dec(candidate.get("dec")),
        "band": validate.band("ztf", ZTF_BANDS.get(fid)),
        "mag": validate.bounded(candidate.get("magpsf"), "mag (magpsf)", *validate.MAG_RANGE, warnings),
        "mag_err": validate.bounded(candidate.get("sigmapsf"), "mag_err (sigmapsf)", *validate.MAG_ERR_RANGE,
                                    warnings),
    }


def _lsst_common(core: Mapping, attrs: Mapping[str, str], warnings: list[str]) -> dict:
    # A diaSource belongs to a diaObject or, for a solar-system source, to an ssObject (never both); 7.x
    # packets carry ssObject, 8.0 on ssSource. The sample packets of lsst-alert-packet leave
    # diaSource.diaObjectId null and put the id in diaObject only, so both places are read.
    source = core.get("diaSource") or {}
    dia_object_id = _get(core, "diaObject.diaObjectId|diaSource.diaObjectId") or attrs.get("diaObject_diaObjectId")
    ss_object_id = _get(core, "diaSource.ssObjectId|ssSource.ssObjectId|ssObject.ssObjectId") or attrs.get(
        "ssSource_ssObjectId")
    kind = "diaObject" if dia_object_id not in (None, 0, "", "None") else "ssObject"
    mjd = validate.number(source.get("midpointMjdTai"), "midpointMjdTai")
    if mjd is None or not math.isfinite(mjd) or not MIN_MJD <= mjd <= validate.max_jd() - MJD_TO_JD:
        raise DecodeError(f"jd (diaSource.midpointMjdTai) {mjd!r} is not a possible time (MJD from {MIN_MJD}, "
                          "2015, to tomorrow)")
    flux = validate.finite(source.get("psfFlux"), "psfFlux")
    flux_err = validate.finite(source.get("psfFluxErr"), "psfFluxErr")
    return {
        "object_id": validate.object_id("lsst", dia_object_id if kind == "diaObject" else ss_object_id),
        "object_kind": kind,
        "source_id": validate.source_id("lsst", _first_present(source.get("diaSourceId"),
                                                              _attribute_id(LSST, attrs, "source_id"))),
        "mjd": mjd,
        "jd": validate.jd(mjd_tai_to_jd_utc([mjd])[0], "jd (diaSource.midpointMjdTai)"),
        "ra": validate.ra(source.get("ra")),
        "dec": validate.dec(source.get("dec")),
        "band": validate.band("lsst", source.get("band")),
        "flux": flux,
        "flux_err": flux_err,
        "mag": validate.bounded(flux_to_mag(flux), "mag (from psfFlux)", *validate.MAG_RANGE, warnings),
        "mag_err": validate.bounded(flux_err_to_mag_err(flux, flux_err), "mag_err (from psfFluxErr)",
                                    *validate.MAG_ERR_RANGE, warnings),
    }


_COMMON = {"ztf": _ztf_common, "lsst": _lsst_common}
MJD_TO_JD = 2400000.5
MIN_MJD = validate.MIN_JD - MJD_TO_JD


def _add_message_metadata(alert: dict, core: Mapping, attrs: Mapping[str, str], warnings: list[str]) -> None:
    """``schema_version``, ``kafka_timestamp`` (ms since 1970), ``latency_seconds`` (Kafka publication minus the
    exposure time) and ``attributes`` (bounded strings) from the message attributes."""
    version = attrs.get("schema_version") or core.get("schemavsn")
    alert["schema_version"] = validate.json_scalar(version, "schema_version", warnings) if version else None
    alert["kafka_timestamp"] = alert["latency_seconds"] = None
    stamp = attrs.get("kafka.timestamp")
    if stamp:
        try:
            milliseconds = int(stamp)
        except ValueError:
            warnings.append(f"kafka.timestamp {stamp[:30]!r} is not a whole number of milliseconds: dropped")
        else:
            # From 2015 (before either survey) to a day from now, as the alert's own time.
            if (validate.MIN_JD - validate.JD_UNIX_EPOCH) * 86_400_000 <= milliseconds <= (
                validate.max_jd() - validate.JD_UNIX_EPOCH
            ) * 86_400_000:
                alert["kafka_timestamp"] = milliseconds
                exposure = (alert["jd"] - validate.JD_UNIX_EPOCH) * 86400.0
                alert["latency_seconds"] = round(milliseconds / 1000.0 - exposure, 3)
            else:
                warnings.append(f"kafka.timestamp {milliseconds} is not a possible time: dropped")
    alert["attributes"] = dict(attrs)


def _clean_points(points: list[dict], survey: str, warnings: list[str]) -> list[dict]:
    """Photometry points within the survey's bands and sane times and magnitudes; others dropped (counted)."""
    kept, dropped = [], 0
    bands, high = validate.SURVEY_BANDS[survey], validate.max_jd()
    low_jd = validate.MIN_JD
    (low_mag, top_mag), (low_err, top_err) = validate.MAG_RANGE, validate.MAG_ERR_RANGE
    for point in points[:MAX_PHOTOMETRY_POINTS]:
        jd = point.get("jd")
        if not (isinstance(jd, float) and low_jd <= jd <= high) or point.get("band") not in bands:
            dropped += 1
            continue
        # Each of mag, limit, mag_err: a float within its range, else None.
        value = point.get("mag")
        if value is not None and not (isinstance(value, float) and low_mag <= value <= top_mag):
            point["mag"] = None
        value = point.get("limit")
        if value is not None and not (isinstance(value, float) and low_mag <= value <= top_mag):
            point["limit"] = None
        value = point.get("mag_err")
        if value is not None and not (isinstance(value, float) and low_err <= value <= top_err):
            point["mag_err"] = None
        kept.append(point)
    dropped += max(0, len(points) - MAX_PHOTOMETRY_POINTS)
    if dropped:
        warnings.append(f"{dropped} photometry point(s) with an impossible time or band: dropped")
    return kept


def _revalidate(alert: Mapping, attrs: Mapping[str, str]) -> dict:
    """An alert lightened before (or a packet pretending to be one): its common fields checked again, its
    scores, classifiers and photometry kept only in the contract's shape, its other values only as scalars."""
    survey = str(alert["survey"])
    warnings: list[str] = []
    out: dict[str, Any] = {}
    for key, value in list(alert.items())[:512]:
        if not isinstance(key, str) or key in ("scores", "classifiers", "photometry", "attributes"):
            continue
        out[key[:128]] = validate.json_scalar(value, key[:64], warnings)
    out.update(
        survey=survey,
        object_id=validate.object_id(survey, alert.get("object_id")),
        source_id=validate.source_id(survey, alert.get("source_id")),
        jd=validate.jd(alert.get("jd")),
        ra=validate.ra(alert.get("ra")),
        dec=validate.dec(alert.get("dec")),
        band=validate.band(survey, alert.get("band") or None),
        mag=validate.bounded(alert.get("mag"), "mag", *validate.MAG_RANGE, warnings),
        mag_err=validate.bounded(alert.get("mag_err"), "mag_err", *validate.MAG_ERR_RANGE, warnings),
    )
    scores = alert.get("scores") if isinstance(alert.get("scores"), Mapping) else {}
    out["scores"] = {
        str(name)[:64]: float(value) for name, value in list(scores.items())[:256]
        if validate.is_number(value) and math.isfinite(value)
    }
    classifiers = alert.get("classifiers") if isinstance(alert.get("classifiers"), Mapping) else {}
    out["classifiers"] = {
        str(name)[:64]: {
            "class": _text_or_none(summary.get("class")),
            "probability": validate.finite(summary.get("probability"), "probability")
            if validate.is_number(summary.get("probability")) else None,
            "score": validate.finite(summary.get("score"), "score") if validate.is_number(summary.get("score"))
            else None,
            "model": _text_or_none(summary.get("model")),
            "version": _text_or_none(summary.get("version")),
        }
        for name, summary in list(classifiers.items())[:16]
        if isinstance(summary, Mapping)
    }
    points = alert.get("photometry") if isinstance(alert.get("photometry"), list) else []
    out["photometry"] = _clean_points([dict(p) for p in points if isinstance(p, Mapping)], survey, warnings)
    out["attributes"] = validate.attributes(attrs or alert.get("attributes"))
    validate.warn(f"{survey}:{out['object_id']}:{out['source_id']}", warnings)
    return out


def _text_or_none(value: Any) -> str | None:
    if value is None:
        return None
    try:
        return validate.clean_text(value if isinstance(value, str) else str(value), "text")
    except DecodeError:
        return None
