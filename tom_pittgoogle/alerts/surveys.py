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
  filters written for the original keep working.

A field's path is dotted (``candidate.magpsf``); ``a|b`` means the first of ``a`` and ``b`` that is present, which
is how one map reads a survey's Avro packets and Pitt-Google's JSON ("lite") versions of them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..exceptions import DecodeError
from .photometry import (
    ZTF_BANDS,
    flux_err_to_mag_err,
    flux_to_mag,
    lsst_points,
    mjd_tai_to_jd_utc,
    ztf_points,
)

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
    #: record -> photometry points (see :mod:`.photometry`).
    photometry: Callable[[Mapping], list[dict]] | None = None
    #: Fills what paths cannot (unit conversions, fallbacks) into the lightened alert.
    derive: Callable[[Mapping, dict], None] | None = None
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


def _json_safe(value: Any) -> Any:
    # NaN and infinity are not JSON (PostgreSQL's jsonb refuses them, and so does a page's JSON).
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


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


def _derive_lsst(record: Mapping, alert: dict) -> None:
    # A diaSource belongs to a diaObject or, for a solar-system source, to an ssObject (never both); 7.x
    # packets carry ssObject, 8.0 on ssSource. The sample packets of lsst-alert-packet leave
    # diaSource.diaObjectId null and put the id in diaObject only, so both places are read.
    dia_object_id = _get(record, "diaObject.diaObjectId|diaSource.diaObjectId")
    ss_object_id = _get(record, "diaSource.ssObjectId|ssSource.ssObjectId|ssObject.ssObjectId")
    if dia_object_id:
        alert.update(object_id=str(dia_object_id), object_kind="diaObject")
    elif ss_object_id:
        alert.update(object_id=str(ss_object_id), object_kind="ssObject")
    mjd = _json_safe(_get(record, "diaSource.midpointMjdTai"))
    flux = _json_safe(_get(record, "diaSource.psfFlux"))
    flux_err = _json_safe(_get(record, "diaSource.psfFluxErr"))
    alert.update(
        mjd=mjd,
        jd=mjd_tai_to_jd_utc([mjd])[0] if mjd is not None else None,
        flux=flux,
        flux_err=flux_err,
        mag=flux_to_mag(flux),
        mag_err=flux_err_to_mag_err(flux, flux_err),
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
    derive=_derive_lsst,
    telescope="Rubin",
    instrument="LSSTCam",
)

SURVEYS: dict[str, Survey] = {ZTF.name: ZTF, LSST.name: LSST}
SURVEY_CHOICES = [(survey.name, survey.label) for survey in SURVEYS.values()]


def detect_survey(record: Mapping, hint: str | None = None) -> Survey:
    """The survey whose fields ``record`` has (``hint``, a survey name, is tried first); DecodeError if none."""
    candidates = list(SURVEYS.values())
    if hint in SURVEYS:
        candidates.sort(key=lambda survey: survey.name != hint)
    if isinstance(record, Mapping):
        for survey in candidates:
            if survey.is_its_record(record):
                return survey
    keys = ", ".join(sorted(record)[:8]) if isinstance(record, Mapping) else type(record).__name__
    raise DecodeError(f"not an alert of a known survey (fields: {keys})")


def is_lightened(alert: Mapping) -> bool:
    return "survey" in alert and "source_id" in alert and alert.get("survey") in SURVEYS


def lighten_alert(record: Mapping, survey: Survey | None = None) -> dict:
    """Flatten ``record`` to the common fields, scores, photometry and kept fields (JSON-safe, picklable)."""
    if is_lightened(record):
        return dict(record)
    survey = survey or detect_survey(record)
    alert = {path.split("|")[0].rsplit(".", 1)[-1]: _json_safe(_get(record, path)) for path in survey.keep}
    all_scores = {name: _json_safe(_get(record, path)) for name, path in survey.scores.items()}
    alert.update(all_scores)  # flattened, None included, as the original's filters read classtar
    scores = {name: value for name, value in all_scores.items() if value is not None}
    band = _get(record, survey.band)
    alert.update(
        survey=survey.name,
        object_id=str(_get(record, survey.object_id)),
        source_id=str(_get(record, survey.source_id)),
        jd=_json_safe(_get(record, survey.jd)) if survey.jd else None,
        ra=_json_safe(_get(record, survey.ra)),
        dec=_json_safe(_get(record, survey.dec)),
        band=survey.band_names.get(band, band),
        mag=_json_safe(_get(record, survey.mag)) if survey.mag else None,
        mag_err=_json_safe(_get(record, survey.mag_err)) if survey.mag_err else None,
        scores=scores,
    )
    if survey.derive is not None:
        survey.derive(record, alert)
    alert["photometry"] = survey.photometry(record) if survey.photometry else []
    return alert
